import NIOCore

/// Leader, epoch and ISR of one partition as the controller decided them
/// (the element of LeaderAndIsr and UpdateMetadata requests).
public struct PartitionStateInfo: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    public var controllerEpoch: Int32
    public var leader: Int32
    public var leaderEpoch: Int32
    public var isr: [Int32]
    public var zkVersion: Int32
    public var replicas: [Int32]

    public init(topic: String, partition: Int32, controllerEpoch: Int32, leader: Int32, leaderEpoch: Int32, isr: [Int32], zkVersion: Int32, replicas: [Int32]) {
        self.topic = topic
        self.partition = partition
        self.controllerEpoch = controllerEpoch
        self.leader = leader
        self.leaderEpoch = leaderEpoch
        self.isr = isr
        self.zkVersion = zkVersion
        self.replicas = replicas
    }

    public var topicPartition: TopicPartition { TopicPartition(topic, partition) }

    func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaString(topic)
        buf.writeKafkaInt32(partition)
        buf.writeKafkaInt32(controllerEpoch)
        buf.writeKafkaInt32(leader)
        buf.writeKafkaInt32(leaderEpoch)
        buf.writeKafkaInt32Array(isr)
        buf.writeKafkaInt32(zkVersion)
        buf.writeKafkaInt32Array(replicas)
    }

    static func decode(from buf: inout ByteBuffer) throws -> PartitionStateInfo {
        PartitionStateInfo(topic: try buf.readKafkaNonNullString(), partition: try buf.readKafkaInt32(),
                           controllerEpoch: try buf.readKafkaInt32(), leader: try buf.readKafkaInt32(),
                           leaderEpoch: try buf.readKafkaInt32(), isr: try buf.readKafkaInt32Array(),
                           zkVersion: try buf.readKafkaInt32(), replicas: try buf.readKafkaInt32Array())
    }
}

/// LeaderAndIsr (key 4, v0), sent by the controller.
public struct LeaderAndIsrRequest: KafkaRequest, Equatable {
    public static let apiKey = APIKey.leaderAndIsr
    public var controllerId: Int32
    public var controllerEpoch: Int32
    public var partitionStates: [PartitionStateInfo]
    public var leaders: [BrokerEndpoint]

    public init(controllerId: Int32, controllerEpoch: Int32, partitionStates: [PartitionStateInfo], leaders: [BrokerEndpoint]) {
        self.controllerId = controllerId
        self.controllerEpoch = controllerEpoch
        self.partitionStates = partitionStates
        self.leaders = leaders
    }

    public static func decode(from buf: inout ByteBuffer) throws -> LeaderAndIsrRequest {
        LeaderAndIsrRequest(controllerId: try buf.readKafkaInt32(), controllerEpoch: try buf.readKafkaInt32(),
                            partitionStates: try buf.readKafkaArray(minElementSize: 30) { try PartitionStateInfo.decode(from: &$0) },
                            leaders: try buf.readKafkaArray(minElementSize: 10) { try BrokerEndpoint.decode(from: &$0) })
    }

    public func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaInt32(controllerId)
        buf.writeKafkaInt32(controllerEpoch)
        buf.writeKafkaArray(partitionStates) { b, s in s.encode(into: &b) }
        buf.writeKafkaArray(leaders) { b, l in l.encode(into: &b) }
    }
}

/// Response of LeaderAndIsr and StopReplica: a top-level error and one per partition.
public struct PartitionErrorsResponse: KafkaResponse, Equatable {
    public var error: ErrorCode
    public var partitions: [PartitionError]
    public struct PartitionError: Sendable, Equatable {
        public var topic: String
        public var partition: Int32
        public var error: ErrorCode
        public init(topic: String, partition: Int32, error: ErrorCode) {
            self.topic = topic
            self.partition = partition
            self.error = error
        }
    }
    public init(error: ErrorCode, partitions: [PartitionError]) {
        self.error = error
        self.partitions = partitions
    }
    public func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaInt16(error.rawValue)
        buf.writeKafkaArray(partitions) { b, p in
            b.writeKafkaString(p.topic)
            b.writeKafkaInt32(p.partition)
            b.writeKafkaInt16(p.error.rawValue)
        }
    }
    public static func decode(from buf: inout ByteBuffer) throws -> PartitionErrorsResponse {
        PartitionErrorsResponse(error: ErrorCode(code: try buf.readKafkaInt16()), partitions: try buf.readKafkaArray(minElementSize: 8) { b in
            PartitionError(topic: try b.readKafkaNonNullString(), partition: try b.readKafkaInt32(), error: ErrorCode(code: try b.readKafkaInt16()))
        })
    }
}

