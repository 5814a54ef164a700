#if canImport(Glibc)
import Glibc
#endif
import Dispatch
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

/// Owns every log of the broker across `log.dirs`.
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

    private struct State {
        var logs: [TopicPartition: Log] = [:]
        var logDirOf: [TopicPartition: String] = [:]
        var lockFds: [String: Int32] = [:]
        var timers: [DispatchSourceTimer] = []
        var isShutdown = false
    }
    private let state = Mutex(State())
    private let scheduler = DispatchQueue(label: "kafka.log.scheduler")
    var cleaner: LogCleaner? = nil

    /// Locks each dir, creates missing dirs, loads and (after an unclean stop) recovers every `<topic>-<partition>`.
    public init(logDirs: [String], defaultConfig: LogConfig,
                topicOverrides: @escaping @Sendable (String) -> [String: String] = { _ in [:] },
                logger: Logger, settings: LogManagerSettings = LogManagerSettings(),
                onIOFailure: @escaping @Sendable (TopicPartition, LogError) -> Void = { _, _ in }) throws {
        precondition(!logDirs.isEmpty, "at least one log dir")
        self.onIOFailure = onIOFailure
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
            try loadLogs()
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

    private func loadLogs() throws {
        for dir in logDirs {
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
                if let other = state.withLock({ st in st.logDirOf[tp] }) {
                    throw LogError.io("Duplicate log directories found: \(path), \(other)/\(name)!")
                }
                logger.info("Loading log '\(name)'")
                let log = try Log(directory: path, topicPartition: tp, config: config(for: tp.topic),
                                  recoveryPoint: recoveryPoints[tp] ?? 0, cleanShutdown: clean, logger: logger,
                                  onIOFailure: onIOFailure)
                state.withLock { st in
                    st.logs[tp] = log
                    st.logDirOf[tp] = dir
                }
            }
            if clean { FS.remove(marker) }
        }
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
                              recoveryPoint: 0, cleanShutdown: true, logger: logger, onIOFailure: onIOFailure)
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

    /// Flush by interval, recovery-point checkpoint, retention, compaction (when enabled).
    public func startBackgroundTasks() {
        state.withLock { st in
            guard st.timers.isEmpty, !st.isShutdown else { return }
            func every(_ ms: Int64, _ task: @escaping @Sendable () -> Void) {
                guard ms > 0, ms < Int64(Int32.max) * 1000 else { return }
                let t = DispatchSource.makeTimerSource(queue: scheduler)
                t.schedule(deadline: .now() + .milliseconds(Int(ms)), repeating: .milliseconds(Int(ms)))
                t.setEventHandler(handler: task)
                t.resume()
                st.timers.append(t)
            }
            every(settings.flushCheckIntervalMs) { [weak self] in self?.flushDirtyLogs() }
            every(settings.recoveryPointCheckpointIntervalMs) { [weak self] in self?.checkpointRecoveryPoints() }
            every(settings.retentionCheckIntervalMs) { [weak self] in self?.cleanupLogs() }
            if settings.cleanerEnabled {
                let c = LogCleaner(manager: self, logger: logger)
                cleaner = c
                c.start()
            }
        }
    }

    /// Flushes logs whose `flush.ms` has passed since their last flush.
    public func flushDirtyLogs() {
        let now = FS.nowMs()
        for log in allLogs {
            let ms = log.config.flushMs
            if ms == .max { continue }
            if now - log.lastFlushTime >= ms && log.unflushedMessages > 0 { log.flush() }
        }
    }

    /// Writes `recovery-point-offset-checkpoint` in every dir.
    public func checkpointRecoveryPoints() {
        let entries: [(String, TopicPartition, Log)] = state.withLock { st in st.logs.map { (st.logDirOf[$0.key]!, $0.key, $0.value) } }
        for dir in logDirs {
            var points: [TopicPartition: Int64] = [:]
            for (d, tp, l) in entries where d == dir { points[tp] = l.recoveryPoint }
            do { try OffsetCheckpoint(path: dir + "/" + Self.recoveryPointCheckpointFile).write(points) } catch {
                logger.error("Failed to write recovery point checkpoint in \(dir): \(error)")
            }
        }
    }

    /// Retention pass over every non-compacted log; returns the number of segments deleted.
    @discardableResult
    public func cleanupLogs() -> Int {
        var total = 0
        for log in allLogs where !log.config.compact {
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
    public func runLogCleanerOnce() -> CleanerStats? {
        cleanerCheckpoints.withLock { cleanerCheckpoints -> CleanerStats? in
            if cleanerCheckpoints == nil { cleanerCheckpoints = LogCleaner.readCheckpoints(dirs: logDirs, logger: logger) }
            var best: (log: Log, firstDirty: Int64, ratio: Double)? = nil
            for log in allLogs where log.config.compact {
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

    /// Flushes and closes every log, writes checkpoints and the clean-shutdown marker, unlocks the dirs.
    public func shutdown() {
        let all: [Log] = state.withLock { st in
            if st.isShutdown { return [] }
            st.isShutdown = true
            for t in st.timers { t.cancel() }
            st.timers = []
            return Array(st.logs.values)
        }
        if all.isEmpty && state.withLock({ st in st.lockFds.isEmpty }) { return }
        cleaner?.stop()
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
