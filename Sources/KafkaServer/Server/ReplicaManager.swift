import Foundation
import KafkaCluster
import KafkaLog
import KafkaProtocol
import Logging
import Synchronization

/// Owns the partitions this broker hosts: applies LeaderAndIsr decisions, appends to leaders,
/// serves reads up to the high watermark, wakes parked requests, checkpoints high watermarks.
public final class ReplicaManager: @unchecked Sendable {
    public let brokerId: Int32
    let logManager: LogManager
    let logger: Logger
    public let fetchPurgatory = Purgatory()
    private struct State {
        var partitions: [TopicPartition: Partition] = [:]
        var controllerEpoch: Int32 = 0
        var stopped = false
        var checkpointedHW: [TopicPartition: Int64] = [:]
    }
    private let state = Mutex(State())
    /// High watermarks read from each dir's `replication-offset-checkpoint` at start.
    let logDirs: [String]
    /// Follower side: fetchers per leader broker.
    let fetchers: ReplicaFetcherManager
    /// Writes a leader's ISR change (partition, new state, expected znode version, ISR size
    /// before) to the partition's state znode; returns the new version or nil when the write lost.
    typealias IsrWriter = @Sendable (TopicPartition, LeaderIsrState, Int32, Int) async -> Int32?
    let isrWriter: IsrWriter?

    /// With the default replica fetcher settings and no ISR writes (tests of the checkpoint and
    /// leadership logic).
    public convenience init(brokerId: Int32, logManager: LogManager, logDirs: [String], logger: Logger) {
        self.init(brokerId: brokerId, logManager: logManager, logDirs: logDirs, logger: logger, fetcherSettings: .init(), isrWriter: nil,
                  blocking: InlineExecutor())
    }

    /// `blocking` runs the replica fetchers' appends and truncations (the broker's I/O pools).
    init(brokerId: Int32, logManager: LogManager, logDirs: [String], logger: Logger,
         fetcherSettings: ReplicaFetcher.Settings, isrWriter: IsrWriter?, blocking: any BlockingExecutor) {
        self.brokerId = brokerId
        self.logManager = logManager
        self.logDirs = logDirs
        self.logger = logger
        self.isrWriter = isrWriter
        // The fetchers look partitions up here; `self` is not usable before every field is set.
        let lookup = WeakReference<ReplicaManager>()
        self.fetchers = ReplicaFetcherManager(brokerId: brokerId, settings: fetcherSettings, logger: logger,
                                              partitionLookup: { lookup.value?.partition($0) },
                                              onAppend: { _ in }, blocking: blocking)
        for dir in logDirs {
            let cp = OffsetCheckpoint(path: (dir as NSString).appendingPathComponent("replication-offset-checkpoint"))
            if let hws = try? cp.read() { state.withLock { st in st.checkpointedHW.merge(hws) { a, _ in a } } }
        }
        lookup.value = self
    }

    public func partition(_ tp: TopicPartition) -> Partition? { state.withLock { st in st.partitions[tp] } }
    public var allPartitions: [Partition] { state.withLock { st in Array(st.partitions.values) } }