/// StopReplica (key 5, v0).
public struct StopReplicaRequest: KafkaRequest, Equatable {
    public static let apiKey = APIKey.stopReplica
    public var controllerId: Int32
    public var controllerEpoch: Int32
    public var deletePartitions: Bool
    public var partitions: [TopicPartition]

    public init(controllerId: Int32, controllerEpoch: Int32, deletePartitions: Bool, partitions: [TopicPartition]) {
        self.controllerId = controllerId
        self.controllerEpoch = controllerEpoch
        self.deletePartitions = deletePartitions
        self.partitions = partitions
    }

    public static func decode(from buf: inout ByteBuffer) throws -> StopReplicaRequest {
        let cid = try buf.readKafkaInt32()
        let epoch = try buf.readKafkaInt32()
        let flag = try buf.readKafkaInt8()
        guard flag == 0 || flag == 1 else { throw ProtocolError("StopReplica delete flag must be 0 or 1, got \(flag)") }
        let parts = try buf.readKafkaTopicPartitions()
        return StopReplicaRequest(controllerId: cid, controllerEpoch: epoch, deletePartitions: flag == 1, partitions: parts)
    }

    public func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaInt32(controllerId)
        buf.writeKafkaInt32(controllerEpoch)
        buf.writeKafkaInt8(deletePartitions ? 1 : 0)
        buf.writeKafkaTopicPartitions(partitions)
    }
}

/// UpdateMetadata (key 6, v0).
public struct UpdateMetadataRequest: KafkaRequest, Equatable {
    public static let apiKey = APIKey.updateMetadata
    public var controllerId: Int32
    public var controllerEpoch: Int32
    public var partitionStates: [PartitionStateInfo]
    public var liveBrokers: [BrokerEndpoint]

    public init(controllerId: Int32, controllerEpoch: Int32, partitionStates: [PartitionStateInfo], liveBrokers: [BrokerEndpoint]) {
        self.controllerId = controllerId
        self.controllerEpoch = controllerEpoch
        self.partitionStates = partitionStates
        self.liveBrokers = liveBrokers
    }

    public static func decode(from buf: inout ByteBuffer) throws -> UpdateMetadataRequest {
        UpdateMetadataRequest(controllerId: try buf.readKafkaInt32(), controllerEpoch: try buf.readKafkaInt32(),
                              partitionStates: try buf.readKafkaArray(minElementSize: 30) { try PartitionStateInfo.decode(from: &$0) },
                              liveBrokers: try buf.readKafkaArray(minElementSize: 10) { try BrokerEndpoint.decode(from: &$0) })
    }

    public func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaInt32(controllerId)
        buf.writeKafkaInt32(controllerEpoch)
        buf.writeKafkaArray(partitionStates) { b, s in s.encode(into: &b) }
        buf.writeKafkaArray(liveBrokers) { b, l in l.encode(into: &b) }
    }
}

/// UpdateMetadata's answer: only an error code.
public struct UpdateMetadataResponse: KafkaResponse, Equatable {
    public var error: ErrorCode
    public init(error: ErrorCode) { self.error = error }
    public func encode(into buf: inout ByteBuffer) { buf.writeKafkaInt16(error.rawValue) }
    public static func decode(from buf: inout ByteBuffer) throws -> UpdateMetadataResponse {
        UpdateMetadataResponse(error: ErrorCode(code: try buf.readKafkaInt16()))
    }
}

/// ControlledShutdown (key 7, v0); its header has no client id.
public struct ControlledShutdownRequest: KafkaRequest, Equatable {
    public static let apiKey = APIKey.controlledShutdown
    public var brokerId: Int32
    public init(brokerId: Int32) { self.brokerId = brokerId }
    public static func decode(from buf: inout ByteBuffer) throws -> ControlledShutdownRequest {
        ControlledShutdownRequest(brokerId: try buf.readKafkaInt32())
    }
    public func encode(into buf: inout ByteBuffer) { buf.writeKafkaInt32(brokerId) }
}

public struct ControlledShutdownResponse: KafkaResponse, Equatable {
    public var error: ErrorCode
    public var partitionsRemaining: [TopicPartition]
    public init(error: ErrorCode, partitionsRemaining: [TopicPartition]) {
        self.error = error
        self.partitionsRemaining = partitionsRemaining
    }
    public func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaInt16(error.rawValue)
        buf.writeKafkaTopicPartitions(partitionsRemaining)
    }

    public static func decode(from buf: inout ByteBuffer) throws -> ControlledShutdownResponse {
        ControlledShutdownResponse(error: ErrorCode(code: try buf.readKafkaInt16()),
                                   partitionsRemaining: try buf.readKafkaTopicPartitions())
    }
}
