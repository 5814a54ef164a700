#if canImport(Glibc)
import Glibc
#endif
import KafkaProtocol
import Logging
import Synchronization

/// Broker-level intervals of the log manager (0.8.2 `log.*` settings), all in ms.
public struct LogManagerSettings: Sendable, Equatable {
    /// `log.flush.scheduler.interval.ms` (0.8.2 default Long.MaxValue: never).
    public var flushCheckIntervalMs: Int64 = .max
    /// `log.flush.offset.checkpoint.interval.ms`.
    public var recoveryPointCheckpointIntervalMs: Int64 = 60000
    /// `log.retention.check.interval.ms`.
    public var retentionCheckIntervalMs: Int64 = 300_000
    /// `log.cleaner.enable` (0.8.2 default false).
    public var cleanerEnabled = false
    /// `log.cleaner.backoff.ms`: pause between cleaning passes when nothing is cleanable.
    public var cleanerBackoffMs: Int64 = 15000
    /// `log.cleaner.dedupe.buffer.size`-like cap on keys per cleaning pass.
    public var cleanerMaxKeysPerPass = 4_000_000
    public init() {}
}

/// Owns every log of the broker across `log.dirs`. Its blocking work (loading and recovery in
/// `open`, the periodic tasks of `startBackgroundTasks`, roll fsyncs and delayed segment deletion
/// of its logs) runs on `executor`, per log dir: in the broker, that dir's I/O pool.
public final class LogManager: @unchecked Sendable {
    public static let recoveryPointCheckpointFile = "recovery-point-offset-checkpoint"
    public static let cleanShutdownFile = ".kafka_cleanshutdown"

    /// Whether `dir` holds any partition directory (`<topic>-<partition>`).
    static func hasPartitionDirs(_ dir: String) -> Bool {
        ((try? FS.listDirectory(dir)) ?? []).contains { name in
            TopicPartition(directoryName: name) != nil && FS.isDirectory(dir + "/" + name)
        }
    }
    public static let lockFile = ".lock"

    public let logDirs: [String]
    public let defaultConfig: LogConfig
    public let settings: LogManagerSettings
    let topicOverrides: @Sendable (String) -> [String: String]
    let logger: Logger
    /// Called once per log on its first write or fsync error (the broker halts there).
    let onIOFailure: @Sendable (TopicPartition, LogError) -> Void
    /// Runs the blocking work, per log dir.
    let executor: any LogDirExecutor

    private struct State {
        var logs: [TopicPartition: Log] = [:]
        var logDirOf: [TopicPartition: String] = [:]
        var lockFds: [String: Int32] = [:]
        /// The periodic tasks (they only sleep and hand work to the executor).
        var tasks: [Task<Void, Never>] = []
        /// Background jobs running on the executor now; `shutdown` waits for them.
        var runningJobs = 0
        var isShutdown = false
    }
    private let state = Mutex(State())

    /// Locks each dir, creates missing dirs, loads and (after an unclean stop) recovers every
    /// `<topic>-<partition>` on the calling thread (tests, tools). The broker uses `open`.
    public convenience init(logDirs: [String], defaultConfig: LogConfig,
                            topicOverrides: @escaping @Sendable (String) -> [String: String] = { _ in [:] },
                            logger: Logger, settings: LogManagerSettings = LogManagerSettings(),
                            onIOFailure: @escaping @Sendable (TopicPartition, LogError) -> Void = { _, _ in },
                            executor: any LogDirExecutor = DispatchLogDirExecutor()) throws {
        try self.init(lockingDirs: logDirs, defaultConfig: defaultConfig, topicOverrides: topicOverrides, logger: logger,
                      settings: settings, onIOFailure: onIOFailure, executor: executor)
        do {
            for dir in self.logDirs { try loadLogs(in: dir) }
        } catch {
            state.withLock { st in Self.unlockDirs(&st) }
            throw error
        }
    }

