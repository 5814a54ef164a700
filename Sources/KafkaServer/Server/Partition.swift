import Foundation
import KafkaLog
import KafkaProtocol
import Synchronization

/// One partition hosted by this broker: its log plus the leadership the controller decided.
/// The high watermark is kept apart from the log end offset: consumers read below it. On the
/// leader it is the smallest log end offset over the ISR and never moves backwards; on a
/// follower it is min(own log end, the leader's high watermark).
public final class Partition: @unchecked Sendable {
    public let topicPartition: TopicPartition
    public let log: Log
    let localBrokerId: Int32
    /// Leadership, ISR, high watermark and the leader's view of its followers; held only for
    /// reads and short updates (never through I/O), so fetches reading the high watermark never
    /// wait for an append.
    private struct State {
        var _leader: Int32 = -1
        var _leaderEpoch: Int32 = -1
        var _controllerEpoch: Int32 = -1
        var _zkVersion: Int32 = -1
        var _isr: [Int32] = []
        var _replicas: [Int32] = []
        var _highWatermark: Int64 = 0
        /// Leader side: each follower's log end offset (the offset it last fetched from) and
        /// when that last moved (for the ISR lag check). A follower without an entry has not
        /// fetched from this leader yet: its position is unknown, not 0.
        var followerEnd: [Int32: Int64] = [:]
        var followerLastCaughtUp: [Int32: Int64] = [:]
        /// One ISR change (a ZooKeeper write) at a time.
        var isrChangeInFlight = false
        /// The ISR being written while a change is in flight. The HW waits for its members too:
        /// once ZooKeeper holds an expanded ISR the controller may elect the new member, so an
        /// acks=-1 append must not be answered on the old, smaller ISR alone.
        var proposedIsr: [Int32] = []
    }
    private let state: Mutex<State>
    /// 0.8.2's `leaderIsrUpdateLock`: held through every append and truncation and through
    /// leadership changes, so an append is checked against, and lands under, one leadership:
    /// no message is written as leader after this broker became follower, or as follower after
    /// it became leader. Order: `leadershipLock`, then `state`. It guards a sequence of steps,
    /// not fields (the log locks its own), hence `Mutex<Void>`.
    private let leadershipLock = Mutex(())

    public init(topicPartition: TopicPartition, log: Log, localBrokerId: Int32, highWatermark: Int64) {
        self.topicPartition = topicPartition
        self.log = log
        self.localBrokerId = localBrokerId
        self.state = Mutex(State(_highWatermark: min(highWatermark, log.logEndOffset)))
    }

    public var leader: Int32 { state.withLock { st in st._leader } }
    public var isLeader: Bool { state.withLock { st in st._leader == localBrokerId } }
    public var leaderEpoch: Int32 { state.withLock { st in st._leaderEpoch } }
    public var controllerEpoch: Int32 { state.withLock { st in st._controllerEpoch } }
    public var zkVersion: Int32 { state.withLock { st in st._zkVersion } }
    public var isr: [Int32] { state.withLock { st in st._isr } }
    public var replicas: [Int32] { state.withLock { st in st._replicas } }
    public var highWatermark: Int64 { state.withLock { st in st._highWatermark } }

    /// Whether this broker leads the partition in `leaderEpoch` (acks=-1 completion: a produce
    /// appended under one leadership is not acknowledged under another).
    public func isLeader(inEpoch leaderEpoch: Int32) -> Bool {
        state.withLock { st in st._leader == localBrokerId && st._leaderEpoch == leaderEpoch }
    }

    /// Applies a LeaderAndIsr decision; returns false when its leader epoch is stale. Waits for
    /// an append in progress to finish, so appends never straddle a leadership change.
    public func applyLeadership(_ s: PartitionStateInfo, nowMs: Int64) -> Bool {
        leadershipLock.withLock { _ in
            state.withLock { st in
                if s.leaderEpoch < st._leaderEpoch { return false }
                let becomesLeader = s.leader == localBrokerId && (st._leader != localBrokerId || s.leaderEpoch != st._leaderEpoch)
                st._leader = s.leader
                st._leaderEpoch = s.leaderEpoch
                st._controllerEpoch = s.controllerEpoch
                st._zkVersion = s.zkVersion
                st._isr = s.isr
                st._replicas = s.replicas
                // An ISR write in flight was made against the previous znode version and fails;
                // it must not block the next change.
                st.isrChangeInFlight = false
                st.proposedIsr = []
                if s.leader == localBrokerId {
                    if becomesLeader {
                        // Followers' positions are unknown until they fetch from us; their lag
                        // clock starts now.
                        st.followerEnd = [:]
                        st.followerLastCaughtUp = Dictionary(uniqueKeysWithValues: s.replicas.filter { $0 != localBrokerId }.map { ($0, nowMs) })
                    }
                    _ = advanceHighWatermarkLocked(&st)
                }
                return true
            }
        }
    }

