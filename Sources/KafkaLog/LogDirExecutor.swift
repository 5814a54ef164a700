import Dispatch

/// Where the log layer runs work that blocks on a log dir's disk and that no request waits for:
/// log recovery at start-up, time-based flushes, the fsync of a segment after a roll, the
/// recovery-point checkpoint, retention, compaction passes and delayed segment deletion. The
/// broker passes its per-log-dir I/O pools (`LogDirIO` in KafkaServer), so this module needs no
/// NIO; logs and managers made without one (tests, tools) use `DispatchLogDirExecutor`.
public protocol LogDirExecutor: Sendable {
    /// Runs `work(true)` on a thread that may block on the disk of log dir `dir`. Once the
    /// executor has stopped, calls `work(false)` instead (possibly at once, on the calling thread):
    /// the work must then do nothing blocking.
    func execute(inDir dir: String, _ work: @escaping @Sendable (_ active: Bool) -> Void)
}

extension LogDirExecutor {
    /// Runs `work` on `dir`'s threads and suspends until it has run; nil when the executor stopped.
    public func run<T: Sendable>(inDir dir: String, _ work: @escaping @Sendable () -> T) async -> T? {
        await withCheckedContinuation { (c: CheckedContinuation<T?, Never>) in
            execute(inDir: dir) { active in c.resume(returning: active ? work() : nil) }
        }
    }
}

/// Dispatch's global concurrent queue, for logs and log managers made outside the broker.
public struct DispatchLogDirExecutor: LogDirExecutor {
    public init() {}
    public func execute(inDir dir: String, _ work: @escaping @Sendable (_ active: Bool) -> Void) {
        DispatchQueue.global().async { work(true) }
    }
}
