import NIOCore

/// OffsetCommit (key 8): v0 stores in ZooKeeper, v1 adds generation, consumer id and timestamps;
/// v2 keeps generation and member id, replaces the per-partition timestamps with one
/// `retention_time` (int64, after the member id).
public struct OffsetCommitRequest: KafkaRequest {
    public static let apiKey = APIKey.offsetCommit

    public struct PartitionCommit: Sendable, Equatable {
        public var partition: Int32
        public var offset: Int64
        public var timestamp: Int64
        public var metadata: String
        public init(partition: Int32, offset: Int64, timestamp: Int64 = -1, metadata: String = "") {
            self.partition = partition
            self.offset = offset
            self.timestamp = timestamp
            self.metadata = metadata
        }
    }

    public var apiVersion: Int16
    public var group: String
    public var generationId: Int32
    public var consumerId: String
    /// v2's `retention_time` in ms (-1: the broker's default); read, not used (ZooKeeper storage).
    public var retentionTimeMs: Int64
    public var topics: [(topic: String, partitions: [PartitionCommit])]

    public init(version: Int16 = 0, group: String, generationId: Int32 = -1, consumerId: String = "", retentionTimeMs: Int64 = -1,
                topics: [(topic: String, partitions: [PartitionCommit])]) {
        self.apiVersion = version
        self.group = group
        self.generationId = generationId
        self.consumerId = consumerId
        self.retentionTimeMs = retentionTimeMs
        self.topics = topics
    }

    public static func decode(from buf: inout ByteBuffer, version: Int16) throws -> OffsetCommitRequest {
        guard (0...2).contains(version) else { throw ProtocolError("OffsetCommit version \(version) not supported") }
        let group = try buf.readKafkaNonNullString()
        var gen: Int32 = -1
        var cid = ""
        var retention: Int64 = -1
        if version >= 1 {
            gen = try buf.readKafkaInt32()
            cid = try buf.readKafkaNonNullString()
        }
        if version >= 2 { retention = try buf.readKafkaInt64() }
        let topics = try buf.readKafkaTopics(partitionMinSize: version == 1 ? 22 : 14) { p -> PartitionCommit in
            let partition = try p.readKafkaInt32()
            let offset = try p.readKafkaInt64()
            let ts = version == 1 ? try p.readKafkaInt64() : -1
            return PartitionCommit(partition: partition, offset: offset, timestamp: ts, metadata: try p.readKafkaNonNullString())
        }
        return OffsetCommitRequest(version: version, group: group, generationId: gen, consumerId: cid, retentionTimeMs: retention, topics: topics)
    }

    public func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaString(group)
        if apiVersion >= 1 {
            buf.writeKafkaInt32(generationId)
            buf.writeKafkaString(consumerId)
        }
        if apiVersion >= 2 { buf.writeKafkaInt64(retentionTimeMs) }
        buf.writeKafkaTopics(topics) { b, p in
            b.writeKafkaInt32(p.partition)
            b.writeKafkaInt64(p.offset)
            if apiVersion == 1 { b.writeKafkaInt64(p.timestamp) }
            b.writeKafkaString(p.metadata)
        }
    }
}

public struct OffsetCommitResponse: KafkaResponse {
    public var topics: [(topic: String, partitions: [(partition: Int32, error: ErrorCode)])]
    public init(topics: [(topic: String, partitions: [(partition: Int32, error: ErrorCode)])]) { self.topics = topics }

    public func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaTopics(topics) { b, p in
            b.writeKafkaInt32(p.partition)
            b.writeKafkaInt16(p.error.rawValue)
        }
    }

    public static func decode(from buf: inout ByteBuffer) throws -> OffsetCommitResponse {
        OffsetCommitResponse(topics: try buf.readKafkaTopics(partitionMinSize: 6) { p in
            (partition: try p.readKafkaInt32(), error: ErrorCode(code: try p.readKafkaInt16()))
        })
    }
}

/// OffsetFetch (key 9): the same wire format for v0 (ZooKeeper) and v1 (Kafka storage).
public struct OffsetFetchRequest: KafkaRequest {
    public static let apiKey = APIKey.offsetFetch
    public var apiVersion: Int16
    public var group: String
    public var topics: [(topic: String, partitions: [Int32])]

    public init(version: Int16 = 0, group: String, topics: [(topic: String, partitions: [Int32])]) {
        self.apiVersion = version
        self.group = group
        self.topics = topics
    }

    public static func decode(from buf: inout ByteBuffer, version: Int16) throws -> OffsetFetchRequest {
        let group = try buf.readKafkaNonNullString()
        let topics = try buf.readKafkaTopics(partitionMinSize: 4) { try $0.readKafkaInt32() }
        return OffsetFetchRequest(version: version, group: group, topics: topics)
    }

    public func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaString(group)
        buf.writeKafkaTopics(topics) { $0.writeKafkaInt32($1) }
    }
}

public struct OffsetFetchResponse: KafkaResponse {
    public struct PartitionOffset: Sendable, Equatable {
        public var partition: Int32
        public var offset: Int64
        public var metadata: String
        public var error: ErrorCode
        public init(partition: Int32, offset: Int64, metadata: String, error: ErrorCode) {
            self.partition = partition
            self.offset = offset
            self.metadata = metadata
            self.error = error
        }
    }

    public var topics: [(topic: String, partitions: [PartitionOffset])]
    public init(topics: [(topic: String, partitions: [PartitionOffset])]) { self.topics = topics }

    public func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaTopics(topics) { b, p in
            b.writeKafkaInt32(p.partition)
            b.writeKafkaInt64(p.offset)
            b.writeKafkaString(p.metadata)
            b.writeKafkaInt16(p.error.rawValue)   // the error code comes last
        }
    }

    public static func decode(from buf: inout ByteBuffer) throws -> OffsetFetchResponse {
        OffsetFetchResponse(topics: try buf.readKafkaTopics(partitionMinSize: 16) { p in
            PartitionOffset(partition: try p.readKafkaInt32(), offset: try p.readKafkaInt64(),
                            metadata: try p.readKafkaNonNullString(), error: ErrorCode(code: try p.readKafkaInt16()))
        })
    }
}

/// ConsumerMetadata (key 10): which broker coordinates a group's offsets.
public struct ConsumerMetadataRequest: KafkaRequest, Equatable {
    public static let apiKey = APIKey.consumerMetadata
    public var group: String
    public init(group: String) { self.group = group }
    public static func decode(from buf: inout ByteBuffer) throws -> ConsumerMetadataRequest {
        ConsumerMetadataRequest(group: try buf.readKafkaNonNullString())
    }
    public func encode(into buf: inout ByteBuffer) { buf.writeKafkaString(group) }
}

public struct ConsumerMetadataResponse: KafkaResponse, Equatable {
    public var error: ErrorCode
    public var coordinator: BrokerEndpoint
    public init(error: ErrorCode, coordinator: BrokerEndpoint = BrokerEndpoint(id: -1, host: "", port: -1)) {
        self.error = error
        self.coordinator = coordinator
    }
    public func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaInt16(error.rawValue)
        coordinator.encode(into: &buf)
    }
    public static func decode(from buf: inout ByteBuffer) throws -> ConsumerMetadataResponse {
        ConsumerMetadataResponse(error: ErrorCode(code: try buf.readKafkaInt16()), coordinator: try BrokerEndpoint.decode(from: &buf))
    }
}
