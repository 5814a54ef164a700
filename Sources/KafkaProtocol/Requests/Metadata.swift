import NIOCore

/// A broker as it appears in metadata and controller requests.
public struct BrokerEndpoint: Sendable, Hashable {
    public var id: Int32
    public var host: String
    public var port: Int32
    public init(id: Int32, host: String, port: Int32) {
        self.id = id
        self.host = host
        self.port = port
    }

    func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaInt32(id)
        buf.writeKafkaString(host)
        buf.writeKafkaInt32(port)
    }

    static func decode(from buf: inout ByteBuffer) throws -> BrokerEndpoint {
        BrokerEndpoint(id: try buf.readKafkaInt32(), host: try buf.readKafkaNonNullString(), port: try buf.readKafkaInt32())
    }
}

/// Metadata / TopicMetadata (key 3, v0-v1). v0: an empty topic list means all topics. v1: the
/// list is nullable, null means all topics and an empty list none.
public struct MetadataRequest: KafkaRequest, Equatable {
    public static let apiKey = APIKey.metadata
    public var topics: [String]
    /// The layout (0 or 1).
    public var version: Int16
    /// v1: the topic array was null (all topics). Always false in v0.
    public var topicsNull: Bool

    public init(topics: [String], version: Int16 = 0, topicsNull: Bool = false) {
        self.topics = topics
        self.version = version
        self.topicsNull = version >= 1 && topicsNull
    }

    /// Whether the request asks for every topic.
    public var allTopics: Bool { version >= 1 ? topicsNull : topics.isEmpty }

    public static func decode(from buf: inout ByteBuffer) throws -> MetadataRequest {
        try decode(from: &buf, version: 0)
    }

    public static func decode(from buf: inout ByteBuffer, version: Int16) throws -> MetadataRequest {
        guard version == 0 || version == 1 else { throw ProtocolError("Metadata version \(version) not supported") }
        if version >= 1, buf.getInteger(at: buf.readerIndex, endianness: .big, as: Int32.self) == -1 {
            buf.moveReaderIndex(forwardBy: 4)
            return MetadataRequest(topics: [], version: version, topicsNull: true)
        }
        return MetadataRequest(topics: try buf.readKafkaArray(minElementSize: 2) { try $0.readKafkaNonNullString() }, version: version)
    }

    public func encode(into buf: inout ByteBuffer) {
        if version >= 1 && topicsNull {
            buf.writeKafkaInt32(-1)
            return
        }
        buf.writeKafkaArray(topics) { $0.writeKafkaString($1) }
    }
}

public struct MetadataResponse: KafkaResponse, Equatable {
    public struct PartitionMetadata: Sendable, Equatable {
        public var error: ErrorCode
        public var partition: Int32
        public var leader: Int32
        public var replicas: [Int32]
        public var isr: [Int32]
        public init(error: ErrorCode, partition: Int32, leader: Int32, replicas: [Int32], isr: [Int32]) {
            self.error = error
            self.partition = partition
            self.leader = leader
            self.replicas = replicas
            self.isr = isr
        }
    }

    public struct TopicMetadata: Sendable, Equatable {
        public var error: ErrorCode
        public var topic: String
        public var partitions: [PartitionMetadata]
        /// v1's `is_internal` (false for every topic here; read back by clients' decode).
        public var isInternal: Bool
        public init(error: ErrorCode, topic: String, partitions: [PartitionMetadata], isInternal: Bool = false) {
            self.error = error
            self.topic = topic
            self.partitions = partitions
            self.isInternal = isInternal
        }
    }

    public var brokers: [BrokerEndpoint]
    public var topics: [TopicMetadata]
    /// The layout (0 or 1). v1 adds each broker's rack (null here), `controller_id` after the
    /// brokers and each topic's `is_internal`.
    public var version: Int16
    /// v1: the controller's broker id, -1 when unknown.
    public var controllerId: Int32

    public init(brokers: [BrokerEndpoint], topics: [TopicMetadata], version: Int16 = 0, controllerId: Int32 = -1) {
        self.brokers = brokers
        self.topics = topics
        self.version = version
        self.controllerId = controllerId
    }

    public func encode(into buf: inout ByteBuffer) {
        let v1 = version >= 1
        buf.writeKafkaArray(brokers) { b, br in
            br.encode(into: &b)
            if v1 { b.writeKafkaString(nil) }  // rack
        }
        if v1 { buf.writeKafkaInt32(controllerId) }
        buf.writeKafkaArray(topics) { b, t in
            b.writeKafkaInt16(t.error.rawValue)
            b.writeKafkaString(t.topic)
            if v1 { b.writeKafkaInt8(t.isInternal ? 1 : 0) }
            b.writeKafkaArray(t.partitions) { b, p in
                b.writeKafkaInt16(p.error.rawValue)
                b.writeKafkaInt32(p.partition)
                b.writeKafkaInt32(p.leader)
                b.writeKafkaInt32Array(p.replicas)
                b.writeKafkaInt32Array(p.isr)
            }
        }
    }

    public static func decode(from buf: inout ByteBuffer) throws -> MetadataResponse {
        try decode(from: &buf, version: 0)
    }

    public static func decode(from buf: inout ByteBuffer, version: Int16) throws -> MetadataResponse {
        let v1 = version >= 1
        let brokers = try buf.readKafkaArray(minElementSize: v1 ? 12 : 10) { b -> BrokerEndpoint in
            let br = try BrokerEndpoint.decode(from: &b)
            if v1 { _ = try b.readKafkaString() }
            return br
        }
        let controller = v1 ? try buf.readKafkaInt32() : -1
        let topics = try buf.readKafkaArray(minElementSize: v1 ? 9 : 8) { b -> TopicMetadata in
            let err = ErrorCode(code: try b.readKafkaInt16())
            let topic = try b.readKafkaNonNullString()
            let isInternal = v1 ? try b.readKafkaInt8() != 0 : false
            let parts = try b.readKafkaArray(minElementSize: 18) { p in
                PartitionMetadata(error: ErrorCode(code: try p.readKafkaInt16()), partition: try p.readKafkaInt32(),
                                  leader: try p.readKafkaInt32(), replicas: try p.readKafkaInt32Array(), isr: try p.readKafkaInt32Array())
            }
            return TopicMetadata(error: err, topic: topic, partitions: parts, isInternal: isInternal)
        }
        return MetadataResponse(brokers: brokers, topics: topics, version: version, controllerId: controller)
    }
}