    /// LeaderAndIsr: fenced by controller epoch (whole request) and leader epoch (per partition).
    public func becomeLeaderOrFollower(_ req: LeaderAndIsrRequest) -> PartitionErrorsResponse {
        let stale: Bool = state.withLock { st in
            if req.controllerEpoch < st.controllerEpoch { return true }
            st.controllerEpoch = req.controllerEpoch
            return false
        }
        if stale {
            logger.warning("Ignoring LeaderAndIsr from controller \(req.controllerId) with stale epoch \(req.controllerEpoch)")
            return PartitionErrorsResponse(error: .staleControllerEpoch, partitions: [])
        }
        var results: [PartitionErrorsResponse.PartitionError] = []
        for s in req.partitionStates {
            let tp = s.topicPartition
            guard s.replicas.contains(brokerId) else { continue }
            do {
                let p = try getOrCreatePartition(tp)
                let previousLeader = p.leader
                if p.applyLeadership(s, nowMs: Self.nowMs()) {
                    if s.leader != brokerId, s.leader == previousLeader,
                       let ep = req.leaders.first(where: { $0.id == s.leader }), fetchers.isFollowing(tp, leader: ep) {
                        // Same leader, new ISR or epoch: keep fetching, truncate nothing (0.8.2
                        // makeFollower). The local HW lags the leader's by a fetch: truncating
                        // to it would drop acknowledged messages this replica may have to serve.
                        logger.info("Broker \(brokerId) keeps following \(tp) led by \(s.leader) (leader epoch \(s.leaderEpoch), ISR \(s.isr))")
                    } else if s.leader == brokerId {
                        fetchers.stopFollowing(tp)
                        logger.info("Broker \(brokerId) is now leader of \(tp) (leader epoch \(s.leaderEpoch), ISR \(s.isr), log end \(p.log.logEndOffset), high watermark \(p.highWatermark))")
                    } else {
                        // A follower drops anything above its high watermark (it may not be
                        // committed) and fetches the rest from the leader.
                        fetchers.stopFollowing(tp)
                        let hw = p.highWatermark
                        if p.log.logEndOffset > hw {
                            logger.info("Truncating \(tp) to its high watermark \(hw) (log end \(p.log.logEndOffset)) before following broker \(s.leader)")
                            try p.truncateLog(to: hw)
                        }
                        if state.withLock({ st in st.stopped }) {
                            logger.info("Broker \(brokerId) is shutting down: not following \(tp)")
                        } else if let leader = req.leaders.first(where: { $0.id == s.leader }) {
                            fetchers.follow(tp, leader: leader, offset: p.log.logEndOffset)
                            logger.info("Broker \(brokerId) is now a follower of \(tp) led by \(s.leader), fetching from offset \(p.log.logEndOffset)")
                        } else {
                            logger.info("Broker \(brokerId) has no live leader to follow for \(tp) (leader \(s.leader))")
                        }
                    }
                    fetchPurgatory.completeAll(tp)
                    results.append(.init(topic: tp.topic, partition: tp.partition, error: .none))
                } else {
                    results.append(.init(topic: tp.topic, partition: tp.partition, error: .staleLeaderEpoch))
                }
            } catch {
                logger.error("Cannot create the log of \(tp): \(error)")
                results.append(.init(topic: tp.topic, partition: tp.partition, error: .unknown))
            }
        }
        return PartitionErrorsResponse(error: .none, partitions: results)
    }

    /// StopReplica: stop fetching (and serving) the partitions; with `delete`, remove their logs.
    public func stopReplicas(_ req: StopReplicaRequest) -> PartitionErrorsResponse {
        let stale: Bool = state.withLock { st in
            if req.controllerEpoch < st.controllerEpoch { return true }
            st.controllerEpoch = req.controllerEpoch
            return false
        }
        if stale { return PartitionErrorsResponse(error: .staleControllerEpoch, partitions: []) }
        var results: [PartitionErrorsResponse.PartitionError] = []
        for tp in req.partitions {
            fetchers.stopFollowing(tp)
            if req.deletePartitions {
                let removed = state.withLock { st in st.partitions.removeValue(forKey: tp) }
                if removed != nil { fetchPurgatory.completeAll(tp) }
                logManager.deleteLog(tp)
                logger.info("Stopped replica of \(tp) and deleted its log")
            } else {
                logger.info("Stopped replica of \(tp)")
            }
            results.append(.init(topic: tp.topic, partition: tp.partition, error: .none))
        }
        return PartitionErrorsResponse(error: .none, partitions: results)
    }

    private func getOrCreatePartition(_ tp: TopicPartition) throws -> Partition {
        if let p = partition(tp) { return p }
        let log = try logManager.getOrCreateLog(tp)
        return state.withLock { st in
            if let p = st.partitions[tp] { return p }
            let p = Partition(topicPartition: tp, log: log, localBrokerId: brokerId, highWatermark: st.checkpointedHW[tp] ?? 0)
            st.partitions[tp] = p
            return p
        }
    }

    /// The leader partition for client requests, or the error a client gets.
    public func leaderPartition(_ tp: TopicPartition) -> Result<Partition, ErrorCode> {
        guard let p = partition(tp) else { return .failure(.unknownTopicOrPartition) }
        guard p.isLeader else { return .failure(.notLeaderForPartition) }
        return .success(p)
    }

