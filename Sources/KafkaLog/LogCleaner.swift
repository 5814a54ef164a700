#if canImport(Glibc)
import Glibc
#endif
import KafkaProtocol
import Logging
import Synchronization

/// Statistics of one cleaning pass over a log.
public struct CleanerStats: Sendable, Equatable {
    public var topicPartition: TopicPartition
    public var firstDirtyOffset: Int64
    public var endOffset: Int64
    public var messagesRead = 0
    public var messagesWritten = 0
    public var bytesRead = 0
    public var bytesWritten = 0
    public var segmentsBefore = 0
    public var segmentsAfter = 0
}

/// Compaction for `cleanup.policy=compact` logs, after 0.8.2's `LogCleaner`: keeps the last message of each
/// key in the non-active segments, drops delete markers (null values) older than `delete.retention.ms`,
/// preserves offsets, rewrites compressed sets uncompressed, and records progress in `cleaner-offset-checkpoint`.
/// The passes are driven by `LogManager` (`startBackgroundTasks`), each on its log dir's executor.
enum LogCleaner {
    static let checkpointFile = "cleaner-offset-checkpoint"

    // MARK: checkpoints

    static func readCheckpoints(dirs: [String], logger: Logger) -> [TopicPartition: Int64] {
        var out: [TopicPartition: Int64] = [:]
        for d in dirs {
            do {
                for (tp, o) in try OffsetCheckpoint(path: d + "/" + checkpointFile).read() { out[tp] = o }
            } catch {
                logger.warning("Ignoring unreadable cleaner checkpoint in \(d): \(error)")
            }
        }
        return out
    }

    // MARK: cleaning

    /// Bytes before the active segment from `firstDirty` on, over bytes before the active segment.
    static func dirtyRatio(_ log: Log, firstDirty: Int64) -> (ratio: Double, dirtyBytes: Int) {
        let segs = log.segments.dropLast()
        var total = 0, dirty = 0
        for s in segs {
            total += s.size
            if s.baseOffset >= firstDirty { dirty += s.size }
        }
        return (total == 0 ? 0 : Double(dirty) / Double(total), dirty)
    }

    /// Cleans `log` from `firstDirty`; returns nil when there was nothing to clean.
    static func clean(log: Log, firstDirty rawFirstDirty: Int64, maxKeys: Int, logger: Logger,
                      now: Int64 = FS.nowMs()) throws -> CleanerStats? {
        let cfg = log.config
        let segs = log.segments
        guard segs.count > 1 else { return nil }
        let activeBase = segs.last!.baseOffset
        let firstDirty = max(rawFirstDirty, segs.first!.baseOffset)
        guard firstDirty < activeBase else { return nil }
        var stats = CleanerStats(topicPartition: log.topicPartition, firstDirtyOffset: firstDirty, endOffset: firstDirty)
        stats.segmentsBefore = segs.count

        // 1. Offset map over the dirty segments (key → last offset), stopping at a segment boundary when full.
        var map: [[UInt8]: Int64] = [:]
        var endOffset = firstDirty
        for (i, s) in segs.enumerated() where s.baseOffset < activeBase {
            let next = segs[i + 1].baseOffset
            if next <= firstDirty { continue }
            var segKeys: [([UInt8], Int64)] = []
            _ = try forEachMessage(s) { offset, key, _ in
                if offset >= firstDirty, let key { segKeys.append((key, offset)) }
            }
            if !map.isEmpty && map.count + segKeys.count > maxKeys { break }
            for (k, o) in segKeys { map[k] = o }
            endOffset = next
        }
        guard endOffset > firstDirty else { return nil }
        stats.endOffset = endOffset

        // 2. Delete horizon: tombstones in segments modified before it are dropped.
        let cleanSegs = segs.filter { $0.baseOffset < firstDirty }
        let horizon: Int64 = cleanSegs.last.map { $0.lastModified - cfg.deleteRetentionMs } ?? 0

        // 3. Recopy [logStart, endOffset) in groups of at most segment.bytes.
        let toClean = segs.filter { $0.baseOffset < endOffset }
        var groups: [[LogSegment]] = []
        var cur: [LogSegment] = []
        var curSize = 0
        for s in toClean {
            if !cur.isEmpty && (curSize + s.size > cfg.segmentBytes ||
                                (curSize + s.size) / max(1, cfg.indexIntervalBytes) * 8 > cfg.maxIndexSize) {
                groups.append(cur); cur = []; curSize = 0
            }
            cur.append(s); curSize += s.size
        }
        if !cur.isEmpty { groups.append(cur) }

        for group in groups {
            let base = group[0].baseOffset
            for suffix in [".log.cleaned", ".index.cleaned"] {
                FS.remove(log.directory + "/" + segmentFileName(baseOffset: base, suffix: suffix))
            }
            let cleaned = try LogSegment(directory: log.directory, baseOffset: base,
                                         indexIntervalBytes: cfg.indexIntervalBytes, maxIndexSize: cfg.maxIndexSize,
                                         rollJitterMs: 0, suffix: ".cleaned")
            var pending: [UInt8] = []
            var pendingFirst: Int64 = -1
            func flushPending() throws {
                if pending.isEmpty { return }
                try withBytes(pending) { (p) throws(LogError) in try cleaned.append(firstOffset: pendingFirst, bytes: p) }
                stats.bytesWritten += pending.count
                pending.removeAll(keepingCapacity: true)
            }
            for s in group {
                let retainDeletes = s.lastModified > horizon
                stats.bytesRead += s.size
                _ = try forEachMessage(s) { offset, key, entry in
                    stats.messagesRead += 1
                    var keep = true
                    if let key, let last = map[key], offset < last { keep = false }
                    if keep && !retainDeletes && entry.value == nil { keep = false }
                    if !keep { return }
                    if pending.isEmpty { pendingFirst = offset }
                    if let raw = entry.raw {
                        pending.append(contentsOf: raw)
                    } else {
                        MessageSetBuilder.appendMessage(to: &pending, offset: offset, key: key, value: entry.value,
                                                        attributes: 0)
                    }
                    stats.messagesWritten += 1
                    if pending.count >= cfg.indexIntervalBytes { try flushPending() }
                }
            }
            try flushPending()
            try cleaned.flush()
            try cleaned.index.trimToValidSize()
            let modified = group.last!.lastModified
            FS.setMtime(path: cleaned.logPath, ms: modified)
            try log.replaceSegments(group, with: cleaned)
        }
        stats.segmentsAfter = log.segmentCount
        logger.info("""
            Cleaned log \(log.topicPartition.directoryName) up to offset \(endOffset): \(stats.messagesRead) messages read, \
            \(stats.messagesWritten) kept; \(stats.bytesRead) bytes → \(stats.bytesWritten) bytes; \
            segments \(stats.segmentsBefore) → \(stats.segmentsAfter).
            """)
        return stats
    }

