import Foundation
import KafkaLog
import KafkaProtocol

/// One partition hosted by this broker: its log plus the leadership the controller decided.
/// The high watermark is kept apart from the log end offset: consumers read below it. On the
/// leader it is the smallest log end offset over the ISR and never moves backwards; on a
/// follower it is min(own log end, the leader's high watermark).
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
    /// Leader side: each follower's log end offset (the offset it last fetched from) and
    /// when that last moved (for the ISR lag check).
    private var followerEnd: [Int32: Int64] = [:]
    private var followerLastCaughtUp: [Int32: Int64] = [:]
    /// One ISR change (a ZooKeeper write) at a time.
    private var isrChangeInFlight = false

    init(topicPartition: TopicPartition, log: Log, localBrokerId: Int32, highWatermark: Int64) {
        self.topicPartition = topicPartition
        self.log = log
        self.localBrokerId = localBrokerId
        self._highWatermark = min(highWatermark, log.logEndOffset)
    }

    public var leader: Int32 { lock.withLock { _leader } }
    public var isLeader: Bool { lock.withLock { _leader == localBrokerId } }
    public var leaderEpoch: Int32 { lock.withLock { _leaderEpoch } }
    public var controllerEpoch: Int32 { lock.withLock { _controllerEpoch } }
    public var zkVersion: Int32 { lock.withLock { _zkVersion } }
    public var isr: [Int32] { lock.withLock { _isr } }
    public var replicas: [Int32] { lock.withLock { _replicas } }
    public var highWatermark: Int64 { lock.withLock { _highWatermark } }

    /// Applies a LeaderAndIsr decision; returns false when its leader epoch is stale.
    func applyLeadership(_ s: PartitionStateInfo, nowMs: Int64) -> Bool {
        lock.withLock {
            if s.leaderEpoch < _leaderEpoch { return false }
            let becomesLeader = s.leader == localBrokerId && _leader != localBrokerId
            _leader = s.leader
            _leaderEpoch = s.leaderEpoch
            _controllerEpoch = s.controllerEpoch
            _zkVersion = s.zkVersion
            _isr = s.isr
            _replicas = s.replicas
            if s.leader == localBrokerId {
                if becomesLeader {
                    // Followers' positions are unknown until they fetch from us.
                    followerEnd = [:]
                    followerLastCaughtUp = Dictionary(uniqueKeysWithValues: s.replicas.filter { $0 != localBrokerId }.map { ($0, nowMs) })
                }
                _ = advanceHighWatermarkLocked()
            }
            return true
        }
    }

    /// Leader: HW = min log end over the ISR (leader included); never backwards.
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

    public enum FollowerAppendResult { case appended, notFollower, offsetMoved }

    /// Follower append of the leader's bytes fetched at `fetchOffset`, atomic with respect to
    /// leadership changes: nothing is written once this broker leads, or when the log end
    /// moved since the fetch (a truncation in between), so no gap or overlap can appear.
    func appendAsFollower(_ bytes: [UInt8], fetchOffset: Int64) throws -> FollowerAppendResult {
        try lock.withLock {
            guard _leader != localBrokerId else { return .notFollower }
            guard log.logEndOffset == fetchOffset else { return .offsetMoved }
            _ = try log.append(bytes, assignOffsets: false)
            return .appended
        }
    }

    /// Truncation when following a new leader, under the same lock as follower appends.
    func truncateLog(to offset: Int64) throws {
        try lock.withLock { try log.truncate(to: offset) }
    }

    /// Follower behind the leader's log start: restart the log there (same lock as appends).
    func restartLog(at offset: Int64) throws {
        try lock.withLock { try log.truncateFullyAndStartAt(offset) }
    }

    /// Follower: HW = min(own log end, the leader's HW).
    func updateFollowerHighWatermark(leaderHighWatermark: Int64) {
        lock.withLock {
            guard _leader != localBrokerId else { return }
            _highWatermark = max(0, min(log.logEndOffset, leaderHighWatermark))
        }
    }

    /// A follower fetched from `offset`: that is its log end offset. Returns whether the HW
    /// moved, and the ISR to propose when the follower has caught up and is not in it yet.
    func recordFollowerFetch(replica: Int32, offset: Int64, nowMs: Int64) -> (highWatermarkMoved: Bool, expandTo: [Int32]?) {
        lock.withLock {
            guard _leader == localBrokerId, _replicas.contains(replica) else { return (false, nil) }
            // As 0.8.2: a follower is "stuck" when its log end has not moved for the lag time.
            let previous = followerEnd[replica]
            followerEnd[replica] = offset
            if previous != offset || offset >= log.logEndOffset || followerLastCaughtUp[replica] == nil { followerLastCaughtUp[replica] = nowMs }
            let moved = advanceHighWatermarkLocked()
            if !_isr.contains(replica), offset >= _highWatermark, !isrChangeInFlight {
                isrChangeInFlight = true
                return (moved, _isr + [replica])
            }
            return (moved, nil)
        }
    }

    /// Leader: followers that have not caught up for `lagTimeMs` or lag more than
    /// `lagMaxMessages` behind; returns the ISR without them (nil when nothing to do).
    func proposeIsrShrink(nowMs: Int64, lagTimeMs: Int64, lagMaxMessages: Int64) -> [Int32]? {
        lock.withLock {
            guard _leader == localBrokerId, !isrChangeInFlight else { return nil }
            let leo = log.logEndOffset
            let out = _isr.filter { r in
                guard r != localBrokerId else { return false }
                let stuck = nowMs - (followerLastCaughtUp[r] ?? nowMs) > lagTimeMs
                let slow = leo - (followerEnd[r] ?? 0) > lagMaxMessages
                return stuck || slow
            }
            guard !out.isEmpty else { return nil }
            isrChangeInFlight = true
            return _isr.filter { !out.contains($0) }
        }
    }

    /// The ISR change was written to ZooKeeper with this new znode version (nil: it failed).
    func finishIsrChange(newIsr: [Int32], zkVersion: Int32?) -> Bool {
        lock.withLock {
            isrChangeInFlight = false
            guard let zkVersion else { return false }
            _isr = newIsr
            _zkVersion = zkVersion
            return advanceHighWatermarkLocked()
        }
    }
}
