import NIOCore

/// Fetch (key 1, v0-v2): the request is the same in every version; the response starts with
/// `throttle_time_ms` (int32) before the topics in v1 and v2 (message sets stay as stored, magic 0).
public struct FetchRequest: KafkaRequest, Equatable {
    public static let apiKey = APIKey.fetch

    public struct PartitionFetch: Sendable, Equatable {
        public var partition: Int32
        public var fetchOffset: Int64
        public var maxBytes: Int32
        public init(partition: Int32, fetchOffset: Int64, maxBytes: Int32) {
            self.partition = partition
            self.fetchOffset = fetchOffset
            self.maxBytes = maxBytes
        }
    }

    public struct TopicFetch: Sendable, Equatable {
        public var topic: String
        public var partitions: [PartitionFetch]
        public init(topic: String, partitions: [PartitionFetch]) {
            self.topic = topic
            self.partitions = partitions
        }
    }

    /// -1 consumer, -2 debugging consumer, >= 0 follower broker id.
    public var replicaId: Int32
    public var maxWaitMs: Int32
    public var minBytes: Int32
    public var topics: [TopicFetch]

    public init(replicaId: Int32 = -1, maxWaitMs: Int32, minBytes: Int32, topics: [TopicFetch]) {
        self.replicaId = replicaId
        self.maxWaitMs = maxWaitMs
        self.minBytes = minBytes
        self.topics = topics
    }

    public static func decode(from buf: inout ByteBuffer) throws -> FetchRequest {
        let replica = try buf.readKafkaInt32()
        let wait = try buf.readKafkaInt32()
        let minBytes = try buf.readKafkaInt32()
        let topics = try buf.readKafkaTopics(partitionMinSize: 16, { p in
            PartitionFetch(partition: try p.readKafkaInt32(), fetchOffset: try p.readKafkaInt64(), maxBytes: try p.readKafkaInt32())
        }, entry: TopicFetch.init)
        return FetchRequest(replicaId: replica, maxWaitMs: wait, minBytes: minBytes, topics: topics)
    }

    /// The request as Kafka 0.8.2 sees it: it reads the partitions into a `Map`, so a partition
    /// named more than once is fetched once, with the offset and max bytes of its last entry; a
    /// topic named in several entries becomes one. Topics keep the position of their first entry,
    /// partitions too.
    public func mergingDuplicates() -> FetchRequest {
        var topicIndex: [String: Int] = [:]
        var partitionIndex: [TopicPartition: (Int, Int)] = [:]
        var merged: [TopicFetch] = []
        var changed = false
        for t in topics {
            let ti: Int
            if let i = topicIndex[t.topic] {
                ti = i
                changed = true
            } else {
                ti = merged.count
                topicIndex[t.topic] = ti
                merged.append(TopicFetch(topic: t.topic, partitions: []))
            }
            for p in t.partitions {
                let tp = TopicPartition(t.topic, p.partition)
                if let (i, j) = partitionIndex[tp] {
                    merged[i].partitions[j] = p
                    changed = true
                } else {
                    partitionIndex[tp] = (ti, merged[ti].partitions.count)
                    merged[ti].partitions.append(p)
                }
            }
        }
        guard changed else { return self }
        return FetchRequest(replicaId: replicaId, maxWaitMs: maxWaitMs, minBytes: minBytes, topics: merged)
    }

    public func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaInt32(replicaId)
        buf.writeKafkaInt32(maxWaitMs)
        buf.writeKafkaInt32(minBytes)
        buf.writeKafkaArray(topics) { b, t in
            b.writeKafkaTopic(t.topic, t.partitions) { b, p in
                b.writeKafkaInt32(p.partition)
                b.writeKafkaInt64(p.fetchOffset)
                b.writeKafkaInt32(p.maxBytes)
            }
        }
    }
}

/// A decoded fetch response (client side). The broker writes its responses with file
/// regions instead (see KafkaServer's fetch writer), using `FetchResponse.writePartitionHeader`.
public struct FetchResponse: KafkaResponse {
    public struct PartitionData: Sendable {
        public var partition: Int32
        public var error: ErrorCode
        public var highWatermark: Int64
        /// Raw log bytes; may end with a partial entry.
        public var messageSet: ByteBuffer
        public init(partition: Int32, error: ErrorCode, highWatermark: Int64, messageSet: ByteBuffer) {
            self.partition = partition
            self.error = error
            self.highWatermark = highWatermark
            self.messageSet = messageSet
        }
    }

    public var topics: [(topic: String, partitions: [PartitionData])]
    /// The layout: the request's version (0-2); v1+ starts with `throttleTimeMs`.
    public var version: Int16
    public var throttleTimeMs: Int32

    public init(topics: [(topic: String, partitions: [PartitionData])], version: Int16 = 0, throttleTimeMs: Int32 = 0) {
        self.topics = topics
        self.version = version
        self.throttleTimeMs = throttleTimeMs
    }

    public static func decode(from buf: inout ByteBuffer) throws -> FetchResponse {
        try decode(from: &buf, version: 0)
    }

    public static func decode(from buf: inout ByteBuffer, version: Int16) throws -> FetchResponse {
        let throttle = version >= 1 ? try buf.readKafkaInt32() : 0
        let topics = try buf.readKafkaTopics(partitionMinSize: 18) { p -> PartitionData in
            let partition = try p.readKafkaInt32()
            let err = ErrorCode(code: try p.readKafkaInt16())
            let hw = try p.readKafkaInt64()
            let size = try p.readKafkaInt32()
            guard size >= 0, let set = p.readSlice(length: Int(size)) else { throw ProtocolError("bad message set size \(size)") }
            return PartitionData(partition: partition, error: err, highWatermark: hw, messageSet: set)
        }
        return FetchResponse(topics: topics, version: version, throttleTimeMs: throttle)
    }

    /// Everything of a partition entry before its message-set bytes.
    public static func writePartitionHeader(into buf: inout ByteBuffer, partition: Int32, error: ErrorCode, highWatermark: Int64, messageSetSize: Int32) {
        buf.writeKafkaInt32(partition)
        buf.writeKafkaInt16(error.rawValue)
        buf.writeKafkaInt64(highWatermark)
        buf.writeKafkaInt32(messageSetSize)
    }

    /// In-memory encoding (tests, small responses).
    public func encode(into buf: inout ByteBuffer) {
        if version >= 1 { buf.writeKafkaInt32(throttleTimeMs) }
        buf.writeKafkaTopics(topics) { b, p in
            FetchResponse.writePartitionHeader(into: &b, partition: p.partition, error: p.error, highWatermark: p.highWatermark, messageSetSize: Int32(p.messageSet.readableBytes))
            var set = p.messageSet
            b.writeBuffer(&set)
        }
    }
}
