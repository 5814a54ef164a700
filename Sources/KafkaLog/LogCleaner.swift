import Logging

/// Compaction of `cleanup.policy=compact` logs (Part B; placeholder until implemented).
final class LogCleaner: @unchecked Sendable {
    weak var manager: LogManager?
    let logger: Logger
    init(manager: LogManager, logger: Logger) { self.manager = manager; self.logger = logger }
    func start() {}
    func stop() {}
}
