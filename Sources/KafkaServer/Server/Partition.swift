import Foundation
import KafkaLog
import KafkaProtocol

/// One partition hosted by this broker: its log plus the leadership the controller decided.
/// The high watermark is kept apart from the log end offset: consumers read below it.
public final class Partition: @unchecked Sendable {
    public let topicPartition: TopicPartition
    public let log: Log
    let localBrokerId: Int32
    private let lock = NSLock()
    private var _leader: Int32 = -1
    private var _leaderEpoch: Int32 = -1
    private var _controllerEpoch: Int32 = -1
    private var _zkVersion: Int32 = -1
    private var _isr: [Int32] = []
    private var _replicas: [Int32] = []
    private var _highWatermark: Int64 = 0
    /// Log end offsets followers reported with their fetches (leader side).
    private var followerEnd: [Int32: Int64] = [:]

    init(topicPartition: TopicPartition, log: Log, localBrokerId: Int32, highWatermark: Int64) {
        self.topicPartition = topicPartition
        self.log = log
        self.localBrokerId = localBrokerId
        self._highWatermark = min(highWatermark, log.logEndOffset)
    }

    public var leader: Int32 { lock.withLock { _leader } }
    public var isLeader: Bool { lock.withLock { _leader == localBrokerId } }
    public var leaderEpoch: Int32 { lock.withLock { _leaderEpoch } }
    public var isr: [Int32] { lock.withLock { _isr } }
    public var highWatermark: Int64 { lock.withLock { _highWatermark } }

    /// Applies a LeaderAndIsr decision; returns false when its leader epoch is stale.
    func applyLeadership(_ s: PartitionStateInfo) -> Bool {
        lock.withLock {
            if s.leaderEpoch < _leaderEpoch { return false }
            _leader = s.leader
            _leaderEpoch = s.leaderEpoch
            _controllerEpoch = s.controllerEpoch
            _zkVersion = s.zkVersion
            _isr = s.isr
            _replicas = s.replicas
            if s.leader == localBrokerId {
                followerEnd = followerEnd.filter { s.replicas.contains($0.key) }
                _ = advanceHighWatermarkLocked()
            }
            return true
        }
    }

    /// HW = min log end over the ISR (leader included); it never moves backwards on the leader.
    @discardableResult
    func maybeAdvanceHighWatermark() -> Bool {
        lock.withLock { advanceHighWatermarkLocked() }
    }

    private func advanceHighWatermarkLocked() -> Bool {
        guard _leader == localBrokerId else { return false }
        var hw = log.logEndOffset
        for r in _isr where r != localBrokerId { hw = min(hw, followerEnd[r] ?? 0) }
        if hw > _highWatermark {
            _highWatermark = hw
            return true
        }
        return false
    }

    /// A follower fetched from `offset`: that is its log end offset.
    func recordFollowerFetch(replica: Int32, offset: Int64) -> Bool {
        lock.withLock {
            followerEnd[replica] = offset
            return advanceHighWatermarkLocked()
        }
    }
}
