import Foundation
import KafkaProtocol
import Synchronization

/// Cluster metadata as the controller last sent it (UpdateMetadata); Metadata requests are
/// answered from here.
public final class MetadataCache: @unchecked Sendable {
    private struct State {
        var brokers: [Int32: BrokerEndpoint] = [:]
        var partitions: [String: [Int32: PartitionStateInfo]] = [:]
        var controllerEpoch: Int32 = 0
        /// The controller that sent the last UpdateMetadata (-1 before the first).
        var controllerId: Int32 = -1
    }
    private let state = Mutex(State())

    public init() {}

    /// Returns false when the request comes from an older controller.
    public func update(_ req: UpdateMetadataRequest) -> Bool {
        state.withLock { st in
            if req.controllerEpoch < st.controllerEpoch { return false }
            st.controllerEpoch = req.controllerEpoch
            st.controllerId = req.controllerId
            st.brokers = Dictionary(req.liveBrokers.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            for s in req.partitionStates {
                if s.leader == -2 {
                    st.partitions[s.topic]?[s.partition] = nil
                    if st.partitions[s.topic]?.isEmpty == true { st.partitions[s.topic] = nil }
                } else {
                    st.partitions[s.topic, default: [:]][s.partition] = s
                }
            }
            return true
        }
    }

    /// The current controller's id as the last UpdateMetadata named it, -1 before any (Metadata v1).
    public var controllerId: Int32 { state.withLock { $0.controllerId } }
    public var liveBrokers: [BrokerEndpoint] { state.withLock { st in st.brokers.values.sorted { $0.id < $1.id } } }
    public var topics: [String] { state.withLock { st in st.partitions.keys.sorted() } }
    public func contains(_ topic: String) -> Bool { state.withLock { st in st.partitions[topic] != nil } }
    public func partitionState(_ tp: TopicPartition) -> PartitionStateInfo? { state.withLock { st in st.partitions[tp.topic]?[tp.partition] } }

    public func topicMetadata(_ topic: String) -> MetadataResponse.TopicMetadata? {
        state.withLock { st in
            guard let parts = st.partitions[topic] else { return nil }
            let metas = parts.keys.sorted().map { p -> MetadataResponse.PartitionMetadata in
                let s = parts[p]!
                let liveReplicas = s.replicas.filter { st.brokers[$0] != nil }
                let liveIsr = s.isr.filter { st.brokers[$0] != nil }
                if s.leader < 0 || st.brokers[s.leader] == nil {
                    return .init(error: .leaderNotAvailable, partition: p, leader: -1, replicas: liveReplicas, isr: liveIsr)
                }
                let err: ErrorCode = (liveReplicas.count < s.replicas.count || liveIsr.count < s.isr.count) ? .replicaNotAvailable : .none
                return .init(error: err, partition: p, leader: s.leader, replicas: liveReplicas, isr: liveIsr)
            }
            return .init(error: .none, topic: topic, partitions: metas)
        }
    }
}
