import Foundation

/// Jepsen's queue checker for one topic: what the writers were told against what the drained log holds.
public struct QueueCheck: Sendable {
    public var topic: String
    public var acks: Int16
    public var attempts = 0
    public var acknowledged = 0
    public var failed = 0
    public var indeterminate = 0
    /// Acknowledged values the drained log lacks.
    public var lost: [String] = []
    /// Values the drained log holds more than once.
    public var duplicated: [String] = []
    /// Acknowledged values that sit before an earlier acknowledged value of the same writer.
    public var reordered = 0
    /// (partition, offset) acknowledged for two different values, or an acknowledged value found
    /// at another offset than the one acknowledged (so its acknowledged offset holds something else).
    public var offsetConflicts: [String] = []
    /// Unacknowledged (failed or indeterminate) values that made it into the log: allowed.
    public var unacknowledgedPresent = 0
    /// Values in the log no writer ever sent: never allowed.
    public var unexpected: [String] = []
    public var messagesInLog = 0

    public var ok: Bool { lost.isEmpty && duplicated.isEmpty && reordered == 0 && offsetConflicts.isEmpty && unexpected.isEmpty }
}

/// Byte comparison of one partition's replicas up to the high watermark.
public struct ReplicaCheck: Sendable {
    public var topic: String
    public var partition: Int32
    public var highWatermark: Int64
    /// broker id -> log end offset found in its segment files (-1: no log).
    public var logEndOffsets: [Int: Int64] = [:]
    /// broker id -> bytes up to the high watermark
    public var bytes: [Int: Int] = [:]
    public var identical = false
    public var problem: String?
}

public enum QueueChecker {
    public static func check(topic: String, acks: Int16, attempts: [WriteAttempt],
                             drained: [Int32: (highWatermark: Int64, messages: [(offset: Int64, value: String)])]) -> QueueCheck {
        var c = QueueCheck(topic: topic, acks: acks)
        let mine = attempts.filter { $0.topic == topic }
        c.attempts = mine.count
        var sent = Set<String>()
        var acked: [String: (partition: Int32, offset: Int64)] = [:]
        var ackedAt: [String: String] = [:]   // "p/offset" -> value
        for a in mine {
            sent.insert(a.value)
            switch a.outcome {
            case .ok(let off):
                c.acknowledged += 1
                acked[a.value] = (a.partition, off)
                let k = "\(a.partition)/\(off)"
                if let other = ackedAt[k], other != a.value {
                    c.offsetConflicts.append("partition \(a.partition) offset \(off) acknowledged for \(other) and \(a.value)")
                }
                ackedAt[k] = a.value
            case .failed: c.failed += 1
            case .unknown: c.indeterminate += 1
            }
        }
        var found: [String: [(partition: Int32, offset: Int64)]] = [:]
        for (p, d) in drained {
            c.messagesInLog += d.messages.count
            for m in d.messages { found[m.value, default: []].append((p, m.offset)) }
        }
        for (v, locs) in found {
            if locs.count > 1 { c.duplicated.append("\(v) at \(locs.map { "\($0.partition)/\($0.offset)" }.joined(separator: ", "))") }
            if !sent.contains(v) { c.unexpected.append(v) }
            if acked[v] == nil && sent.contains(v) { c.unacknowledgedPresent += 1 }
        }
        for (v, at) in acked {
            guard let locs = found[v] else { c.lost.append("\(v) (acknowledged at partition \(at.partition) offset \(at.offset))"); continue }
            if !locs.contains(where: { $0.partition == at.partition && $0.offset == at.offset }) {
                c.offsetConflicts.append("\(v) acknowledged at partition \(at.partition) offset \(at.offset) but found at \(locs.map { "\($0.partition)/\($0.offset)" }.joined(separator: ", "))")
            }
        }
        // Reordering: per writer (partition), acknowledged values in send order must have rising log offsets.
        for p in Set(mine.map(\.partition)) {
            var maxOffset: Int64 = -1
            for a in mine where a.partition == p && a.acknowledged {
                guard let off = found[a.value]?.first?.offset else { continue }
                if off < maxOffset { c.reordered += 1 }
                maxOffset = max(maxOffset, off)
            }
        }
        c.lost.sort()
        c.duplicated.sort()
        return c
    }

    /// Concatenated message-set bytes of `<logDir>/<topic>-<partition>/*.log` for entries below
    /// `highWatermark`, and the log end offset.
    public static func replicaBytes(logDir: String, topic: String, partition: Int32, below highWatermark: Int64) -> (bytes: [UInt8], logEnd: Int64)? {
        let dir = "\(logDir)/\(topic)-\(partition)"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return nil }
        let logs = names.filter { $0.hasSuffix(".log") }.compactMap { n -> (Int64, String)? in
            guard let base = Int64(n.dropLast(4)) else { return nil }
            return (base, "\(dir)/\(n)")
        }.sorted { $0.0 < $1.0 }
        var out: [UInt8] = []
        var logEnd: Int64 = logs.first?.0 ?? 0
        for (_, path) in logs {
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            let b = [UInt8](data)
            var pos = 0
            while pos + 12 <= b.count {
                var off: Int64 = 0
                for i in 0..<8 { off = off << 8 | Int64(b[pos + i]) }
                var size: Int32 = 0
                for i in 8..<12 { size = size << 8 | Int32(b[pos + i]) }
                guard size >= 14, pos + 12 + Int(size) <= b.count else { break }   // torn tail
                if off < highWatermark { out.append(contentsOf: b[pos..<(pos + 12 + Int(size))]) }
                logEnd = off + 1
                pos += 12 + Int(size)
            }
        }
        return (out, logEnd)
    }

    public static func compareReplicas(topic: String, partition: Int32, highWatermark: Int64,
                                       logDirs: [Int: String]) -> ReplicaCheck {
        var r = ReplicaCheck(topic: topic, partition: partition, highWatermark: highWatermark)
        var contents: [Int: [UInt8]] = [:]
        for (id, dir) in logDirs.sorted(by: { $0.key < $1.key }) {
            guard let (bytes, end) = replicaBytes(logDir: dir, topic: topic, partition: partition, below: highWatermark) else {
                r.logEndOffsets[id] = -1
                continue
            }
            r.logEndOffsets[id] = end
            r.bytes[id] = bytes.count
            contents[id] = bytes
        }
        let short = r.logEndOffsets.filter { $0.value < highWatermark }.map(\.key).sorted()
        if !short.isEmpty {
            r.problem = "replica(s) \(short) end below the high watermark \(highWatermark)"
        }
        let distinct = Set(contents.values)
        if distinct.count > 1 {
            let ids = contents.keys.sorted()
            let first = contents[ids[0]]!
            var where_ = ""
            for id in ids.dropFirst() where contents[id]! != first {
                let other = contents[id]!
                let n = min(first.count, other.count)
                let at = (0..<n).first { first[$0] != other[$0] } ?? n
                where_ += " broker \(ids[0]) vs \(id): first difference at byte \(at) (sizes \(first.count)/\(other.count));"
            }
            r.problem = (r.problem.map { $0 + "; " } ?? "") + "bytes differ:" + where_
        }
        r.identical = r.problem == nil && contents.count == logDirs.count
        return r
    }
}
