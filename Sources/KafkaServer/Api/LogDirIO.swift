import Foundation
import KafkaLog
import NIOCore
import NIOPosix

/// Threads for disk work that may block for an unbounded time: appends (pwrite, and fsync when
/// `flush.messages` is reached), reads of segments that may not be in the page cache, log
/// creation, truncation and deletion, high-watermark checkpoints, and the log manager's work
/// (recovery at start-up, flushes, retention, the cleaner, segment deletion). One bounded pool of
/// `num.io.threads` threads per log dir, so a slow disk stalls only its own partitions and
/// never an event loop or the cooperative pool (which carries the controller and ZooKeeper).
final class LogDirIO: Sendable {
    /// Keyed by the normalized dir.
    private let pools: [String: NIOThreadPool]
    /// The same pools keyed by each dir as configured, and with its trailing "/" removed.
    private let poolsByGivenDir: [String: NIOThreadPool]
    private let firstDir: String

    init(logDirs: [String], threadsPerDir: Int) {
        precondition(!logDirs.isEmpty)
        var pools: [String: NIOThreadPool] = [:]
        var given: [String: NIOThreadPool] = [:]
        for dir in logDirs {
            let key = Self.normalized(dir)
            let pool = pools[key] ?? NIOThreadPool(numberOfThreads: max(1, threadsPerDir))
            if pools[key] == nil {
                pool.start()
                pools[key] = pool
            }
            given[dir] = pool
            var trimmed = Substring(dir)
            while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
            given[String(trimmed)] = pool
        }
        self.pools = pools
        self.poolsByGivenDir = given
        self.firstDir = Self.normalized(logDirs[0])
    }

    private static func normalized(_ dir: String) -> String { (dir as NSString).standardizingPath }

    /// The pool of the log dir holding `log`. Called per partition of every produce request:
    /// the dir is looked up as written first, since normalizing a path resolves its symlinks
    /// (readlink calls for every partition of every request).
    func pool(for log: Log) -> NIOThreadPool {
        if pools.count == 1 { return pools[firstDir]! }
        let path = log.directory
        if let slash = path.lastIndex(of: "/"), let pool = poolsByGivenDir[String(path[..<slash])] { return pool }
        let dir = Self.normalized((path as NSString).deletingLastPathComponent)
        return pools[dir] ?? pools[firstDir]!
    }

    /// Runs `work` on the pool of `log`'s dir; the future completes on `eventLoop`.
    func run<T: Sendable>(for log: Log, on eventLoop: EventLoop, _ work: @escaping @Sendable () -> T) -> EventLoopFuture<T> {
        pool(for: log).runIfActive(eventLoop: eventLoop, work)
    }

    /// Work that spans partitions of any dir (controller requests, checkpoints): the first dir's pool.
    func runAny<T: Sendable>(on eventLoop: EventLoop, _ work: @escaping @Sendable () -> T) -> EventLoopFuture<T> {
        pools[firstDir]!.runIfActive(eventLoop: eventLoop, work)
    }

    /// As `runAny`, awaited from a task (the task suspends; the pool thread blocks).
    func runAny<T: Sendable>(_ work: @escaping @Sendable () -> T) async throws -> T {
        try await pools[firstDir]!.runIfActive(work)
    }

    /// Lets running work finish; queued work fails with the pool inactive.
    func shutdown() async {
        for pool in pools.values { try? await pool.shutdownGracefully() }
    }
}

extension LogDirIO: LogDirExecutor {
    /// The log layer's background work (recovery at start-up, flushes, retention, the cleaner,
    /// delayed segment deletion) on the pool of `dir`; `work(false)` once the pools have stopped.
    func execute(inDir dir: String, _ work: @escaping @Sendable (_ active: Bool) -> Void) {
        (pools[Self.normalized(dir)] ?? pools[firstDir]!).submit { state in work(state == .active) }
    }
}

extension LogDirIO: BlockingExecutor {
    /// On the first dir's pool; inline once the pools have stopped (shutdown).
    func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        if let result = try? await runAny(work) { return result }
        return work()
    }
}
