import NIOCore

/// Offsets / ListOffsets (key 2, v0).
public struct OffsetsRequest: KafkaRequest, Equatable {
    public static let apiKey = APIKey.offsets
    public static let latestTime: Int64 = -1
    public static let earliestTime: Int64 = -2

    public struct PartitionQuery: Sendable, Equatable {
        public var partition: Int32
        public var time: Int64
        public var maxNumOffsets: Int32
        public init(partition: Int32, time: Int64, maxNumOffsets: Int32) {
            self.partition = partition
            self.time = time
            self.maxNumOffsets = maxNumOffsets
        }
    }

    public var replicaId: Int32
    public var topics: [(topic: String, partitions: [PartitionQuery])]

    public init(replicaId: Int32 = -1, topics: [(topic: String, partitions: [PartitionQuery])]) {
        self.replicaId = replicaId
        self.topics = topics
    }

    public static func == (a: OffsetsRequest, b: OffsetsRequest) -> Bool {
        a.replicaId == b.replicaId && a.topics.map(\.topic) == b.topics.map(\.topic) && a.topics.map(\.partitions) == b.topics.map(\.partitions)
    }

    public static func decode(from buf: inout ByteBuffer) throws -> OffsetsRequest {
        let replica = try buf.readKafkaInt32()
        let topics = try buf.readKafkaTopics(partitionMinSize: 16) { p in
            PartitionQuery(partition: try p.readKafkaInt32(), time: try p.readKafkaInt64(), maxNumOffsets: try p.readKafkaInt32())
        }
        return OffsetsRequest(replicaId: replica, topics: topics)
    }

    public func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaInt32(replicaId)
        buf.writeKafkaTopics(topics) { b, p in
            b.writeKafkaInt32(p.partition)
            b.writeKafkaInt64(p.time)
            b.writeKafkaInt32(p.maxNumOffsets)
        }
    }
}

public struct OffsetsResponse: KafkaResponse {
    public struct PartitionOffsets: Sendable, Equatable {
        public var partition: Int32
        public var error: ErrorCode
        public var offsets: [Int64]
        public init(partition: Int32, error: ErrorCode, offsets: [Int64]) {
            self.partition = partition
            self.error = error
            self.offsets = offsets
        }
    }

    public var topics: [(topic: String, partitions: [PartitionOffsets])]

    public init(topics: [(topic: String, partitions: [PartitionOffsets])]) { self.topics = topics }

    public func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaTopics(topics) { b, p in
            b.writeKafkaInt32(p.partition)
            b.writeKafkaInt16(p.error.rawValue)
            b.writeKafkaArray(p.offsets) { $0.writeKafkaInt64($1) }
        }
    }

    public static func decode(from buf: inout ByteBuffer) throws -> OffsetsResponse {
        OffsetsResponse(topics: try buf.readKafkaTopics(partitionMinSize: 10) { p in
            PartitionOffsets(partition: try p.readKafkaInt32(), error: ErrorCode(code: try p.readKafkaInt16()),
                             offsets: try p.readKafkaArray(minElementSize: 8) { try $0.readKafkaInt64() })
        })
    }
}
