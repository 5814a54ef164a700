import NIOCore

/// Produce (key 0, v0-v2). The request body is the same in every version (v2's message sets may
/// be magic 1); the response adds `throttle_time_ms` at the end in v1 and each partition's
/// `log_append_time` (int64, after the base offset) in v2.
public struct ProduceRequest: KafkaRequest, Equatable {
    public static let apiKey = APIKey.produce

    public struct PartitionData: Sendable, Equatable {
        public var partition: Int32
        /// The raw message set as sent; offsets inside are ignored by the leader.
        public var messageSet: ByteBuffer
        public init(partition: Int32, messageSet: ByteBuffer) {
            self.partition = partition
            self.messageSet = messageSet
        }
    }

    public struct TopicData: Sendable, Equatable {
        public var topic: String
        public var partitions: [PartitionData]
        public init(topic: String, partitions: [PartitionData]) {
            self.topic = topic
            self.partitions = partitions
        }
    }

    public var requiredAcks: Int16
    public var timeoutMs: Int32
    public var topics: [TopicData]

    public init(requiredAcks: Int16, timeoutMs: Int32, topics: [TopicData]) {
        self.requiredAcks = requiredAcks
        self.timeoutMs = timeoutMs
        self.topics = topics
    }

    public static func decode(from buf: inout ByteBuffer) throws -> ProduceRequest {
        let acks = try buf.readKafkaInt16()
        let timeout = try buf.readKafkaInt32()
        let topics = try buf.readKafkaTopics(partitionMinSize: 8, { p -> PartitionData in
            let partition = try p.readKafkaInt32()
            let size = try p.readKafkaInt32()
            guard size >= 0, let set = p.readSlice(length: Int(size)) else {
                throw ProtocolError("message set size \(size) does not fit the request")
            }
            return PartitionData(partition: partition, messageSet: set)
        }, entry: TopicData.init)
        return ProduceRequest(requiredAcks: acks, timeoutMs: timeout, topics: topics)
    }

    public func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaInt16(requiredAcks)
        buf.writeKafkaInt32(timeoutMs)
        buf.writeKafkaArray(topics) { b, t in
            b.writeKafkaTopic(t.topic, t.partitions) { b, p in
                b.writeKafkaInt32(p.partition)
                b.writeKafkaBytes(p.messageSet)
            }
        }
    }
}

public struct ProduceResponse: KafkaResponse, Equatable {
    public struct PartitionResult: Sendable, Equatable {
        public var partition: Int32
        public var error: ErrorCode
        /// First offset assigned to the appended set, -1 on error.
        public var offset: Int64
        public init(partition: Int32, error: ErrorCode, offset: Int64) {
            self.partition = partition
            self.error = error
            self.offset = offset
        }
    }

    public var topics: [(topic: String, partitions: [PartitionResult])]
    /// The layout written: the request's version (0-2).
    public var version: Int16
    /// v1+: always 0 here (no quotas).
    public var throttleTimeMs: Int32

    public init(topics: [(topic: String, partitions: [PartitionResult])], version: Int16 = 0, throttleTimeMs: Int32 = 0) {
        self.topics = topics
        self.version = version
        self.throttleTimeMs = throttleTimeMs
    }

    public static func == (a: ProduceResponse, b: ProduceResponse) -> Bool {
        a.topics.map(\.topic) == b.topics.map(\.topic) && a.topics.map(\.partitions) == b.topics.map(\.partitions)
            && a.version == b.version && (a.version == 0 || a.throttleTimeMs == b.throttleTimeMs)
    }

    public func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaTopics(topics) { b, p in
            b.writeKafkaInt32(p.partition)
            b.writeKafkaInt16(p.error.rawValue)
            b.writeKafkaInt64(p.offset)
            // log_append_time: -1, the broker does not use log-append time.
            if version >= 2 { b.writeKafkaInt64(-1) }
        }
        if version >= 1 { buf.writeKafkaInt32(throttleTimeMs) }
    }

    public static func decode(from buf: inout ByteBuffer) throws -> ProduceResponse {
        try decode(from: &buf, version: 0)
    }

    public static func decode(from buf: inout ByteBuffer, version: Int16) throws -> ProduceResponse {
        let topics = try buf.readKafkaTopics(partitionMinSize: version >= 2 ? 22 : 14) { p in
            let r = PartitionResult(partition: try p.readKafkaInt32(), error: ErrorCode(code: try p.readKafkaInt16()), offset: try p.readKafkaInt64())
            if version >= 2 { _ = try p.readKafkaInt64() }
            return r
        }
        let throttle = version >= 1 ? try buf.readKafkaInt32() : 0
        return ProduceResponse(topics: topics, version: version, throttleTimeMs: throttle)
    }
}