    public enum LeaderAppendResult: Sendable {
        case appended(LogAppendInfo, leaderEpoch: Int32)
        case failed(ErrorCode)
    }

    /// Leader append of a produced set, atomic with leadership changes (0.8.2
    /// `appendMessagesToLeader` under the read side of `leaderIsrUpdateLock`). With acks=-1 the
    /// ISR must hold at least `min.insync.replicas` replicas at the time of the append.
    public func appendAsLeader(_ bytes: consuming [UInt8], requiredAcks: Int16) -> LeaderAppendResult {
        var set = consume bytes
        return set.withUnsafeMutableBytes { appendAsLeader(in: $0, requiredAcks: requiredAcks) }
    }

    /// `appendAsLeader` of a set in the caller's memory, which gets its offsets written in place
    /// (`Log.append(in:)`: the caller owns that memory for the call).
    public func appendAsLeader(in bytes: UnsafeMutableRawBufferPointer, requiredAcks: Int16) -> LeaderAppendResult {
        leadershipLock.withLock { _ in
            let (leads, epoch, isrSize) = state.withLock { st in (st._leader == localBrokerId, st._leaderEpoch, st._isr.count) }
            guard leads else { return .failed(.notLeaderForPartition) }
            if requiredAcks == -1 && isrSize < log.config.minInsyncReplicas { return .failed(.notEnoughReplicas) }
            do {
                let info = try log.append(in: bytes, assignOffsets: true)
                _ = state.withLock { st in advanceHighWatermarkLocked(&st) }
                return .appended(info, leaderEpoch: epoch)
            } catch {
                return .failed((error as? LogError)?.errorCode ?? .unknown)
            }
        }
    }

    /// Leader: HW = min log end over the ISR (leader included); never backwards.
    @discardableResult
    public func maybeAdvanceHighWatermark() -> Bool {
        state.withLock { st in advanceHighWatermarkLocked(&st) }
    }

    private func advanceHighWatermarkLocked(_ st: inout State) -> Bool {
        guard st._leader == localBrokerId else { return false }
        var hw = log.logEndOffset
        for r in st._isr where r != localBrokerId { hw = min(hw, st.followerEnd[r] ?? st._highWatermark) }
        for r in st.proposedIsr where r != localBrokerId { hw = min(hw, st.followerEnd[r] ?? st._highWatermark) }
        if hw > st._highWatermark {
            st._highWatermark = hw
            return true
        }
        return false
    }

    public enum FollowerAppendResult: Sendable { case appended, notFollower, offsetMoved }

    /// Follower append of the leader's bytes fetched at `fetchOffset`, atomic with respect to
    /// leadership changes: nothing is written once this broker leads, or when the log end
    /// moved since the fetch (a truncation in between), so no gap or overlap can appear.
    public func appendAsFollower(_ bytes: [UInt8], fetchOffset: Int64) throws -> FollowerAppendResult {
        try bytes.withUnsafeBytes { try appendAsFollower(in: $0, fetchOffset: fetchOffset) }
    }

    /// `appendAsFollower` of fetched bytes in the caller's memory (only read).
    public func appendAsFollower(in bytes: UnsafeRawBufferPointer, fetchOffset: Int64) throws -> FollowerAppendResult {
        try leadershipLock.withLock { _ in
            guard state.withLock({ st in st._leader != localBrokerId }) else { return .notFollower }
            guard log.logEndOffset == fetchOffset else { return .offsetMoved }
            _ = try log.appendKeepingOffsets(bytes)
            return .appended
        }
    }

