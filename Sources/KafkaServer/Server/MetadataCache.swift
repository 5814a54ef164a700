import Foundation
import KafkaProtocol

/// Cluster metadata as the controller last sent it (UpdateMetadata); Metadata requests are
/// answered from here.
public final class MetadataCache: @unchecked Sendable {
    private let lock = NSLock()
    private var brokers: [Int32: BrokerEndpoint] = [:]
    private var partitions: [String: [Int32: PartitionStateInfo]] = [:]
    private var controllerEpoch: Int32 = 0

    public init() {}

    /// Returns false when the request comes from an older controller.
    public func update(_ req: UpdateMetadataRequest) -> Bool {
        lock.withLock {
            if req.controllerEpoch < controllerEpoch { return false }
            controllerEpoch = req.controllerEpoch
            brokers = Dictionary(req.liveBrokers.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            for s in req.partitionStates {
                if s.leader == -2 {
                    partitions[s.topic]?[s.partition] = nil
                    if partitions[s.topic]?.isEmpty == true { partitions[s.topic] = nil }
                } else {
                    partitions[s.topic, default: [:]][s.partition] = s
                }
            }
            return true
        }
    }

    public var liveBrokers: [BrokerEndpoint] { lock.withLock { brokers.values.sorted { $0.id < $1.id } } }
    public var topics: [String] { lock.withLock { partitions.keys.sorted() } }
    public func contains(_ topic: String) -> Bool { lock.withLock { partitions[topic] != nil } }
    public func partitionState(_ tp: TopicPartition) -> PartitionStateInfo? { lock.withLock { partitions[tp.topic]?[tp.partition] } }

    public func topicMetadata(_ topic: String) -> MetadataResponse.TopicMetadata? {
        lock.withLock {
            guard let parts = partitions[topic] else { return nil }
            let metas = parts.keys.sorted().map { p -> MetadataResponse.PartitionMetadata in
                let s = parts[p]!
                let liveReplicas = s.replicas.filter { brokers[$0] != nil }
                let liveIsr = s.isr.filter { brokers[$0] != nil }
                if s.leader < 0 || brokers[s.leader] == nil {
                    return .init(error: .leaderNotAvailable, partition: p, leader: -1, replicas: liveReplicas, isr: liveIsr)
                }
                let err: ErrorCode = (liveReplicas.count < s.replicas.count || liveIsr.count < s.isr.count) ? .replicaNotAvailable : .none
                return .init(error: err, partition: p, leader: s.leader, replicas: liveReplicas, isr: liveIsr)
            }
            return .init(error: .none, topic: topic, partitions: metas)
        }
    }
}