    /// As `init`, but loads (and recovers) each dir's logs on that dir's `executor` threads, all
    /// dirs at once, and suspends until they are loaded: the caller's thread never reads a log.
    public static func open(logDirs: [String], defaultConfig: LogConfig,
                            topicOverrides: @escaping @Sendable (String) -> [String: String] = { _ in [:] },
                            logger: Logger, settings: LogManagerSettings = LogManagerSettings(),
                            onIOFailure: @escaping @Sendable (TopicPartition, LogError) -> Void = { _, _ in },
                            executor: any LogDirExecutor) async throws -> LogManager {
        let m = try LogManager(lockingDirs: logDirs, defaultConfig: defaultConfig, topicOverrides: topicOverrides,
                               logger: logger, settings: settings, onIOFailure: onIOFailure, executor: executor)
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for dir in m.logDirs {
                    group.addTask {
                        let loaded = await executor.run(inDir: dir) { () -> Result<Void, any Error> in
                            Result { try m.loadLogs(in: dir) }
                        }
                        guard let loaded else { throw LogError.io("Log directory \(dir): its I/O threads stopped before its logs were loaded") }
                        try loaded.get()
                    }
                }
                try await group.waitForAll()
            }
        } catch {
            m.state.withLock { st in Self.unlockDirs(&st) }
            throw error
        }
        return m
    }

    /// Checks and locks the dirs; loads nothing.
    private init(lockingDirs logDirs: [String], defaultConfig: LogConfig,
                 topicOverrides: @escaping @Sendable (String) -> [String: String],
                 logger: Logger, settings: LogManagerSettings,
                 onIOFailure: @escaping @Sendable (TopicPartition, LogError) -> Void,
                 executor: any LogDirExecutor) throws {
        precondition(!logDirs.isEmpty, "at least one log dir")
        self.onIOFailure = onIOFailure
        self.executor = executor
        self.logDirs = logDirs.map { $0.count > 1 && $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.defaultConfig = defaultConfig
        self.topicOverrides = topicOverrides
        self.logger = logger
        self.settings = settings
        if Set(self.logDirs).count != self.logDirs.count {
            throw LogError.io("Duplicate log directory found: \(self.logDirs.joined(separator: ","))")
        }
        do {
            for dir in self.logDirs {
                do { try FS.mkdirs(dir) } catch {
                    throw LogError.io("Log directory \(dir) does not exist and could not be created: \(error)")
                }
                guard FS.isDirectory(dir) else { throw LogError.io("Log directory \(dir) is not a directory") }
                guard access(dir, W_OK | R_OK | X_OK) == 0 else {
                    throw LogError.io("Log directory \(dir) is not readable and writable: \(FS.errnoText())")
                }
                let path = dir + "/" + Self.lockFile
                let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
                if fd < 0 { throw LogError.io("Log directory \(dir): cannot create \(path): \(FS.errnoText())") }
                if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                    close(fd)
                    throw LogError.io("Failed to acquire lock on file .lock in \(dir). A Kafka instance in another process or thread is using this directory.")
                }
                state.withLock { st in st.lockFds[dir] = fd }
            }
        } catch {
            state.withLock { st in Self.unlockDirs(&st) }
            throw error
        }
    }

    deinit { state.withLock { st in Self.unlockDirs(&st) } }

    private static func unlockDirs(_ st: inout State) {
        for (_, fd) in st.lockFds { flock(fd, LOCK_UN); close(fd) }
        st.lockFds = [:]
    }

    func config(for topic: String) -> LogConfig {
        let o = topicOverrides(topic)
        if o.isEmpty { return defaultConfig }
        do { return try defaultConfig.applying(o) } catch {
            logger.error("Ignoring invalid overrides for topic \(topic): \(error)")
            return defaultConfig
        }
    }

    /// Loads one dir's logs (recovering them after an unclean stop).
    private func loadLogs(in dir: String) throws {
        let marker = dir + "/" + Self.cleanShutdownFile
        let clean = FS.exists(marker)
        var recoveryPoints: [TopicPartition: Int64] = [:]
        do {
            recoveryPoints = try OffsetCheckpoint(path: dir + "/" + Self.recoveryPointCheckpointFile).read()
        } catch {
            logger.warning("Error reading recovery points in \(dir), recovering every log from the start: \(error)")
        }
        // A new or empty log dir has nothing to recover: no marker there is not news.
        if !clean && Self.hasPartitionDirs(dir) {
            logger.info("Found no clean shutdown marker in \(dir): recovering logs past their recovery points")
        }
        for name in try FS.listDirectory(dir).sorted() {
            let path = dir + "/" + name
            guard FS.isDirectory(path), let tp = TopicPartition(directoryName: name) else { continue }
            func duplicate(_ st: State) -> LogError? {
                st.logDirOf[tp].map { LogError.io("Duplicate log directories found: \(path), \($0)/\(name)!") }
            }
            if let e = state.withLock({ st in duplicate(st) }) { throw e }
            logger.info("Loading log '\(name)'")
            let log = try Log(directory: path, topicPartition: tp, config: config(for: tp.topic),
                              recoveryPoint: recoveryPoints[tp] ?? 0, cleanShutdown: clean, logger: logger,
                              onIOFailure: onIOFailure, executor: executor)
            // Dirs load in parallel: check again where the log is added.
            if let e = state.withLock({ st -> LogError? in
                if let e = duplicate(st) { return e }
                st.logs[tp] = log
                st.logDirOf[tp] = dir
                return nil
            }) { throw e }
        }
        if clean { FS.remove(marker) }
    }

    public func log(for tp: TopicPartition) -> Log? { state.withLock { st in st.logs[tp] } }

    public var allLogs: [Log] { state.withLock { st in st.logs.keys.sorted().map { st.logs[$0]! } } }

    /// The log dir holding `tp`.
    public func logDir(for tp: TopicPartition) -> String? { state.withLock { st in st.logDirOf[tp] } }

    /// Returns the log, creating it in the dir with the fewest partitions.
    public func getOrCreateLog(_ tp: TopicPartition) throws -> Log {
        try state.withLock { st throws -> Log in
            if let l = st.logs[tp] { return l }
            var counts: [String: Int] = [:]
            for d in logDirs { counts[d] = 0 }
            for (_, d) in st.logDirOf { counts[d, default: 0] += 1 }
            let dir = logDirs.min { counts[$0]! < counts[$1]! }!
            let log = try Log(directory: dir + "/" + tp.directoryName, topicPartition: tp, config: config(for: tp.topic),
                              recoveryPoint: 0, cleanShutdown: true, logger: logger, onIOFailure: onIOFailure,
                              executor: executor)
            logger.info("Created log for partition \(tp) in \(dir) with properties \(log.config.asProperties.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")).")
            st.logs[tp] = log
            st.logDirOf[tp] = dir
            return log
        }
    }

    /// Removes the partition's log and its files (StopReplica with delete).
    public func deleteLog(_ tp: TopicPartition) {
        let removed: Log? = state.withLock { st in
            let l = st.logs.removeValue(forKey: tp)
            st.logDirOf.removeValue(forKey: tp)
            return l
        }
        removed?.delete()
        cleanerCheckpoints.withLock { cps in _ = cps?.removeValue(forKey: tp) }
        if removed != nil { logger.info("Deleted log for partition \(tp)") }
    }

    /// Re-reads every log's overrides (after a topic config change).
    public func refreshConfig(topic: String) {
        let c = config(for: topic)
        for l in allLogs where l.topicPartition.topic == topic { l.updateConfig(c) }
    }

    // MARK: background tasks

    /// Flush by interval, recovery-point checkpoint, retention, compaction (when enabled). Each is
    /// a task that sleeps for its interval and then runs one job per log dir on that dir's
    /// executor threads (the dirs in parallel); the task itself only waits.
    public func startBackgroundTasks() {
        state.withLock { st in
            guard st.tasks.isEmpty, !st.isShutdown else { return }
            func every(_ ms: Int64, _ job: @escaping @Sendable (LogManager, String) -> Void) {
                guard ms > 0, ms < Int64(Int32.max) * 1000 else { return }
                st.tasks.append(Task { [weak self] in
                    while !Task.isCancelled {
                        try? await Task.sleep(nanoseconds: UInt64(ms) * 1_000_000)
                        guard !Task.isCancelled, let self else { return }
                        await self.inEveryDir { dir in job(self, dir) }
                    }
                })
            }
            every(settings.flushCheckIntervalMs) { m, dir in m.flushDirtyLogs(inDir: dir) }
            every(settings.recoveryPointCheckpointIntervalMs) { m, dir in m.checkpointRecoveryPoints(inDir: dir) }
            every(settings.retentionCheckIntervalMs) { m, dir in _ = m.cleanupLogs(inDir: dir) }
            if settings.cleanerEnabled {
                st.tasks.append(Task { [weak self] in await self?.cleanerLoop() })
            }
        }
    }

    /// Runs `job` on `dir`'s executor unless the manager is shutting down; `shutdown` waits for
    /// jobs that started. Nil when it did not run.
    private func runJob<T: Sendable>(inDir dir: String, _ job: @escaping @Sendable () -> T) async -> T? {
        let ran: T?? = await executor.run(inDir: dir) { [self] () -> T? in
            let started = state.withLock { st -> Bool in
                if st.isShutdown { return false }
                st.runningJobs += 1
                return true
            }
            guard started else { return nil }
            defer { state.withLock { st in st.runningJobs -= 1 } }
            return job()
        }
        return ran ?? nil
    }

    /// One job per log dir, the dirs in parallel; returns when all have run.
    private func inEveryDir(_ job: @escaping @Sendable (String) -> Void) async {
        await withTaskGroup(of: Void.self) { group in
            for dir in logDirs {
                group.addTask { [self] in _ = await runJob(inDir: dir) { job(dir) } }
            }
        }
    }

    /// The cleaner (0.8.2's cleaner thread): a compaction pass in each dir in turn, each on
    /// that dir's executor; `log.cleaner.backoff.ms` of sleep after a round that cleaned nothing.
    private func cleanerLoop() async {
        while !Task.isCancelled {
            var cleanedAny = false
            for dir in logDirs {
                if Task.isCancelled { return }
                if let stats = await runJob(inDir: dir, { [self] in runLogCleanerOnce(inDir: dir) }), stats != nil {
                    cleanedAny = true
                }
            }
            if !cleanedAny {
                let backoff = max(10, min(settings.cleanerBackoffMs, 60_000))
                try? await Task.sleep(nanoseconds: UInt64(backoff) * 1_000_000)
            }
        }
    }

    /// The logs in `dir` (nil: every log).
    private func logs(inDir dir: String?) -> [Log] {
        state.withLock { st in
            st.logs.keys.sorted().filter { dir == nil || st.logDirOf[$0] == dir }.map { st.logs[$0]! }
        }
    }

    /// Flushes logs whose `flush.ms` has passed since their last flush.
    public func flushDirtyLogs() { flushDirtyLogs(inDir: nil) }

    func flushDirtyLogs(inDir dir: String?) {
        let now = FS.nowMs()
        for log in logs(inDir: dir) {
            let ms = log.config.flushMs
            if ms == .max { continue }
            if now - log.lastFlushTime >= ms && log.unflushedMessages > 0 { log.flush() }
        }
    }

    /// Writes `recovery-point-offset-checkpoint` in every dir.
    public func checkpointRecoveryPoints() {
        for dir in logDirs { checkpointRecoveryPoints(inDir: dir) }
    }

    func checkpointRecoveryPoints(inDir dir: String) {
        var points: [TopicPartition: Int64] = [:]
        for l in logs(inDir: dir) { points[l.topicPartition] = l.recoveryPoint }
        do { try OffsetCheckpoint(path: dir + "/" + Self.recoveryPointCheckpointFile).write(points) } catch {
            logger.error("Failed to write recovery point checkpoint in \(dir): \(error)")
        }
    }

    /// Retention pass over every non-compacted log; returns the number of segments deleted.
    @discardableResult
    public func cleanupLogs() -> Int { cleanupLogs(inDir: nil) }

    func cleanupLogs(inDir dir: String?) -> Int {
        var total = 0
        for log in logs(inDir: dir) where !log.config.compact {
            total += log.deleteOldSegmentsByRetention()
        }
        return total
    }

    // MARK: compaction

    /// Held for a whole compaction pass (`deleteLog` waits for it).
    private let cleanerCheckpoints = Mutex<[TopicPartition: Int64]?>(nil)

    /// Cleaner progress per partition (`cleaner-offset-checkpoint`).
    public var cleanerCheckpointOffsets: [TopicPartition: Int64] {
        cleanerCheckpoints.withLock { cps in cps ?? LogCleaner.readCheckpoints(dirs: logDirs, logger: logger) }
    }

    /// One compaction pass: cleans the compacted log with the highest dirty ratio (at least its
    /// `min.cleanable.dirty.ratio`), writes `cleaner-offset-checkpoint`. Returns nil when nothing was cleanable.
    @discardableResult
    public func runLogCleanerOnce() -> CleanerStats? { runLogCleanerOnce(inDir: nil) }

    /// As `runLogCleanerOnce`, among the logs of `dir` (nil: every dir).
    func runLogCleanerOnce(inDir dir: String?) -> CleanerStats? {
        cleanerCheckpoints.withLock { cleanerCheckpoints -> CleanerStats? in
            if cleanerCheckpoints == nil { cleanerCheckpoints = LogCleaner.readCheckpoints(dirs: logDirs, logger: logger) }
            var best: (log: Log, firstDirty: Int64, ratio: Double)? = nil
            for log in logs(inDir: dir) where log.config.compact {
                let firstDirty = max(cleanerCheckpoints![log.topicPartition] ?? 0, log.logStartOffset)
                let r = LogCleaner.dirtyRatio(log, firstDirty: firstDirty)
                if r.dirtyBytes > 0 && r.ratio >= log.config.minCleanableRatio && r.ratio > (best?.ratio ?? -1) {
                    best = (log, firstDirty, r.ratio)
                }
            }
            guard let best else { return nil }
            do {
                guard let stats = try LogCleaner.clean(log: best.log, firstDirty: best.firstDirty,
                                                       maxKeys: settings.cleanerMaxKeysPerPass, logger: logger) else { return nil }
                cleanerCheckpoints![best.log.topicPartition] = stats.endOffset
                writeCleanerCheckpoints(cleanerCheckpoints)
                return stats
            } catch {
                logger.error("Error cleaning log \(best.log.topicPartition.directoryName): \(error)")
                return nil
            }
        }
    }

    private func writeCleanerCheckpoints(_ checkpoints: [TopicPartition: Int64]?) {
        guard let cps = checkpoints else { return }
        let placement: [TopicPartition: String] = state.withLock { st in st.logDirOf }
        for dir in logDirs {
            var points: [TopicPartition: Int64] = [:]
            for (tp, o) in cps where placement[tp] == dir { points[tp] = o }
            do { try OffsetCheckpoint(path: dir + "/" + LogCleaner.checkpointFile).write(points) } catch {
                logger.error("Failed to write cleaner checkpoint in \(dir): \(error)")
            }
        }
    }

    /// Stops the background tasks and waits for a running job (a compaction pass, retention),
    /// then flushes and closes every log, writes checkpoints and the clean-shutdown marker,
    /// unlocks the dirs. Jobs not started yet never start.
    public func shutdown() {
        let (all, tasks): ([Log], [Task<Void, Never>]) = state.withLock { st in
            if st.isShutdown { return ([], []) }
            st.isShutdown = true
            defer { st.tasks = [] }
            return (Array(st.logs.values), st.tasks)
        }
        for t in tasks { t.cancel() }
        while state.withLock({ st in st.runningJobs }) > 0 { usleep(1000) }
        if all.isEmpty && state.withLock({ st in st.lockFds.isEmpty }) { return }
        for l in all { l.close() }
        checkpointRecoveryPoints()
        // A dir with a log that failed a write or fsync is not clean: its next start recovers.
        let failedDirs: Set<String> = state.withLock { st in
            Set(st.logs.filter { $0.value.ioFailure != nil }.compactMap { st.logDirOf[$0.key] })
        }
        for dir in logDirs {
            if failedDirs.contains(dir) {
                logger.error("Not writing the clean shutdown marker in \(dir): a log there had an I/O error")
                continue
            }
            do { try FS.writeFileAtomically(dir + "/" + Self.cleanShutdownFile, []) } catch {
                logger.error("Failed to write clean shutdown marker in \(dir): \(error)")
            }
        }
        state.withLock { st in Self.unlockDirs(&st) }
        logger.info("Log manager shut down")
    }
}