    /// Truncation when following a new leader, under the same lock as appends; refused once
    /// this broker leads.
    public func truncateLog(to offset: Int64) throws {
        try leadershipLock.withLock { _ in
            guard state.withLock({ st in st._leader != localBrokerId }) else { return }
            try log.truncate(to: offset)
            state.withLock { st in st._highWatermark = min(st._highWatermark, log.logEndOffset) }
        }
    }

    /// Follower behind the leader's log start: restart the log there (same lock as appends).
    public func restartLog(at offset: Int64) throws {
        try leadershipLock.withLock { _ in
            guard state.withLock({ st in st._leader != localBrokerId }) else { return }
            try log.truncateFullyAndStartAt(offset)
            state.withLock { st in st._highWatermark = offset }
        }
    }

    /// Follower: HW = min(own log end, the leader's HW).
    public func updateFollowerHighWatermark(leaderHighWatermark: Int64) {
        state.withLock { st in
            guard st._leader != localBrokerId else { return }
            st._highWatermark = max(0, min(log.logEndOffset, leaderHighWatermark))
        }
    }

    /// An ISR change the leader proposes, with the leadership it was decided under: it is
    /// written conditionally on `zkVersion` and applied only if that leadership still holds.
    public struct IsrChange: Sendable, Equatable {
        public var newIsr: [Int32]
        public var leaderEpoch: Int32
        public var controllerEpoch: Int32
        public var zkVersion: Int32
    }

    private func proposeLocked(_ isr: [Int32], _ st: inout State) -> IsrChange {
        st.isrChangeInFlight = true
        st.proposedIsr = isr
        return IsrChange(newIsr: isr, leaderEpoch: st._leaderEpoch, controllerEpoch: st._controllerEpoch, zkVersion: st._zkVersion)
    }

    /// A follower fetched from `offset`: that is its log end offset. Returns whether the HW
    /// moved, and the ISR change to make when the follower has caught up and is not in it yet.
    public func recordFollowerFetch(replica: Int32, offset: Int64, nowMs: Int64) -> (highWatermarkMoved: Bool, expand: IsrChange?) {
        state.withLock { st in
            guard st._leader == localBrokerId, st._replicas.contains(replica) else { return (false, nil) }
            // As 0.8.2: a follower is "stuck" when its log end has not moved for the lag time.
            let previous = st.followerEnd[replica]
            st.followerEnd[replica] = offset
            if previous != offset || offset >= log.logEndOffset || st.followerLastCaughtUp[replica] == nil { st.followerLastCaughtUp[replica] = nowMs }
            let moved = advanceHighWatermarkLocked(&st)
            if !st._isr.contains(replica), offset >= st._highWatermark, !st.isrChangeInFlight {
                return (moved, proposeLocked(st._isr + [replica], &st))
            }
            return (moved, nil)
        }
    }

    /// Leader: followers that have not caught up for `lagTimeMs` or lag more than
    /// `lagMaxMessages` behind; returns the ISR change without them (nil when nothing to do).
    /// A follower that has not fetched from this leader yet is judged by time only.
    public func proposeIsrShrink(nowMs: Int64, lagTimeMs: Int64, lagMaxMessages: Int64) -> IsrChange? {
        state.withLock { st in
            guard st._leader == localBrokerId, !st.isrChangeInFlight else { return nil }
            let leo = log.logEndOffset
            let out = st._isr.filter { r in
                guard r != localBrokerId else { return false }
                let stuck = nowMs - (st.followerLastCaughtUp[r] ?? nowMs) > lagTimeMs
                let slow = st.followerEnd[r].map { leo - $0 > lagMaxMessages } ?? false
                return stuck || slow
            }
            guard !out.isEmpty else { return nil }
            return proposeLocked(st._isr.filter { !out.contains($0) }, &st)
        }
    }

    /// The ISR change was written to ZooKeeper with this new znode version (nil: it failed).
    /// Applied only while the leadership it was proposed under still holds. Returns whether
    /// the high watermark moved.
    public func finishIsrChange(_ change: IsrChange, newZkVersion: Int32?) -> Bool {
        state.withLock { st in
            guard st._leader == localBrokerId, st._leaderEpoch == change.leaderEpoch, st._zkVersion == change.zkVersion else { return false }
            st.isrChangeInFlight = false
            st.proposedIsr = []
            guard let newZkVersion else { return false }
            st._isr = change.newIsr
            st._zkVersion = newZkVersion
            return advanceHighWatermarkLocked(&st)
        }
    }
}