    /// Appends a produced message set to a partition this broker leads (see `Partition.appendAsLeader`).
    /// Blocks (pwrite, and fsync when `flush.messages` is reached): run it on an I/O pool.
    func appendToLeader(_ p: Partition, messageSet: UnsafeMutableRawBufferPointer, requiredAcks: Int16) -> Partition.LeaderAppendResult {
        let result = p.appendAsLeader(in: messageSet, requiredAcks: requiredAcks)
        switch result {
        case .appended: fetchPurgatory.checkAndComplete(p.topicPartition)
        case .failed(let e): logger.debug("Append to \(p.topicPartition) refused: \(e)")
        }
        return result
    }

    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// A follower fetched `offset` of a partition we lead: track it, move the HW, and add it
    /// back to the ISR (a conditional ZooKeeper write) once it has caught up.
    func recordFollowerFetch(_ p: Partition, replica: Int32, offset: Int64) {
        let (moved, expand) = p.recordFollowerFetch(replica: replica, offset: offset, nowMs: Self.nowMs())
        if moved { fetchPurgatory.checkAndComplete(p.topicPartition) }
        if let expand {
            logger.info("Expanding ISR of \(p.topicPartition) from \(p.isr) to \(expand.newIsr)")
            // Off the fetch path; the change carries the leadership it was decided under, so a
            // write that lands after a LeaderAndIsr demoted this broker fails or is ignored.
            Task { await self.writeIsr(p, expand) }
        }
    }

    /// Drops followers that fell behind from the ISR of every partition this broker leads.
    public func shrinkIsrs(lagTimeMs: Int64, lagMaxMessages: Int64) async {
        for p in allPartitions {
            guard let shrunk = p.proposeIsrShrink(nowMs: Self.nowMs(), lagTimeMs: lagTimeMs, lagMaxMessages: lagMaxMessages) else { continue }
            logger.info("Shrinking ISR of \(p.topicPartition) from \(p.isr) to \(shrunk.newIsr)")
            await writeIsr(p, shrunk)
        }
    }

    /// Leader-written ISR change: leader and leader epoch of the proposal, conditional on the
    /// znode version the proposal saw.
    private func writeIsr(_ p: Partition, _ change: Partition.IsrChange) async {
        let state = LeaderIsrState(leader: brokerId, leaderEpoch: change.leaderEpoch, isr: change.newIsr, controllerEpoch: change.controllerEpoch)
        let version = await isrWriter?(p.topicPartition, state, change.zkVersion, p.isr.count)
        if version == nil { logger.info("ISR change of \(p.topicPartition) to \(change.newIsr) not written (state changed in ZooKeeper); keeping \(p.isr)") }
        _ = p.finishIsrChange(change, newZkVersion: version)
        fetchPurgatory.checkAndComplete(p.topicPartition)
    }

    /// Stops replication; later LeaderAndIsr requests no longer start fetchers (a broker in
    /// controlled shutdown must not re-enter ISRs it just left).
    public func shutdown() {
        state.withLock { st in st.stopped = true }
        fetchers.shutdown()
    }

    /// Writes every hosted partition's high watermark to its dir's `replication-offset-checkpoint`.
    /// Logs on disk whose partition no LeaderAndIsr has named yet keep the value read at start:
    /// a checkpoint written before the controller spoke must not reset them to 0 (a second crash
    /// would then make followers truncate whole logs).
    public func checkpointHighWatermarks() {
        var perDir: [String: [TopicPartition: Int64]] = [:]
        let (hosted, carried): ([Partition], [TopicPartition: Int64]) = state.withLock { st in
            (Array(st.partitions.values), st.checkpointedHW.filter { st.partitions[$0.key] == nil })
        }
        for (tp, hw) in carried {
            guard let dir = logManager.logDir(for: tp) else { continue }
            perDir[dir, default: [:]][tp] = hw
        }
        for p in hosted {
            let dir = (p.log.directory as NSString).deletingLastPathComponent
            perDir[dir, default: [:]][p.topicPartition] = p.highWatermark
        }
        for dir in logDirs {
            let cp = OffsetCheckpoint(path: (dir as NSString).appendingPathComponent("replication-offset-checkpoint"))
            do { try cp.write(perDir[dir] ?? [:]) } catch { logger.error("Cannot write high-watermark checkpoint in \(dir): \(error)") }
        }
    }
}

/// A weak reference that can be set after the referring closure was made.
final class WeakReference<T: AnyObject>: @unchecked Sendable {
    private let lock = Mutex<Void>(())
    private weak var _value: T?
    var value: T? {
        get { lock.withLock { _ in _value } }
        set { lock.withLock { _ in _value = newValue } }
    }
}
