import Foundation
import KafkaLog
import KafkaProtocol
import Logging

/// Owns the partitions this broker hosts: applies LeaderAndIsr decisions, appends to leaders,
/// serves reads up to the high watermark, wakes parked requests, checkpoints high watermarks.
public final class ReplicaManager: @unchecked Sendable {
    public let brokerId: Int32
    let logManager: LogManager
    let logger: Logger
    public let fetchPurgatory = Purgatory()
    private let lock = NSLock()
    private var partitions: [TopicPartition: Partition] = [:]
    private var controllerEpoch: Int32 = 0
    /// High watermarks read from each dir's `replication-offset-checkpoint` at start.
    private var checkpointedHW: [TopicPartition: Int64] = [:]
    let logDirs: [String]

    public init(brokerId: Int32, logManager: LogManager, logDirs: [String], logger: Logger) {
        self.brokerId = brokerId
        self.logManager = logManager
        self.logDirs = logDirs
        self.logger = logger
        for dir in logDirs {
            let cp = OffsetCheckpoint(path: (dir as NSString).appendingPathComponent("replication-offset-checkpoint"))
            if let hws = try? cp.read() { checkpointedHW.merge(hws) { a, _ in a } }
        }
    }

    public func partition(_ tp: TopicPartition) -> Partition? { lock.withLock { partitions[tp] } }
    public var allPartitions: [Partition] { lock.withLock { Array(partitions.values) } }

    /// LeaderAndIsr: fenced by controller epoch (whole request) and leader epoch (per partition).
    public func becomeLeaderOrFollower(_ req: LeaderAndIsrRequest) -> PartitionErrorsResponse {
        let stale: Bool = lock.withLock {
            if req.controllerEpoch < controllerEpoch { return true }
            controllerEpoch = req.controllerEpoch
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
                if p.applyLeadership(s) {
                    if s.leader == brokerId {
                        logger.info("Broker \(brokerId) is now leader of \(tp) (leader epoch \(s.leaderEpoch), ISR \(s.isr), log end \(p.log.logEndOffset), high watermark \(p.highWatermark))")
                    } else {
                        // Following is the replication work of a later milestone: today a
                        // non-leader replica only stops serving clients.
                        logger.info("Broker \(brokerId) is now a follower of \(tp) led by \(s.leader)")
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

    private func getOrCreatePartition(_ tp: TopicPartition) throws -> Partition {
        if let p = partition(tp) { return p }
        let log = try logManager.getOrCreateLog(tp)
        return lock.withLock {
            if let p = partitions[tp] { return p }
            let p = Partition(topicPartition: tp, log: log, localBrokerId: brokerId, highWatermark: checkpointedHW[tp] ?? 0)
            partitions[tp] = p
            return p
        }
    }

    /// The leader partition for client requests, or the error a client gets.
    public func leaderPartition(_ tp: TopicPartition) -> Result<Partition, ErrorCode> {
        guard let p = partition(tp) else { return .failure(.unknownTopicOrPartition) }
        guard p.isLeader else { return .failure(.notLeaderForPartition) }
        return .success(p)
    }

    /// Appends a produced message set to a partition this broker leads.
    public func appendToLeader(_ tp: TopicPartition, messageSet: [UInt8]) -> Result<LogAppendInfo, ErrorCode> {
        switch leaderPartition(tp) {
        case .failure(let e): return .failure(e)
        case .success(let p):
            do {
                let info = try p.log.append(messageSet, assignOffsets: true)
                p.maybeAdvanceHighWatermark()
                fetchPurgatory.checkAndComplete(tp)
                return .success(info)
            } catch {
                logger.debug("Append to \(tp) refused: \(error)")
                return .failure(error.errorCode)
            }
        }
    }

    /// Writes every hosted partition's high watermark to its dir's `replication-offset-checkpoint`.
    public func checkpointHighWatermarks() {
        var perDir: [String: [TopicPartition: Int64]] = [:]
        for p in allPartitions {
            let dir = (p.log.directory as NSString).deletingLastPathComponent
            perDir[dir, default: [:]][p.topicPartition] = p.highWatermark
        }
        for dir in logDirs {
            let cp = OffsetCheckpoint(path: (dir as NSString).appendingPathComponent("replication-offset-checkpoint"))
            do { try cp.write(perDir[dir] ?? [:]) } catch { logger.error("Cannot write high-watermark checkpoint in \(dir): \(error)") }
        }
    }
}
