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

/// Metadata / TopicMetadata (key 3, v0). An empty topic list means all topics.
public struct MetadataRequest: KafkaRequest, Equatable {
    public static let apiKey = APIKey.metadata
    public var topics: [String]
    public init(topics: [String]) { self.topics = topics }

    public static func decode(from buf: inout ByteBuffer) throws -> MetadataRequest {
        MetadataRequest(topics: try buf.readKafkaArray(minElementSize: 2) { try $0.readKafkaNonNullString() })
    }

    public func encode(into buf: inout ByteBuffer) {
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
        public init(error: ErrorCode, topic: String, partitions: [PartitionMetadata]) {
            self.error = error
            self.topic = topic
            self.partitions = partitions
        }
    }

    public var brokers: [BrokerEndpoint]
    public var topics: [TopicMetadata]

    public init(brokers: [BrokerEndpoint], topics: [TopicMetadata]) {
        self.brokers = brokers
        self.topics = topics
    }

    public func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaArray(brokers) { b, br in br.encode(into: &b) }
        buf.writeKafkaArray(topics) { b, t in
            b.writeKafkaInt16(t.error.rawValue)
            b.writeKafkaString(t.topic)
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
        let brokers = try buf.readKafkaArray(minElementSize: 10) { try BrokerEndpoint.decode(from: &$0) }
        let topics = try buf.readKafkaArray(minElementSize: 8) { b -> TopicMetadata in
            let err = ErrorCode(code: try b.readKafkaInt16())
            let topic = try b.readKafkaNonNullString()
            let parts = try b.readKafkaArray(minElementSize: 18) { p in
                PartitionMetadata(error: ErrorCode(code: try p.readKafkaInt16()), partition: try p.readKafkaInt32(),
                                  leader: try p.readKafkaInt32(), replicas: try p.readKafkaInt32Array(), isr: try p.readKafkaInt32Array())
            }
            return TopicMetadata(error: err, topic: topic, partitions: parts)
        }
        return MetadataResponse(brokers: brokers, topics: topics)
    }
}
