import Foundation
import KafkaCluster
import KafkaLog
import KafkaProtocol
import Logging
import ZooKeeper
import Synchronization

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

    /// `replaceStaleOwnNode`: the broker holds its log dirs' locks, so a `/controller` node naming
    /// this broker on another ZooKeeper session is a dead process's and is replaced at once
    /// (`KafkaZooKeeper.electController`).
    public init(brokerId: Int32, zk: KafkaZooKeeper, channel: ControllerChannel, uncleanLeaderElection: Bool,
                deleteTopicEnable: Bool = false, replaceStaleOwnNode: Bool = false, logger: Logger) {
        self.brokerId = brokerId
        self.deleteTopicEnable = deleteTopicEnable
        self.replaceStaleOwnNode = replaceStaleOwnNode
        self.zk = zk
        self.channel = channel
        self.logger = logger
        self.machine = ControllerStateMachine(brokerId: brokerId, uncleanLeaderElection: uncleanLeaderElection)
    }

    public var isActive: Bool { machine.isActive }

    /// Metrics: whether this broker is the active controller, and (when it is) the partitions
    /// without a live leader (0.8.2 `ActiveControllerCount`, `OfflinePartitionsCount`).
    public var metricsSnapshot: (active: Bool, offlinePartitions: Int) {
        guard machine.isActive else { return (false, 0) }
        let offline = machine.leadership.values.filter { machine.liveBrokers[$0.state.leader] == nil }.count
        return (true, offline)
    }

    private let replaceStaleOwnNode: Bool

    /// Set by `shutdown()`: elections and retries stop.
    private let stopped = Mutex(false)

    /// The ZooKeeper session the current election (and the controller it made) belongs to.
    private var session: Int64 = 0
    /// For the pipelined state writes (`ControllerStateWrites.swift`).
    var currentSession: Int64 { session }
    nonisolated var isStopped: Bool { stopped.withLock { $0 } }

    /// Every ZooKeeper call of the controller: retried on connection loss while its session
    /// lasts (zkclient's `retryUntilConnected`), and pinned to the session of the election: a
    /// call that would run, or did run, on a newer session fails with `.sessionExpired`, so a
    /// failover never carries on (bumping the epoch, writing states) on the next session.
    private func zkCall<T: Sendable>(_ what: @autoclosure () -> String, _ operation: () async throws -> T) async throws -> T {
        let pinned = session
        guard pinned != 0, zk.sessionId == pinned else { throw ZooKeeperError.sessionExpired }
        let result = try await zk.retrying(what(), scope: .session, logger: logger, stopped: { stopped.withLock { $0 } }, operation)
        guard zk.sessionId == pinned else { throw ZooKeeperError.sessionExpired }
        return result
    }

    /// Tries to become controller (also after `/controller` was deleted or a new session).
    public func elect() async {
        await lock()
        await electLocked()
        unlock()
    }

    /// Runs the election until it completes: this broker leads with the cluster loaded, or
    /// another broker leads and the watch on `/controller` is set. A failure on the way never
    /// leaves a controller that holds `/controller` and ignores events: it resigns (giving up
    /// the node) and tries again, or waits for the new session.
    private func electLocked() async {
        var attempt = 0
        while !stopped.withLock({ $0 }) && !Task.isCancelled {
            do {
                try await electOnce()
                return
            } catch {
                switch ControllerFaultPolicy.decide(error, phase: .failover, attempt: attempt) {
                case .stop:
                    resign()
                    return
                case .resignAndAwaitNewSession:
                    logger.warning("Controller election interrupted: \(error); will run again on the new ZooKeeper session")
                    resign()
                    return
                case .resignAndReelect(let backoffMs):
                    logger.error("Controller failover failed: \(error); resigning and running the election again in \(backoffMs) ms")
                    await resignAndRelease()
                    attempt += 1
                    try? await Task.sleep(nanoseconds: UInt64(backoffMs) * 1_000_000)
                case .logAndContinue:
                    logger.error("Controller election failed: \(error)")
                    return
                }
            }
        }
    }

    private func electOnce() async throws {
        let now = zk.sessionId
        if machine.isActive && now != session { resign() }   // a controller of a session that is gone
        if !machine.isActive { session = now }
        if machine.isActive, try await zkCall("Reading /controller", { try await zk.holdsController(brokerId: brokerId) }) {
            _ = try await zkCall("Watching /controller", { try await zk.controllerId(watch: true) })
            return   // already the controller of this session
        }
        let elect = { [zk, brokerId, replaceStaleOwnNode, logger] in
            try await zk.electController(brokerId: brokerId, replaceStaleOwnNode: replaceStaleOwnNode, logger: logger)
        }
        var winner = try await zkCall("Controller election", elect)
        while winner == -1 {
            // Our own node from a previous session: wait until it expires.
            try await Task.sleep(nanoseconds: 500_000_000)
            if stopped.withLock({ $0 }) { throw CancellationError() }
            winner = try await zkCall("Controller election", elect)
        }
        let current = try await zkCall("Watching /controller", { try await zk.controllerId(watch: true) })
        guard winner == brokerId else {
            logger.info("Broker \(winner) is the controller")
            if machine.isActive { _ = machine.handle(.resigned) }
            if current == nil { throw ControllerMovedError(reason: "/controller vanished during the election") }
            return
        }
        if machine.isActive { _ = machine.handle(.resigned) }
        // Still ours, on this session, right before the epoch moves (a broker that lost its
        // session meanwhile must not bump the epoch past the real controller's).
        guard try await zkCall("Reading /controller", { try await zk.holdsController(brokerId: brokerId) }) else {
            throw ControllerMovedError(reason: "\(ZkPaths.controller) is no longer held by this session")
        }
        let epoch = try await zkCall("Incrementing the controller epoch", { try await zk.incrementControllerEpoch() })
        logger.info("Broker \(brokerId) is now the controller (epoch \(epoch))")
        let registrations = try await zkCall("Reading live brokers", { try await zk.liveBrokers(watch: true) })
        let brokers = registrations.map(\.endpoint)
        machine.brokerRegisteredAt = Self.registrationTimes(registrations)
        channel.setBrokers(brokers)
        let assignments = try await loadAssignments()
        let started = ContinuousClock.now
        let states = try await zkCall("Reading partition states", { try await zk.allPartitionStates(assignments, concurrency: Self.stateWriteConcurrency) })
        if states.count >= 1000 { logger.info("Read \(states.count) partition states in \(Self.millis(since: started)) ms") }
        try await readUncleanElectionOverrides(states, live: brokers)
        try await run(machine.handle(.elected(epoch: epoch, liveBrokers: brokers, assignments: assignments, states: states)))
        if deleteTopicEnable { try await handleDeletions() }
        try await handlePreferredElection()
        try await handleReassignment()
    }

    private static func registrationTimes(_ registrations: [BrokerRegistration]) -> [Int32: Int64] {
        Dictionary(registrations.map { ($0.id, $0.timestamp) }, uniquingKeysWith: { _, b in b })
    }

    /// Reads the topic-level `unclean.leader.election.enable` of every topic that may need an
    /// unclean election with `live` brokers (a partition without a live ISR member).
    private func readUncleanElectionOverrides(_ states: [TopicPartition: VersionedLeaderIsr], live: [BrokerEndpoint]) async throws {
        let topics = ControllerStateMachine.topicsWithoutLiveIsr(states, live: Set(live.map(\.id)))
        for topic in topics.sorted() {
            let config = try await zkCall("Reading the config of topic \(topic)", { try await zk.topicConfig(topic) })
            switch config[LogConfig.uncleanLeaderElectionEnableProp]?.lowercased() {
            case "true": machine.uncleanLeaderElectionByTopic[topic] = true
            case "false": machine.uncleanLeaderElectionByTopic[topic] = false
            default: machine.uncleanLeaderElectionByTopic[topic] = nil
            }
        }
    }

    /// What a failure while handling one event leads to (`ControllerFaultPolicy`).
    private func recover(from error: Error, while what: String) async {
        switch ControllerFaultPolicy.decide(error, phase: .event) {
        case .stop:
            resign()
        case .resignAndAwaitNewSession:
            logger.warning("\(what) interrupted: \(error); resigning, the new ZooKeeper session elects again")
            resign()
        case .resignAndReelect:
            logger.error("\(what) failed: \(error); resigning and running the election again")
            await resignAndRelease()
            await electLocked()
        case .logAndContinue:
            logger.error("\(what) failed: \(error)")
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
        do {
            try await refreshStates()
            try await run(machine.handle(.controlledShutdown(brokerId: id)))
        } catch {
            await recover(from: error, while: "Controlled shutdown of broker \(id)")
            return ControlledShutdownResponse(error: .unknown, partitionsRemaining: machine.partitionsLed(by: id))
        }
        return ControlledShutdownResponse(error: .none, partitionsRemaining: machine.partitionsLed(by: id))
    }

    /// Gives up the controller role locally (session expired, shutdown, another controller).
    public func resign() {
        if machine.isActive {
            logger.info("Broker \(brokerId) resigns as controller")
            _ = machine.handle(.resigned)
        }
        channel.closeAll()
        watchedTopics.removeAll()
    }

    /// Broker shutdown: stop electing and retrying, resign.
    public func shutdown() {
        stopped.withLock { $0 = true }
        resign()
    }

    /// Resigns and deletes `/controller` if this session holds it, so that every broker (this
    /// one included) elects again.
    private func resignAndRelease() async {
        resign()
        do {
            if try await zkCall("Releasing /controller", { try await zk.releaseController(brokerId: brokerId) }) {
                logger.info("Broker \(brokerId) gave up \(ZkPaths.controller)")
            }
        } catch {
            logger.warning("Cannot release \(ZkPaths.controller): \(error)")
        }
    }

    /// Reads every topic's assignment and (re)sets the watches the controller relies on. A
    /// topic whose assignment does not parse is left out (logged), never the whole read.
    private func loadAssignments() async throws -> [String: [Int32: [Int32]]] {
        try await zkCall("Reading topic assignments") {
            var out: [String: [Int32: [Int32]]] = [:]
            for t in try await zk.topics(watch: true) {
                do {
                    if let a = try await zk.assignment(t, watch: true) { out[t] = a }
                } catch let e as ZkDataError {
                    logger.error("Ignoring topic \(t): \(e)")
                }
            }
            return out
        }
    }

    public func handle(_ event: ZooKeeperEvent) async {
        await lock()
        await handleLocked(event)
        unlock()
    }

    private func handleLocked(_ event: ZooKeeperEvent) async {
        do {
            try await handleThrowing(event)
        } catch {
            await recover(from: error, while: "Handling \(event)")
        }
    }

    private func handleThrowing(_ event: ZooKeeperEvent) async throws {
        switch event {
        case .nodeDeleted(ZkPaths.controller):
            resign()
            await electLocked()
        case .nodeDataChanged(ZkPaths.controller), .nodeCreated(ZkPaths.controller):
            let id = try await zkCall("Watching /controller", { try await zk.controllerId(watch: true) })
            if let id, id != brokerId { resign() }
            if id == nil { resign(); await electLocked() }
        case .nodeChildrenChanged(ZkPaths.brokerIds):
            guard machine.isActive else { return }
            // Read with the watch set again; a failed read is retried, never taken as "brokers gone".
            let registrations = try await zkCall("Reading live brokers", { try await zk.liveBrokers(watch: true) })
            let brokers = registrations.map(\.endpoint)
            logger.info("Live brokers changed: \(brokers.map(\.id))")
            channel.setBrokers(brokers)
            try await refreshStates()
            try await readUncleanElectionOverrides(machine.leadership, live: brokers)
            try await run(machine.handle(.brokersChanged(brokers, registeredAt: Self.registrationTimes(registrations))))
        case .nodeChildrenChanged(ZkPaths.brokerTopics):
            guard machine.isActive else { return }
            try await reloadAssignments()
        case .nodeCreated(ZkPaths.preferredReplicaElection), .nodeDataChanged(ZkPaths.preferredReplicaElection):
            guard machine.isActive else { return }
            try await handlePreferredElection()
        case .nodeChildrenChanged(ZkPaths.deleteTopics):
            guard machine.isActive, deleteTopicEnable else { return }
            try await handleDeletions()
        case .nodeCreated(ZkPaths.reassignPartitions), .nodeDataChanged(ZkPaths.reassignPartitions), .nodeDeleted(ZkPaths.reassignPartitions):
            guard machine.isActive else { return }
            try await handleReassignment()
        case .nodeDataChanged(let path) where machine.reassignedPartition(statePath: path) != nil,
             .nodeCreated(let path) where machine.reassignedPartition(statePath: path) != nil,
             .nodeDeleted(let path) where machine.reassignedPartition(statePath: path) != nil:
            guard machine.isActive, let tp = machine.reassignedPartition(statePath: path) else { return }
            try await reassignedPartitionStateChanged(tp)
        case .nodeDataChanged(let path) where path.hasPrefix(ZkPaths.brokerTopics + "/") && path.contains("/partitions/") && path.hasSuffix("/state"):
            break   // a state watch left from a finished reassignment (not an assignment change)
        case .nodeDataChanged(let path) where path.hasPrefix(ZkPaths.brokerTopics + "/"):
            guard machine.isActive else { return }
            try await reloadAssignments()
        default:
            break
        }
    }

    /// `/admin/preferred_replica_election`: elect the listed partitions' preferred replicas,
    /// then delete the node (and watch for the next one).
    private func handlePreferredElection() async throws {
        let path = ZkPaths.preferredReplicaElection
        guard let data = try await zkCall("Reading \(path)", { try await zk.preferredReplicaElectionData(watch: true) }) else { return }
        do {
            let partitions = try PreferredReplicaElectionData.parse(data, path: path)
            logger.info("Starting preferred replica leader election for partitions \(partitions.map(\.description).joined(separator: ","))")
            try await refreshStates()
            try await run(machine.handle(.preferredReplicaElection(partitions)))
        } catch let error as ZkDataError {
            logger.error("Preferred replica election failed: \(error)")
        }
        try await zkCall("Deleting \(path)") { try await zk.completePreferredReplicaElection() }
    }

    /// auto.leader.rebalance.enable: move leadership back to preferred replicas of brokers
    /// whose share of partitions led elsewhere exceeds the percentage.
    public func checkLeaderImbalance(percentage: Int) async {
        await lock()
        defer { unlock() }
        guard machine.isActive else { return }
        do {
            try await refreshStates()
            let partitions = machine.imbalancedPartitions(percentage: percentage)
            guard !partitions.isEmpty else { return }
            logger.info("Leader imbalance found; electing preferred replicas of \(partitions.map(\.description).joined(separator: ","))")
            try await run(machine.handle(.preferredReplicaElection(partitions)))
        } catch {
            await recover(from: error, while: "Leader imbalance check")
        }
    }

    /// Re-reads every partition's state znode into the state machine.
    private func refreshStates() async throws {
        let assignments = machine.assignments
        let started = ContinuousClock.now
        let states = try await zkCall("Reading partition states", { try await zk.allPartitionStates(assignments, concurrency: Self.stateWriteConcurrency) })
        if states.count >= 1000 { logger.info("Read \(states.count) partition states in \(Self.millis(since: started)) ms") }
        _ = machine.handle(.statesRead(states))
    }

    /// Topics marked under `/admin/delete_topics` (and the watch for new marks).
    private func handleDeletions() async throws {
        let marked = try await zkCall("Reading topics marked for deletion", { try await zk.topicsMarkedForDeletion(watch: true) })
        guard !marked.isEmpty else { return }
        logger.info("Deleting topics \(marked.sorted())")
        try await run(machine.handle(.deleteTopics(marked)))
    }

    /// `/admin/reassign_partitions` (read with its watch set again): partitions not being moved
    /// yet start moving. A node that does not parse is logged and left for the tool to fix.
    private func handleReassignment() async throws {
        let listed: [TopicPartition: [Int32]]?
        do {
            listed = try await zkCall("Reading \(ZkPaths.reassignPartitions)", { try await zk.reassignment(watch: true) })
        } catch let error as ZkDataError {
            logger.error("Partition reassignment failed: \(error)")
            return
        }
        guard let listed else { return }
        if listed.isEmpty {
            // A node listing nothing would block every later reassignment: remove it.
            try await zkCall("Deleting an empty \(ZkPaths.reassignPartitions)") { try await zk.removeFromReassignment([]) }
            return
        }
        let fresh = listed.filter { machine.reassigning[$0.key] == nil }
        guard !fresh.isEmpty else { return }
        let text = fresh.keys.sorted().map { tp in "\(tp) -> \(fresh[tp]!.map(String.init).joined(separator: ","))" }
        logger.info("Partitions to be reassigned: \(text.joined(separator: "; "))")
        try await refreshStates()
        try await run(machine.handle(.reassignPartitions(listed)))
    }

    /// The watched state node of a partition being reassigned changed: read it (watch set
    /// again) and let the machine see whether the new replicas caught up.
    private func reassignedPartitionStateChanged(_ tp: TopicPartition) async throws {
        let fresh = try await zkCall("Reading the state of \(tp)", { try await zk.watchPartitionState(tp) })
        if let fresh, let ctx = machine.reassigning[tp] {
            let caught = ctx.newReplicas.filter(fresh.state.isr.contains)
            logger.info("\(caught.count)/\(ctx.newReplicas.count) replicas have caught up with the leader for partition \(tp) being reassigned")
        }
        try await run(machine.handle(.reassignedPartitionStateChanged(tp, fresh)))
    }

    private func reloadAssignments() async throws {
        let all = try await loadAssignments()
        try await run(machine.handle(.assignmentsChanged(all)))
    }

    /// A failure that ends the whole run (session gone, shutdown, controller moved) rather
    /// than one partition's step.
    private func isFatal(_ error: Error) -> Bool {
        ControllerFaultPolicy.decide(error, phase: .event) != .logAndContinue
    }

    /// Carries out the state machine's actions in order; a lost state-write race skips the
    /// sends for that partition and feeds the fresh state back. ZooKeeper writes are retried
    /// on connection loss; an expired session ends the run (the caller resigns).
    private func run(_ actions: [ControllerAction]) async throws {
        var failed = Set<TopicPartition>()
        var followUps: [ControllerEvent] = []
        var index = actions.startIndex
        while index < actions.endIndex {
            let action = actions[index]
            index += 1
            // A resignation (new session, shutdown) may interleave at any await: stop then.
            guard machine.isActive else { return }
            // A run of state writes (one partition each) goes to ZooKeeper pipelined.
            let writes = Self.stateWriteRun(actions, from: index - 1)
            if writes.count > 1 {
                index = index - 1 + writes.count
                let outcome = try await writeStates(writes)
                failed.formUnion(outcome.failed)
                followUps += outcome.followUps
                continue
            }
            switch action {
            case let .createState(tp, state):
                do {
                    try await zkCall("Creating the state of \(tp)", { try await zk.createPartitionState(tp, state) })
                } catch ZooKeeperError.nodeExists {
                    let fresh = try await zkCall("Reading the state of \(tp)", { try await zk.partitionState(tp) })
                    // Our own write, when a retry after a connection loss finds it done.
                    if let fresh, fresh.state == state, fresh.zkVersion == 0 { continue }
                    failed.insert(tp)
                    followUps.append(.stateConflict(tp, fresh))
                } catch where !isFatal(error) {
                    logger.error("Cannot create state of \(tp): \(error)")
                    failed.insert(tp)
                }
            case let .updateState(tp, state, expected):
                do {
                    if try await zkCall("Updating the state of \(tp)", { try await zk.updatePartitionState(tp, state, expectedVersion: expected) }) == nil {
                        failed.insert(tp)
                        followUps.append(.stateConflict(tp, try await zkCall("Reading the state of \(tp)", { try await zk.partitionState(tp) })))
                    }
                } catch where !isFatal(error) {
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
            case let .writeAssignment(tp, assignment):
                guard !failed.contains(tp) else { continue }
                try await zkCall("Writing the assignment of topic \(tp.topic)") { try await zk.writeAssignment(tp.topic, assignment) }
                logger.info("Updated assigned replicas for partition \(tp) being reassigned to \(assignment[tp.partition]?.map(String.init).joined(separator: ",") ?? "")")
            case let .watchReassignedPartition(tp):
                let fresh = try await zkCall("Watching the state of \(tp)", { try await zk.watchPartitionState(tp) })
                if fresh != machine.leadership[tp] { followUps.append(.reassignedPartitionStateChanged(tp, fresh)) }
            case let .removeReassignment(tp, error):
                guard !failed.contains(tp) else { continue }
                if let error { logger.error("Error completing reassignment of partition \(tp): \(error)") }
                let left = try await zkCall("Updating \(ZkPaths.reassignPartitions)") { try await zk.removeFromReassignment([tp]) }
                if error == nil { logger.info("Removed partition \(tp) from the list of reassigned partitions in zookeeper") }
                if left.isEmpty { logger.info("No more partitions need to be reassigned. Deleting zk path \(ZkPaths.reassignPartitions)") }
                followUps.append(.reassignmentRemoved(tp))
            case let .deleteTopicNodes(topic):
                do {
                    try await zkCall("Deleting the znodes of topic \(topic)") { try await zk.deleteTopicNodes(topic) }
                    logger.info("Deletion of topic \(topic) successfully completed")
                } catch where !isFatal(error) { logger.error("Cannot delete the znodes of topic \(topic): \(error)") }
            }
        }
        try await runFollowUps(followUps)
    }

    /// Lost races are decided one partition at a time, but carried out as one batch (writes
    /// pipelined, one LeaderAndIsr per broker); other follow-ups run one by one, in order.
    private func runFollowUps(_ followUps: [ControllerEvent]) async throws {
        let onlyConflicts = followUps.allSatisfy { if case .stateConflict = $0 { return true } else { return false } }
        guard onlyConflicts, followUps.count > 1 else {
            for e in followUps { try await run(machine.handle(e)) }
            return
        }
        var actions: [ControllerAction] = []
        for e in followUps { actions += machine.handle(e) }
        try await run(ControllerStateMachine.batched(actions))
    }
}
