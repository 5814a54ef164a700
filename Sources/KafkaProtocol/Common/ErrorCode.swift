/// Kafka 0.8.2 protocol error codes (`kafka.common.ErrorMapping`).
public enum ErrorCode: Int16, Sendable, Error, CustomStringConvertible {
    case unknown = -1
    case none = 0
    case offsetOutOfRange = 1
    case invalidMessage = 2
    case unknownTopicOrPartition = 3
    case invalidFetchSize = 4
    case leaderNotAvailable = 5
    case notLeaderForPartition = 6
    case requestTimedOut = 7
    case brokerNotAvailable = 8
    case replicaNotAvailable = 9
    case messageSizeTooLarge = 10
    case staleControllerEpoch = 11
    case offsetMetadataTooLarge = 12
    case staleLeaderEpoch = 13
    case offsetsLoadInProgress = 14
    case consumerCoordinatorNotAvailable = 15
    case notCoordinatorForConsumer = 16
    case invalidTopic = 17
    case messageSetSizeTooLarge = 18
    case notEnoughReplicas = 19
    case notEnoughReplicasAfterAppend = 20
    // Beyond 0.8.2: OffsetCommit v1 from members of groups that the group coordinator manages.
    case illegalGeneration = 22
    case unknownMemberId = 25
    case rebalanceInProgress = 27

    public init(code: Int16) { self = ErrorCode(rawValue: code) ?? .unknown }

    public var description: String {
        switch self {
        case .unknown: return "Unknown"
        case .none: return "NoError"
        case .offsetOutOfRange: return "OffsetOutOfRange"
        case .invalidMessage: return "InvalidMessage"
        case .unknownTopicOrPartition: return "UnknownTopicOrPartition"
        case .invalidFetchSize: return "InvalidFetchSize"
        case .leaderNotAvailable: return "LeaderNotAvailable"
        case .notLeaderForPartition: return "NotLeaderForPartition"
        case .requestTimedOut: return "RequestTimedOut"
        case .brokerNotAvailable: return "BrokerNotAvailable"
        case .replicaNotAvailable: return "ReplicaNotAvailable"
        case .messageSizeTooLarge: return "MessageSizeTooLarge"
        case .staleControllerEpoch: return "StaleControllerEpoch"
        case .offsetMetadataTooLarge: return "OffsetMetadataTooLarge"
        case .staleLeaderEpoch: return "StaleLeaderEpoch"
        case .offsetsLoadInProgress: return "OffsetsLoadInProgress"
        case .consumerCoordinatorNotAvailable: return "ConsumerCoordinatorNotAvailable"
        case .notCoordinatorForConsumer: return "NotCoordinatorForConsumer"
        case .invalidTopic: return "InvalidTopic"
        case .messageSetSizeTooLarge: return "MessageSetSizeTooLarge"
        case .notEnoughReplicas: return "NotEnoughReplicas"
        case .notEnoughReplicasAfterAppend: return "NotEnoughReplicasAfterAppend"
        case .illegalGeneration: return "IllegalGeneration"
        case .unknownMemberId: return "UnknownMemberId"
        case .rebalanceInProgress: return "RebalanceInProgress"
        }
    }
}