    struct MessageView {
        var value: [UInt8]?
        /// The original entry bytes when the message is a top-level uncompressed entry (copied verbatim).
        var raw: UnsafeRawBufferPointer?
    }

    /// Deep walk over a segment: every message with its offset and key (wrappers decompressed).
    static func forEachMessage(_ s: LogSegment, _ body: (Int64, [UInt8]?, MessageView) throws -> Void) throws -> SegmentEntryReader.Stop {
        try SegmentEntryReader.forEach(fd: s.fd, limit: s.size) { e in
            let attributes = e.bytes[17]
            if attributes & 0x07 == 0 {
                let ranges = try MessageParsing.keyValueRangesPublic(e.bytes, size: e.size)
                let key = ranges.key.map { Array(UnsafeRawBufferPointer(rebasing: e.bytes[$0])) }
                let value = ranges.value.map { Array(UnsafeRawBufferPointer(rebasing: e.bytes[$0])) }
                try body(e.offset, key, MessageView(value: value, raw: e.bytes))
            } else {
                for m in try MessageSetDecoder.decode(e.bytes, deep: true) {
                    try body(m.offset, m.key, MessageView(value: m.value, raw: nil))
                }
            }
            return true
        }
    }
}

extension Log {
    /// Atomically replaces `old` (consecutive, non-active segments) with `new` (a `.cleaned` segment whose base is
    /// the first old base): `.cleaned` → `.swap`, publish, old files → `.deleted`, `.swap` → final name.
    /// The old files are removed (after `file.delete.delay.ms`) once the write lock is released.
    func replaceSegments(_ old: [LogSegment], with new: LogSegment) throws {
        var detached: [LogSegment] = []
        defer { deleteDetached(detached) }
        try writeLock.withLock { _ throws -> Void in
            var snap = snapshot
            guard let i = snap.segments.firstIndex(where: { $0 === old[0] }),
                  i + old.count < snap.segments.count,
                  zip(snap.segments[i..<(i + old.count)], old).allSatisfy({ $0 === $1 }) else {
                new.deleteFiles()
                throw LogError.io("log \(topicPartition.directoryName) changed while cleaning; cleaning aborted")
            }
            try new.changeSuffix(from: ".cleaned", to: ".swap")
            snap.segments.replaceSubrange(i..<(i + old.count), with: [new])
            publish(snap)
            for s in old { markDeleted(s) }
            detached = old
            try new.changeSuffix(from: ".swap", to: "")
        }
    }
}
