#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import KafkaProtocol
import Logging
import Synchronization

/// Result of an append.
public struct LogAppendInfo: Sendable, Equatable {
    /// First and last offsets written (-1, -1 when the set held no complete message).
    public var firstOffset: Int64
    public var lastOffset: Int64
    /// Messages appended (deep count for recompressed sets, top-level count otherwise).
    public var messageCount: Int
    /// Bytes of the produced set that were valid (a trailing partial entry is dropped).
    public var validBytes: Int
    /// Codec of the appended data.
    public var codec: CompressionCodec = .none
    /// Bytes actually written to the segment.
    public var bytesWritten: Int = 0
}

/// A byte range of one segment file, for sendfile.
public struct LogReadSlice: @unchecked Sendable {
    /// Keeps the segment's file open for as long as the slice lives (a segment closes its file
    /// when the last reference goes, even after it was deleted or replaced by the cleaner), so
    /// a read costs no dup/close.
    private let segment: LogSegment?
    public var position: Int64
    public var length: Int
    /// Base offset of the segment the range comes from (-1 for an empty slice at the log end).
    public var segmentBaseOffset: Int64

    init(segment: LogSegment?, position: Int64, length: Int) {
        self.segment = length > 0 ? segment : nil
        self.position = position
        self.length = length
        self.segmentBaseOffset = segment?.baseOffset ?? -1
    }

    /// The segment file's descriptor, open while this slice lives; -1 when the slice is empty.
    /// Borrowed: never close it.
    public var fileDescriptor: Int32 { segment?.fd ?? -1 }
}

/// One partition's log: a list of segments, the last one active. Internally locked; reads take an
/// immutable snapshot of the segment list and never wait for appends.
public final class Log: @unchecked Sendable {
    public let topicPartition: TopicPartition
    public let directory: String
    let logger: Logger

    struct Snapshot {
        var segments: [LogSegment]
        var logEndOffset: Int64
    }

    /// Serialises writers (append, roll, truncate, delete, flush bookkeeping); what it guards of
    /// its own is whether the log is closed. Order: `writeLock`, then `published`.
    struct Writer { var isClosed = false }
    let writeLock = Mutex(Writer())
    /// The published state; held only for copies and short updates.
    private struct PublishedState {
        var _snapshot: Snapshot
        var _config: LogConfig
        var _recoveryPoint: Int64
        var _lastFlushTime: Int64
        /// The first write or fsync error: from then on the log takes no appends and its recovery
        /// point stays where it was, so the next start recovers what may not be on disk.
        var _ioFailure: LogError?
    }
    private let published: Mutex<PublishedState>
    /// Told about that first error (the broker halts, as 0.8.2 does, so leadership moves away).
    private let onIOFailure: @Sendable (TopicPartition, LogError) -> Void
    /// Runs the fsync after a roll and delayed segment deletion: the log dir's I/O pool in the
    /// broker (`LogManager` passes it), Dispatch for logs opened on their own.
    let executor: any LogDirExecutor
    /// The log dir this log lives in (the parent of `directory`), naming its executor's pool.
    let logDir: String

    // MARK: init / load

    /// Opens (or creates) the log in `directory`. Without `cleanShutdown`, every segment from the one holding
    /// `recoveryPoint` on is rescanned (sizes, CRCs), truncated at the first bad entry, and later segments deleted.
    public init(directory: String, topicPartition: TopicPartition, config: LogConfig, recoveryPoint: Int64 = 0,
                cleanShutdown: Bool = false, logger: Logger = Logger(label: "kafka.log"),
                onIOFailure: @escaping @Sendable (TopicPartition, LogError) -> Void = { _, _ in },
                executor: (any LogDirExecutor)? = nil) throws {
        self.topicPartition = topicPartition
        self.directory = directory
        self.logger = logger
        self.onIOFailure = onIOFailure
        self.executor = executor ?? DispatchLogDirExecutor()
        self.logDir = Log.parentDirectory(directory)
        try FS.mkdirs(directory)
        let loaded = try Log.loadSegments(directory: directory, config: config, recoveryPoint: recoveryPoint,
                                          cleanShutdown: cleanShutdown, name: topicPartition.description, logger: logger)
        let leo = loaded.last!.nextOffset()
        self.published = Mutex(PublishedState(_snapshot: Snapshot(segments: loaded, logEndOffset: leo), _config: config,
                                               _recoveryPoint: cleanShutdown ? leo : min(recoveryPoint, leo),
                                               _lastFlushTime: FS.nowMs()))
        logger.info("Completed load of log \(topicPartition.directoryName) with log end offset \(leo)")
    }

