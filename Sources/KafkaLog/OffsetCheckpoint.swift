import KafkaProtocol

/// Kafka's checkpoint text file (`recovery-point-offset-checkpoint`, `replication-offset-checkpoint`,
/// `cleaner-offset-checkpoint`): version line `0`, entry count, then `topic partition offset` lines.
/// Written to `<file>.tmp`, fsynced, renamed over the file.
public struct OffsetCheckpoint: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    /// A missing file reads as empty; a malformed one throws `LogError.io` naming the file.
    public func read() throws -> [TopicPartition: Int64] {
        guard FS.exists(path) else { return [:] }
        let bytes = try FS.readFile(path)
        let text = String(decoding: bytes, as: UTF8.self)
        let lines = text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map { $0.trimmingCharacters() }
            .filter { !$0.isEmpty }
        func malformed(_ why: String) -> LogError { .io("Malformed checkpoint file \(path): \(why)") }
        guard let first = lines.first else { throw malformed("empty file") }
        guard let version = Int(first) else { throw malformed("bad version line '\(first)'") }
        guard version == 0 else { throw malformed("unrecognized version \(version)") }
        guard lines.count >= 2, let count = Int(lines[1]), count >= 0 else { throw malformed("bad entry count") }
        var out: [TopicPartition: Int64] = [:]
        for line in lines.dropFirst(2) {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard parts.count == 3, let p = Int32(parts[1]), let o = Int64(parts[2]) else {
                throw malformed("bad line '\(line)'")
            }
            out[TopicPartition(String(parts[0]), p)] = o
        }
        guard out.count == count, lines.count - 2 == count else {
            throw malformed("expected \(count) entries but found \(lines.count - 2)")
        }
        return out
    }

    public func write(_ offsets: [TopicPartition: Int64]) throws {
        var text = "0\n\(offsets.count)\n"
        for (tp, o) in offsets.sorted(by: { $0.key < $1.key }) {
            text += "\(tp.topic) \(tp.partition) \(o)\n"
        }
        try FS.writeFileAtomically(path, Array(text.utf8))
    }
}

extension Substring {
    func trimmingCharacters() -> String { String(self).trimmingWhitespace() }
}
