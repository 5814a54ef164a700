/// A partition of a topic: the unit of leadership, replication and storage.
public struct TopicPartition: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(_ topic: String, _ partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    /// Kafka prints partitions as `[topic,partition]`.
    public var description: String { "[\(topic),\(partition)]" }

    /// The directory name of the partition's log: `<topic>-<partition>`.
    public var directoryName: String { "\(topic)-\(partition)" }

    /// Parses a log directory name, splitting at the last `-` as Kafka does.
    public init?(directoryName: String) {
        guard let dash = directoryName.lastIndex(of: "-") else { return nil }
        let topic = String(directoryName[..<dash])
        guard !topic.isEmpty, let p = Int32(directoryName[directoryName.index(after: dash)...]), p >= 0 else { return nil }
        self.init(topic, p)
    }

    public static func < (a: TopicPartition, b: TopicPartition) -> Bool {
        a.topic == b.topic ? a.partition < b.partition : a.topic < b.topic
    }
}