    static func parentDirectory(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return "." }
        return slash == p.startIndex ? "/" : String(p[..<slash])
    }

    private static func jitter(_ config: LogConfig) -> Int64 {
        config.segmentJitterMs > 0 ? Int64.random(in: 0..<config.segmentJitterMs) : 0
    }

    static func newSegment(_ directory: String, _ base: Int64, _ config: LogConfig, suffix: String = "") throws(LogError) -> LogSegment {
        try LogSegment(directory: directory, baseOffset: base, indexIntervalBytes: config.indexIntervalBytes,
                       maxIndexSize: config.maxIndexSize, rollJitterMs: jitter(config), suffix: suffix)
    }

    private static func loadSegments(directory: String, config: LogConfig, recoveryPoint: Int64, cleanShutdown: Bool,
                                     name: String, logger: Logger) throws -> [LogSegment] {
        // 1. temporary files left by deletion / cleaning; swap files take their place.
        for f in try FS.listDirectory(directory) {
            let path = directory + "/" + f
            if f.hasSuffix(".deleted") || f.hasSuffix(".cleaned") {
                FS.remove(path)
            } else if f.hasSuffix(".swap") {
                let target = String(path.dropLast(".swap".count))
                logger.info("Found log file \(path) from interrupted swap operation, repairing.")
                try FS.rename(path, target)
                if target.hasSuffix(".log") {
                    FS.remove(String(target.dropLast(".log".count)) + ".index")
                }
            }
        }
        // 2. segments. Indexes that are missing or fail the sanity check are rebuilt, unless the segment is
        //    about to be recovered anyway (unclean shutdown, at or past the recovery point).
        var segments: [LogSegment] = []
        var rebuild: [(LogSegment, Bool)] = []   // (segment, index was missing)
        for f in try FS.listDirectory(directory).sorted() {
            let path = directory + "/" + f
            if f.hasSuffix(".index") {
                let logFile = String(path.dropLast(".index".count)) + ".log"
                if !FS.exists(logFile) {
                    logger.warning("Found an orphaned index file, \(path), with no corresponding log file.")
                    FS.remove(path)
                }
            } else if f.hasSuffix(".log") {
                guard let base = Int64(f.dropLast(".log".count)), base >= 0 else { continue }
                let hadIndex = LogSegment.indexExists(directory: directory, baseOffset: base)
                let seg = try newSegment(directory, base, config)
                if !hadIndex {
                    rebuild.append((seg, true))
                } else if !seg.index.sanityCheck(logSize: seg.size) {
                    rebuild.append((seg, false))
                }
                segments.append(seg)
            }
        }
        segments.sort { $0.baseOffset < $1.baseOffset }
        if segments.isEmpty {
            segments.append(try newSegment(directory, 0, config))
            return segments
        }
        let recoverFrom = cleanShutdown ? Int64.max
            : segments[segments.lastIndex(where: { $0.baseOffset <= recoveryPoint }) ?? 0].baseOffset
        for (seg, missing) in rebuild where seg.baseOffset < recoverFrom {
            if missing {
                logger.error("Could not find index file corresponding to log file \(seg.logPath), rebuilding index...")
            } else {
                logger.warning("Corrupt index found for \(seg.logPath) (index file \(seg.index.path)), rebuilding index...")
            }
            let r = try seg.recover(maxMessageBytes: config.maxMessageBytes)
            if r.truncatedBytes > 0 {
                logger.warning("Truncated \(r.truncatedBytes) bytes at byte \(r.validBytes) of \(seg.logPath): \(r.reason ?? "invalid data")")
            }
        }
        // 3. recovery after an unclean shutdown.
        if !cleanShutdown {
            var i = segments.lastIndex(where: { $0.baseOffset <= recoveryPoint }) ?? 0
            while i < segments.count {
                let seg = segments[i]
                logger.info("Recovering unflushed segment \(seg.baseOffset) in log \(name).")
                let r = try seg.recover(maxMessageBytes: config.maxMessageBytes)
                if r.truncatedBytes > 0 {
                    let later = segments[(i + 1)...]
                    logger.warning("""
                        Corruption found in segment \(seg.baseOffset) of log \(name): \(r.reason ?? "invalid data") at byte \
                        \(r.validBytes) of \(seg.logPath); truncated \(r.truncatedBytes) bytes, log now ends at offset \
                        \((r.lastOffset ?? seg.baseOffset - 1) + 1)\(later.isEmpty ? "" : "; deleting \(later.count) later segment(s) starting at offset \(later.first!.baseOffset)").
                        """)
                    for s in later { s.deleteFiles() }
                    segments.removeSubrange((i + 1)...)
                    break
                }
                i += 1
            }
        }
        try segments.last!.index.resize(segments.last!.maxIndexSize)
        return segments
    }

    // MARK: state

    var snapshot: Snapshot { published.withLock { st in st._snapshot } }

    func publish(_ s: Snapshot) { published.withLock { st in st._snapshot = s } }

    public var config: LogConfig { published.withLock { st in st._config } }

    public func updateConfig(_ c: LogConfig) { published.withLock { st in st._config = c } }

    /// The write or fsync error that took this log offline, if any.
    public var ioFailure: LogError? { published.withLock { st in st._ioFailure } }

    private func failed(_ error: LogError) {
        let first: Bool = published.withLock { st in
            guard st._ioFailure == nil else { return false }
            st._ioFailure = error
            return true
        }
        guard first else { return }
        logger.critical("I/O error on log \(topicPartition.directoryName), taking it offline: \(error)")
        onIOFailure(topicPartition, error)
    }

    public var logEndOffset: Int64 { snapshot.logEndOffset }
    /// Base offset of the segment appends go to: reads from below it may miss the page cache.
    public var activeSegmentBaseOffset: Int64 { snapshot.segments.last?.baseOffset ?? 0 }

    public var logStartOffset: Int64 { snapshot.segments.first!.baseOffset }

    public var recoveryPoint: Int64 { published.withLock { st in st._recoveryPoint } }

    /// Time of the last flush (ms).
    public var lastFlushTime: Int64 { published.withLock { st in st._lastFlushTime } }

    public var size: Int64 { snapshot.segments.reduce(0) { $0 + Int64($1.size) } }

    public var segmentCount: Int { snapshot.segments.count }

    /// Base offsets of the segments, oldest first.
    public var segmentBaseOffsets: [Int64] { snapshot.segments.map(\.baseOffset) }

    /// Offsets written but not yet flushed (`logEndOffset − recoveryPoint`).
    public var unflushedMessages: Int64 { logEndOffset - recoveryPoint }

    /// The current segments, oldest first (read-only inspection: tools and tests).
    public var segments: [LogSegment] { snapshot.segments }

    // MARK: append

    /// Leader append (`assignOffsets`): validates and assigns offsets from the log end offset;
    /// follower append: keeps the given offsets, which must be increasing and ≥ the log end offset.
    /// Rolls segments as needed; one write(2) per set.
    public func append(_ messageSet: consuming [UInt8], assignOffsets: Bool = true) throws(LogError) -> LogAppendInfo {
        var set = consume messageSet
        let r: Result<LogAppendInfo, LogError>
        if assignOffsets {
            r = set.withUnsafeMutableBytes { m in
                do throws(LogError) { return .success(try append(in: m, assignOffsets: true)) } catch { return .failure(error) }
            }
        } else {
            // A follower append only reads the set: no copy of a shared array.
            r = set.withUnsafeBytes { p in
                do throws(LogError) { return .success(try appendKeepingOffsets(p)) } catch { return .failure(error) }
            }
        }
        return try r.get()
    }

    /// Follower append of a set in the caller's memory, which is only read.
    public func appendKeepingOffsets(_ set: UnsafeRawBufferPointer) throws(LogError) -> LogAppendInfo {
        // Not written: with assignOffsets false `append(in:)` only reads the set.
        try append(in: UnsafeMutableRawBufferPointer(mutating: set), assignOffsets: false)
    }

    /// `append` of a set in the caller's memory, which gets its offsets written in place: an
    /// uncompressed produced set is validated and written without being copied (the copies were
    /// 20 % of the broker's CPU at one partition, BENCHMARKS.md). The caller must own that memory
    /// for the call: nothing else may read or write it meanwhile.
    public func append(in set: UnsafeMutableRawBufferPointer, assignOffsets: Bool = true) throws(LogError) -> LogAppendInfo {
        let cfg = config
        // Shallow validation (sizes, CRCs) before taking the lock, as 0.8.2 does.
        let info: MessageSetInfo
        do {
            info = try MessageSetValidator.analyze(UnsafeRawBufferPointer(set), maxMessageBytes: cfg.maxMessageBytes,
                                                  requireKeys: cfg.compact && assignOffsets)
        } catch {
            throw .invalidMessageSet(error)
        }
        if info.shallowCount == 0 {
            return LogAppendInfo(firstOffset: -1, lastOffset: -1, messageCount: 0, validBytes: info.validBytes)
        }
        return try writeLock.withLock { w throws(LogError) -> LogAppendInfo in
            guard !w.isClosed else { throw .closed("log \(topicPartition.directoryName) is closed") }
            if let e = ioFailure { throw .io("log \(topicPartition.directoryName) is offline after an I/O error: \(e)") }
            let leo = snapshot.logEndOffset
            let validated: ValidatedMessageSet
            do throws(MessageSetError) {
                if assignOffsets {
                    validated = try MessageSetValidator.assignOffsets(in: set, info: info, firstOffset: leo,
                                                                      maxMessageBytes: cfg.maxMessageBytes,
                                                                      requireKeys: cfg.compact)
                } else {
                    validated = try MessageSetValidator.keepOffsets(info: info, nextOffset: leo)
                }
            } catch {
                throw .invalidMessageSet(error)
            }
            let size = validated.inCallerMemory ? validated.validBytes : validated.bytes.count
            if size > cfg.segmentBytes {
                throw .invalidMessageSet(.messageSetTooLarge(size: size, segmentBytes: cfg.segmentBytes))
            }
            if size == 0 {
                return LogAppendInfo(firstOffset: -1, lastOffset: -1, messageCount: 0, validBytes: validated.validBytes,
                                     codec: validated.codec)
            }
            do throws(LogError) {
                let seg = try maybeRoll(incoming: size, config: cfg)
                if validated.inCallerMemory {
                    try seg.append(firstOffset: validated.firstOffset, bytes: UnsafeRawBufferPointer(rebasing: set[0..<size]))
                } else {
                    try withBytes(validated.bytes) { (p) throws(LogError) in
                        try seg.append(firstOffset: validated.firstOffset, bytes: p)
                    }
                }
            } catch {
                failed(error)
                throw error
            }
            var snap = snapshot
            snap.logEndOffset = validated.lastOffset + 1
            publish(snap)
            let result = LogAppendInfo(firstOffset: validated.firstOffset, lastOffset: validated.lastOffset,
                                       messageCount: validated.messageCount, validBytes: validated.validBytes,
                                       codec: validated.codec, bytesWritten: size)
            if snap.logEndOffset - recoveryPoint >= cfg.flushIntervalMessages {
                flushLocked(upTo: snap.logEndOffset)
            }
            return result
        }
    }

    /// Rolls when the active segment is too full for `incoming` bytes, too old, or its index is full.
    private func maybeRoll(incoming: Int, config cfg: LogConfig) throws(LogError) -> LogSegment {
        let seg = snapshot.segments.last!
        let now = FS.nowMs()
        let tooBig = seg.size > cfg.segmentBytes - incoming
        let tooOld = seg.size > 0 && now - seg.created > cfg.segmentMs - seg.rollJitterMs
        if seg.size > 0 && (tooBig || tooOld || seg.index.isFull) {
            return try rollLocked(config: cfg)
        }
        return seg
    }

    /// Starts a new active segment at the log end offset.
    @discardableResult
    public func roll() throws(LogError) -> Int64 {
        try writeLock.withLock { _ throws(LogError) -> Int64 in
            try rollLocked(config: config).baseOffset
        }
    }

    private func rollLocked(config cfg: LogConfig) throws(LogError) -> LogSegment {
        var snap = snapshot
        let newOffset = snap.logEndOffset
        let old = snap.segments.last!
        if old.baseOffset == newOffset && old.size == 0 { return old }
        for suffix in [".log", ".index"] {
            let p = directory + "/" + segmentFileName(baseOffset: newOffset, suffix: suffix)
            if FS.exists(p) {
                logger.warning("Newly rolled segment file \(p) already exists; deleting it first")
                FS.remove(p)
            }
        }
        try old.index.trimToValidSize()
        let seg = try Log.newSegment(directory, newOffset, cfg)
        snap.segments.append(seg)
        publish(snap)
        logger.info("Rolled new log segment for '\(topicPartition.directoryName)' at offset \(newOffset)")
        // fsync of the old segment: on the log dir's I/O pool, never on the appending thread.
        executor.execute(inDir: logDir) { [weak self] active in
            if active { self?.flush(upTo: newOffset) }
        }
        return seg
    }

    // MARK: read

    /// Bytes from the first entry whose offset ≥ `startOffset`, at most `maxBytes`, never past the position of
    /// `maxOffset` (exclusive). `startOffset == logEndOffset` → empty; above the end or below the start →
    /// `offsetOutOfRange`. A `maxOffset` ≤ `startOffset` gives an empty slice (0.8.2 would raise an error there).
    public func read(startOffset: Int64, maxBytes: Int, maxOffset: Int64? = nil) throws(LogError) -> LogReadSlice {
        let r = try locate(startOffset: startOffset, maxBytes: maxBytes, maxOffset: maxOffset)
        return LogReadSlice(segment: r.segment, position: Int64(r.position), length: r.length)
    }

    /// How many bytes `read` would return, without opening anything (delayed-fetch checks).
    public func availableBytes(startOffset: Int64, maxBytes: Int, maxOffset: Int64? = nil) throws(LogError) -> Int {
        try locate(startOffset: startOffset, maxBytes: maxBytes, maxOffset: maxOffset).length
    }

    /// As `read`, copying the bytes.
    public func readBytes(startOffset: Int64, maxBytes: Int, maxOffset: Int64? = nil) throws(LogError) -> [UInt8] {
        let r = try locate(startOffset: startOffset, maxBytes: maxBytes, maxOffset: maxOffset)
        guard let seg = r.segment, r.length > 0 else { return [] }
        return seg.readBytes(position: r.position, length: r.length)
    }

    private func locate(startOffset: Int64, maxBytes: Int, maxOffset: Int64?) throws(LogError)
        -> (segment: LogSegment?, position: Int, length: Int)
    {
        let snap = snapshot
        let segs = snap.segments
        if startOffset == snap.logEndOffset { return (nil, 0, 0) }
        guard let first = segs.first, startOffset >= first.baseOffset, startOffset <= snap.logEndOffset else {
            throw .offsetOutOfRange(requested: startOffset, start: segs.first?.baseOffset ?? 0, end: snap.logEndOffset)
        }
        var i = Log.floorIndex(segs, startOffset)
        while i < segs.count {
            if let r = segs[i].read(startOffset: startOffset, maxOffset: Log.bound(maxOffset, inside: segs, i), maxSize: maxBytes) {
                return (segs[i], r.position, r.length)
            }
            i += 1
        }
        return (nil, 0, 0)
    }

    /// `maxOffset` when it may end a read inside segment `i`, nil when it lies at or past the next
    /// segment's base: a read of segment `i` then ends at its end, and no scan looks for the bound
    /// (it would read the segment's last headers, maybe from the disk).
    static func bound(_ maxOffset: Int64?, inside segs: [LogSegment], _ i: Int) -> Int64? {
        guard let maxOffset, i + 1 < segs.count else { return maxOffset }
        return maxOffset < segs[i + 1].baseOffset ? maxOffset : nil
    }

    /// Index of the segment with the greatest base offset ≤ offset (0 if none).
    static func floorIndex(_ segs: [LogSegment], _ offset: Int64) -> Int {
        var lo = 0, hi = segs.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if segs[mid].baseOffset <= offset { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    // MARK: offsets

    /// Offsets request (0.8.2 `fetchOffsetsBefore`): -1 latest, -2 earliest, else the newest segment whose
    /// mtime ≤ timestamp; up to `maxNumOffsets` segment base offsets (plus the LEO), descending.
    public func offsetsBefore(timestamp: Int64, maxNumOffsets: Int) -> [Int64] {
        let snap = snapshot
        var pairs: [(offset: Int64, time: Int64)] = snap.segments.map { ($0.baseOffset, $0.lastModified) }
        if snap.segments.last!.size > 0 { pairs.append((snap.logEndOffset, FS.nowMs())) }
        var start: Int
        switch timestamp {
        case -1: start = pairs.count - 1
        case -2: start = 0
        default:
            start = pairs.count - 1
            while start >= 0 && pairs[start].time > timestamp { start -= 1 }
        }
        let n = max(0, min(maxNumOffsets, start + 1))
        var out: [Int64] = []
        out.reserveCapacity(n)
        for j in 0..<n { out.append(pairs[start - j].offset) }
        return out.sorted(by: >)
    }

    // MARK: flush

    /// fsyncs everything up to the log end offset and advances the recovery point.
    public func flush() {
        flush(upTo: logEndOffset)
    }

    /// fsyncs the segments holding offsets in [recoveryPoint, offset) and moves the recovery point to `offset`.
    /// A failed fsync leaves the recovery point where it was and takes the log offline: the page
    /// cache may have dropped the data, so it must count as unflushed.
    public func flush(upTo offset: Int64) {
        let rp = recoveryPoint
        if offset <= rp || ioFailure != nil { return }
        let segs = snapshot.segments
        var i = Log.floorIndex(segs, rp)
        let flushStart = DispatchTime.now().uptimeNanoseconds
        while i < segs.count && segs[i].baseOffset < offset {
            do { try segs[i].flush() } catch {
                failed(error)
                return
            }
            i += 1
        }
        LogFlushStats.record(nanoseconds: Int64(DispatchTime.now().uptimeNanoseconds &- flushStart))
        published.withLock { st in
            if offset > st._recoveryPoint { st._recoveryPoint = offset }
            st._lastFlushTime = FS.nowMs()
        }
    }

    private func flushLocked(upTo offset: Int64) { flush(upTo: offset) }

    // MARK: truncation

    /// Removes every message with offset ≥ `offset` (follower truncation). Offsets at or past the end are a no-op.
    public func truncate(to offset: Int64) throws {
        guard offset >= 0 else { throw LogError.invalidArgument("Cannot truncate to a negative offset (\(offset)).") }
        let detached = try writeLock.withLock { _ throws(LogError) -> [LogSegment] in
            var snap = snapshot
            if offset >= snap.logEndOffset { return [] }
            logger.info("Truncating log \(topicPartition.directoryName) to offset \(offset).")
            if snap.segments.first!.baseOffset > offset {
                return try truncateFullyLocked(startAt: offset)
            }
            let keep = snap.segments.filter { $0.baseOffset <= offset }
            let drop = snap.segments.filter { $0.baseOffset > offset }
            snap.segments = keep
            let active = keep.last!
            try active.truncate(to: offset)
            if active.index.sizeInBytes < active.maxIndexSize { try active.index.resize(active.maxIndexSize) }
            snap.logEndOffset = offset
            publish(snap)
            for s in drop { markDeleted(s) }
            published.withLock { st in st._recoveryPoint = min(st._recoveryPoint, offset) }
            return drop
        }
        deleteDetached(detached)
    }

    /// Deletes every segment and restarts the log empty at `newOffset`.
    public func truncateFullyAndStartAt(_ newOffset: Int64) throws {
        let detached = try writeLock.withLock { _ throws(LogError) -> [LogSegment] in
            try truncateFullyLocked(startAt: newOffset)
        }
        deleteDetached(detached)
    }

    /// Returns the detached segments, for `deleteDetached` once the write lock is released.
    private func truncateFullyLocked(startAt newOffset: Int64) throws(LogError) -> [LogSegment] {
        logger.info("Truncate and start log '\(topicPartition.directoryName)' at offset \(newOffset)")
        var snap = snapshot
        let old = snap.segments
        for s in old { markDeleted(s) }
        let seg = try Log.newSegment(directory, newOffset, config)
        snap.segments = [seg]
        snap.logEndOffset = newOffset
        publish(snap)
        published.withLock { st in st._recoveryPoint = min(st._recoveryPoint, newOffset) }
        return old
    }

    /// Under the write lock, for a segment just taken out of the published list: renames its
    /// files to `.deleted` (a crash from here on leaves files that the next load removes, and a
    /// new segment at the same base offset cannot collide with them).
    func markDeleted(_ seg: LogSegment) {
        do {
            try seg.changeSuffix(from: "", to: ".deleted")
        } catch {
            logger.error("Failed to rename segment \(seg.logPath) for deletion: \(error)")
        }
    }

    /// After the write lock is released: removes the `.deleted` files of detached segments, at
    /// once when `file.delete.delay.ms` is 0 (on the calling thread, which in the broker is an
    /// I/O-pool thread: retention, the cleaner, truncation), else after the delay on the log
    /// dir's executor (0.8.2 schedules the same "delete-file" task). The segments' descriptors
    /// and index mappings close when the last reference goes: here, or when a fetch still
    /// sending from one releases it. Should the executor have stopped (shutdown), the files stay
    /// and the next load removes them.
    func deleteDetached(_ segs: [LogSegment]) {
        guard !segs.isEmpty else { return }
        let work: @Sendable () -> Void = { [segs, logger] in
            for seg in segs {
                logger.info("Deleting segment \(seg.baseOffset) (\(seg.logPath))")
                seg.deleteFiles()
            }
        }
        let delay = config.fileDeleteDelayMs
        if delay <= 0 {
            work()
            return
        }
        let executor = self.executor, dir = logDir
        Task {
            try? await Task.sleep(nanoseconds: UInt64(min(delay, Int64(Int32.max))) * 1_000_000)
            executor.execute(inDir: dir) { active in if active { work() } }
        }
    }

    // MARK: retention

    /// Deletes the oldest segments for which `predicate(segment)` holds, never leaving the log
    /// without a segment (rolls first when every segment is deletable). Returns the number deleted.
    /// The write lock is held only to detach them (take them out of the published list and
    /// rename their files to `.deleted`); their files are removed after it is released.
    func deleteOldSegments(_ predicate: (LogSegment) -> Bool) throws(LogError) -> Int {
        let detached = try writeLock.withLock { _ throws(LogError) -> [LogSegment] in
            var snap = snapshot
            var deletable: [LogSegment] = []
            for (i, s) in snap.segments.enumerated() {
                let isActive = i == snap.segments.count - 1
                guard predicate(s), !(isActive && s.size == 0) else { break }
                deletable.append(s)
            }
            if deletable.isEmpty { return [] }
            if deletable.count == snap.segments.count {
                _ = try rollLocked(config: config)
                snap = snapshot
            }
            snap.segments.removeFirst(deletable.count)
            publish(snap)
            for s in deletable { markDeleted(s) }
            published.withLock { st in st._recoveryPoint = max(st._recoveryPoint, snap.segments.first!.baseOffset) }
            return deletable
        }
        deleteDetached(detached)
        return detached.count
    }

    // MARK: close

    /// Flushes, trims the active index, and stops accepting appends.
    public func close() {
        writeLock.withLock { w in
            if w.isClosed { return }
            flush()
            do { try snapshot.segments.last!.index.trimToValidSize() } catch { logger.error("\(error)") }
            w.isClosed = true
        }
    }

    /// Closes the log and removes its directory.
    public func delete() {
        writeLock.withLock { w in
            w.isClosed = true
            for s in snapshot.segments { s.deleteFiles() }
            if let names = try? FS.listDirectory(directory) { for n in names { FS.remove(directory + "/" + n) } }
            rmdir(directory)
        }
    }
}
