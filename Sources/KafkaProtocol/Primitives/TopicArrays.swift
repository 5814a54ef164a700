import NIOCore

/// The shape most 0.8 requests and responses share: an array of topics, each a name and an array
/// of per-partition entries; and the flat (topic, partition) pairs of StopReplica and
/// ControlledShutdown. Each API supplies only its partition entry's codec.
extension ByteBuffer {
    /// The smallest encoding of a topic entry: an empty name (int16 length) and an empty array.
    public static let kafkaTopicEntryMinSize = 6

    /// One topic entry: the name, then its partition entries.
    public mutating func writeKafkaTopic<P>(_ topic: String, _ partitions: [P], _ partition: (inout ByteBuffer, P) -> Void) {
        writeKafkaString(topic)
        writeKafkaArray(partitions, partition)
    }

    /// The array of topic entries.
    public mutating func writeKafkaTopics<P>(_ topics: [(topic: String, partitions: [P])], _ partition: (inout ByteBuffer, P) -> Void) {
        writeKafkaArray(topics) { b, t in b.writeKafkaTopic(t.topic, t.partitions, partition) }
    }

    /// Reads the array of topic entries, each built by `entry` from its name and partitions.
    /// `partitionMinSize` is the smallest encoding of one partition entry (see `readKafkaArray`).
    public mutating func readKafkaTopics<P, T>(partitionMinSize: Int, _ partition: (inout ByteBuffer) throws -> P,
                                               entry: (String, [P]) -> T) throws -> [T] {
        try readKafkaArray(minElementSize: Self.kafkaTopicEntryMinSize) { b in
            let topic = try b.readKafkaNonNullString()
            return entry(topic, try b.readKafkaArray(minElementSize: partitionMinSize, partition))
        }
    }

    /// Reads the array of topic entries as (topic, partitions) pairs.
    public mutating func readKafkaTopics<P>(partitionMinSize: Int, _ partition: (inout ByteBuffer) throws -> P) throws
        -> [(topic: String, partitions: [P])]
    {
        try readKafkaTopics(partitionMinSize: partitionMinSize, partition) { (topic: $0, partitions: $1) }
    }

    /// An array of (topic, partition) pairs.
    public mutating func writeKafkaTopicPartitions(_ partitions: [TopicPartition]) {
        writeKafkaArray(partitions) { b, p in
            b.writeKafkaString(p.topic)
            b.writeKafkaInt32(p.partition)
        }
    }

    public mutating func readKafkaTopicPartitions() throws -> [TopicPartition] {
        try readKafkaArray(minElementSize: 6) { TopicPartition(try $0.readKafkaNonNullString(), try $0.readKafkaInt32()) }
    }
}
