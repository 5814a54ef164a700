import Foundation
import KafkaCluster
import KafkaProtocol
import Logging
import ZooKeeper

/// Delivers controller requests to a broker (itself locally, others over the network).
public protocol ControllerChannel: Sendable {
    /// The live brokers the controller talks to (channels open and close to match).
    func setBrokers(_ brokers: [BrokerEndpoint])
    func closeAll()
    func sendLeaderAndIsr(to broker: Int32, _ req: LeaderAndIsrRequest) async
    func sendUpdateMetadata(to broker: Int32, _ req: UpdateMetadataRequest) async
    func sendStopReplica(to broker: Int32, _ req: StopReplicaRequest) async
}

/// Runs the controller: elects through `/controller`, feeds ZooKeeper changes to the
/// `ControllerStateMachine`, and carries out the actions it returns. All work happens on
/// this actor, one event at a time.
public actor KafkaController {
    let brokerId: Int32
    let zk: KafkaZooKeeper
    let channel: ControllerChannel
    let logger: Logger
    let deleteTopicEnable: Bool
    private var machine: ControllerStateMachine
    private var watchedTopics = Set<String>()
    /// Election and event handling suspend at every ZooKeeper call, and actor methods may
    /// interleave there: an event taken while an election is half done would be dropped
    /// (the machine is not active yet) and its one-shot watch lost. So each of them runs
    /// alone, in arrival order, as Kafka's controller lock does.
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    private func lock() async {
        if busy {
            await withCheckedContinuation { waiters.append($0) }
        } else {
            busy = true
        }
    }

    private func unlock() {
        if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
    }

    public init(brokerId: Int32, zk: KafkaZooKeeper, channel: ControllerChannel, uncleanLeaderElection: Bool,
                deleteTopicEnable: Bool = false, logger: Logger) {
        self.brokerId = brokerId
        self.deleteTopicEnable = deleteTopicEnable
        self.zk = zk
        self.channel = channel
        self.logger = logger
        self.machine = ControllerStateMachine(brokerId: brokerId, uncleanLeaderElection: uncleanLeaderElection)
    }

    public var isActive: Bool { machine.isActive }

    /// Tries to become controller (also after `/controller` was deleted or a new session).
    public func elect() async {
        await lock()
        await electLocked()
        unlock()
    }

    private func electLocked() async {
        do {
            var winner = try await zk.electController(brokerId: brokerId)
            while winner == -1 {
                // Our own node from a previous session: wait until it expires.
                try await Task.sleep(nanoseconds: 500_000_000)
                winner = try await zk.electController(brokerId: brokerId)
            }
            _ = try await zk.controllerId(watch: true)
            guard winner == brokerId else {
                logger.info("Broker \(winner) is the controller")
                if machine.isActive { _ = machine.handle(.resigned) }
                return
            }
            let epoch = try await zk.incrementControllerEpoch()
            logger.info("Broker \(brokerId) is now the controller (epoch \(epoch))")
            let brokers = try await zk.liveBrokers(watch: true).map(\.endpoint)
            channel.setBrokers(brokers)
            let assignments = try await loadAssignments()
            let states = try await zk.allPartitionStates(assignments)
            await run(machine.handle(.elected(epoch: epoch, liveBrokers: brokers, assignments: assignments, states: states)))
            if deleteTopicEnable { await handleDeletions() }
            await handlePreferredElection()
        } catch {
            logger.error("Controller election failed: \(error)")
        }
    }

    /// ControlledShutdown from broker `id`: move its leaderships away; answer with the
    /// replicated partitions it still leads (empty means it may stop now).
    public func controlledShutdown(brokerId id: Int32) async -> ControlledShutdownResponse {
        await lock()
        defer { unlock() }
        guard machine.isActive else { return ControlledShutdownResponse(error: .unknown, partitionsRemaining: []) }
        guard machine.liveBrokers[id] != nil else { return ControlledShutdownResponse(error: .brokerNotAvailable, partitionsRemaining: []) }
        logger.info("Shutting down broker \(id)")
        await refreshStates()
        await run(machine.handle(.controlledShutdown(brokerId: id)))
        return ControlledShutdownResponse(error: .none, partitionsRemaining: machine.partitionsLed(by: id))
    }

    public func resign() {
        if machine.isActive {
            logger.info("Broker \(brokerId) resigns as controller")
            _ = machine.handle(.resigned)
        }
        channel.closeAll()
        watchedTopics.removeAll()
    }

    /// Reads every topic's assignment and (re)sets the watches the controller relies on.
    private func loadAssignments() async throws -> [String: [Int32: [Int32]]] {
        var out: [String: [Int32: [Int32]]] = [:]
        for t in try await zk.topics(watch: true) {
            if let a = try await zk.assignment(t, watch: true) { out[t] = a }
        }
        return out
    }

    public func handle(_ event: ZooKeeperEvent) async {
        await lock()
        await handleLocked(event)
        unlock()
    }

    private func handleLocked(_ event: ZooKeeperEvent) async {
        switch event {
        case .nodeDeleted(ZkPaths.controller):
            resign()
            await electLocked()
        case .nodeDataChanged(ZkPaths.controller), .nodeCreated(ZkPaths.controller):
            if let id = try? await zk.controllerId(watch: true), id != brokerId { resign() }
        case .nodeChildrenChanged(ZkPaths.brokerIds):
            guard machine.isActive else { return }
            do {
                let brokers = try await zk.liveBrokers(watch: true).map(\.endpoint)
                logger.info("Live brokers changed: \(brokers.map(\.id))")
                channel.setBrokers(brokers)
                await refreshStates()
                await run(machine.handle(.brokersChanged(brokers)))
            } catch { logger.error("Cannot read live brokers: \(error)") }
        case .nodeChildrenChanged(ZkPaths.brokerTopics):
            guard machine.isActive else { return }
            await reloadAssignments()
        case .nodeCreated(ZkPaths.preferredReplicaElection), .nodeDataChanged(ZkPaths.preferredReplicaElection):
            guard machine.isActive else { return }
            await handlePreferredElection()
        case .nodeChildrenChanged(ZkPaths.deleteTopics):
            guard machine.isActive, deleteTopicEnable else { return }
            await handleDeletions()
        case .nodeDataChanged(let path) where path.hasPrefix(ZkPaths.brokerTopics + "/"):
            guard machine.isActive else { return }
            await reloadAssignments()
        default:
            break
        }
    }

    /// `/admin/preferred_replica_election`: elect the listed partitions' preferred replicas,
    /// then delete the node (and watch for the next one).
    private func handlePreferredElection() async {
        let path = ZkPaths.preferredReplicaElection
        do {
            guard try await zk.zk.exists(path, watch: true) != nil else { return }
            let (data, _) = try await zk.zk.get(path, watch: true)
            let partitions = try PreferredReplicaElectionData.parse(data, path: path)
            logger.info("Starting preferred replica leader election for partitions \(partitions.map(\.description).joined(separator: ","))")
            await refreshStates()
            await run(machine.handle(.preferredReplicaElection(partitions)))
            try? await zk.zk.delete(path)
            _ = try await zk.zk.exists(path, watch: true)
        } catch {
            logger.error("Preferred replica election failed: \(error)")
            try? await zk.zk.delete(path)
            _ = try? await zk.zk.exists(path, watch: true)
        }
    }

    /// auto.leader.rebalance.enable: move leadership back to preferred replicas of brokers
    /// whose share of partitions led elsewhere exceeds the percentage.
    public func checkLeaderImbalance(percentage: Int) async {
        await lock()
        defer { unlock() }
        guard machine.isActive else { return }
        await refreshStates()
        let partitions = machine.imbalancedPartitions(percentage: percentage)
        guard !partitions.isEmpty else { return }
        logger.info("Leader imbalance found; electing preferred replicas of \(partitions.map(\.description).joined(separator: ","))")
        await run(machine.handle(.preferredReplicaElection(partitions)))
    }

    /// Re-reads every partition's state znode into the state machine.
    private func refreshStates() async {
        do {
            let states = try await zk.allPartitionStates(machine.assignments)
            _ = machine.handle(.statesRead(states))
        } catch { logger.warning("Cannot re-read partition states: \(error)") }
    }

    /// Topics marked under `/admin/delete_topics` (and the watch for new marks).
    private func handleDeletions() async {
        do {
            let marked = try await zk.zk.children(ZkPaths.deleteTopics, watch: true)
            guard !marked.isEmpty else { return }
            logger.info("Deleting topics \(marked.sorted())")
            await run(machine.handle(.deleteTopics(marked)))
        } catch { logger.error("Cannot read topics marked for deletion: \(error)") }
    }

    private func reloadAssignments() async {
        do {
            let all = try await loadAssignments()
            await run(machine.handle(.assignmentsChanged(all)))
        } catch { logger.error("Cannot read topic assignments: \(error)") }
    }

    /// Carries out the state machine's actions in order; a lost state-write race skips the
    /// sends for that partition and feeds the fresh state back.
    private func run(_ actions: [ControllerAction]) async {
        var failed = Set<TopicPartition>()
        var followUps: [ControllerEvent] = []
        for action in actions {
            // A resignation (new session, shutdown) may interleave at any await: stop then.
            guard machine.isActive else { return }
            switch action {
            case let .createState(tp, state):
                do {
                    try await zk.createPartitionState(tp, state)
                } catch ZooKeeperError.nodeExists {
                    failed.insert(tp)
                    followUps.append(.stateConflict(tp, try? await zk.partitionState(tp)))
                } catch {
                    logger.error("Cannot create state of \(tp): \(error)")
                    failed.insert(tp)
                }
            case let .updateState(tp, state, expected):
                do {
                    if try await zk.updatePartitionState(tp, state, expectedVersion: expected) == nil {
                        failed.insert(tp)
                        followUps.append(.stateConflict(tp, try? await zk.partitionState(tp)))
                    }
                } catch {
                    logger.error("Cannot update state of \(tp): \(error)")
                    failed.insert(tp)
                }
            case let .sendLeaderAndIsr(broker, states, leaders):
                let ok = states.filter { !failed.contains($0.topicPartition) }
                guard !ok.isEmpty else { continue }
                await channel.sendLeaderAndIsr(to: broker, LeaderAndIsrRequest(controllerId: brokerId, controllerEpoch: machine.epoch, partitionStates: ok, leaders: leaders))
            case let .sendUpdateMetadata(brokers, states, live):
                let ok = states.filter { !failed.contains($0.topicPartition) }
                let req = UpdateMetadataRequest(controllerId: brokerId, controllerEpoch: machine.epoch, partitionStates: ok, liveBrokers: live)
                for b in brokers { await channel.sendUpdateMetadata(to: b, req) }
            case let .sendStopReplica(broker, partitions, delete):
                await channel.sendStopReplica(to: broker, StopReplicaRequest(controllerId: brokerId, controllerEpoch: machine.epoch,
                                                                             deletePartitions: delete, partitions: partitions))
            case let .deleteTopicNodes(topic):
                do {
                    try await zk.zk.deleteRecursive(ZkPaths.topic(topic))
                    try await zk.zk.deleteRecursive(ZkPaths.topicConfig(topic))
                    try await zk.zk.deleteRecursive(ZkPaths.deleteTopic(topic))
                    logger.info("Deletion of topic \(topic) successfully completed")
                } catch { logger.error("Cannot delete the znodes of topic \(topic): \(error)") }
            }
        }
        for e in followUps { await run(machine.handle(e)) }
    }
}
