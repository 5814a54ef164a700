import Foundation
import KafkaProtocol
import ZooKeeper

/// A partition's leadership as stored in ZooKeeper, with the znode version it was read at.
public struct VersionedLeaderIsr: Sendable, Equatable {
    public var state: LeaderIsrState
    public var zkVersion: Int32
    public init(state: LeaderIsrState, zkVersion: Int32) {
        self.state = state
        self.zkVersion = zkVersion
    }
}

/// What the controller learns from ZooKeeper.
public enum ControllerEvent: Sendable, Equatable {
    /// This broker won `/controller` with this epoch; the rest is the cluster as loaded from ZooKeeper.
    case elected(epoch: Int32, liveBrokers: [BrokerEndpoint], assignments: [String: [Int32: [Int32]]], states: [TopicPartition: VersionedLeaderIsr])
    /// Children of `/brokers/ids` changed.
    /// Children of `/brokers/ids` changed. `registeredAt` holds each broker's registration
    /// timestamp: a broker whose timestamp changed died and came back between two reads.
    case brokersChanged([BrokerEndpoint], registeredAt: [Int32: Int64] = [:])
    /// `/brokers/topics` (or one topic's assignment) changed; the full current assignments.
    case assignmentsChanged([String: [Int32: [Int32]]])
    /// A conditional state write lost a race; the freshly read state.
    case stateConflict(TopicPartition, VersionedLeaderIsr?)
    case resigned
    /// A broker asks to shut down cleanly (ControlledShutdown request).
    case controlledShutdown(brokerId: Int32)
    /// Topics listed under `/admin/delete_topics` (only acted on with delete.topic.enable).
    case deleteTopics([String])
    /// Partitions listed in `/admin/preferred_replica_election` (or found imbalanced).
    case preferredReplicaElection([TopicPartition])
    /// Fresh state znodes (leaders change ISRs themselves; decisions start from what is stored).
    case statesRead([TopicPartition: VersionedLeaderIsr])
    /// Partition reassignment (0.8.2 `PartitionsReassignedListener`): what `/admin/reassign_partitions`
    /// lists now (partition → new replicas, RAR). Partitions already being moved are left alone.
    case reassignPartitions([TopicPartition: [Int32]])
    /// The state node of a partition being reassigned changed (0.8.2
    /// `ReassignedPartitionsIsrChangeListener`); nil when it is gone.
    case reassignedPartitionStateChanged(TopicPartition, VersionedLeaderIsr?)
    /// The executor removed the partition from `/admin/reassign_partitions` (`removeReassignment`).
    case reassignmentRemoved(TopicPartition)
}

/// What the I/O layer must do, in order. A failed state write makes the executor skip the
/// sends that follow for that partition and report `.stateConflict`.
public enum ControllerAction: Sendable, Equatable {
    case createState(TopicPartition, LeaderIsrState)
    case updateState(TopicPartition, LeaderIsrState, expectedVersion: Int32)
    case sendLeaderAndIsr(broker: Int32, states: [PartitionStateInfo], leaders: [BrokerEndpoint])
    case sendUpdateMetadata(brokers: [Int32], states: [PartitionStateInfo], liveBrokers: [BrokerEndpoint])
    case sendStopReplica(broker: Int32, partitions: [TopicPartition], delete: Bool)
    /// Remove `/brokers/topics/<t>`, `/config/topics/<t>` and `/admin/delete_topics/<t>`.
    case deleteTopicNodes(String)
    /// Reassignment: write `/brokers/topics/<t>` (the topic's whole assignment) for a partition
    /// being moved; skipped when that partition's state write just failed.
    case writeAssignment(TopicPartition, topicAssignment: [Int32: [Int32]])
    /// Reassignment: set a data watch on the partition's state node (its ISR is followed until
    /// the new replicas caught up); the executor feeds a changed state back.
    case watchReassignedPartition(TopicPartition)
    /// Reassignment done (error nil) or refused (error says why, logged): remove the partition
    /// from `/admin/reassign_partitions` (the node goes when empty); skipped when that
    /// partition's state write just failed. The executor then reports `.reassignmentRemoved`.
    case removeReassignment(TopicPartition, error: String?)
}

/// A partition being reassigned: the new replicas (RAR) and the assignment while both old
/// and new replicas are held (RAR followed by the old replicas not in RAR).
public struct ReassignmentContext: Sendable, Equatable {
    public var newReplicas: [Int32]
    public var expanded: [Int32]
    /// The final switch (leader move, old replicas stopped, AR = RAR) has been decided and is
    /// being carried out.
    public var completing = false
    public init(newReplicas: [Int32], expanded: [Int32], completing: Bool = false) {
        self.newReplicas = newReplicas
        self.expanded = expanded
        self.completing = completing
    }
}

/// The controller's partition and replica state machine as a value type: it takes events and
/// returns actions, doing no I/O (Kafka 0.8.2 `KafkaController`, `PartitionStateMachine`,
/// `ReplicaStateMachine`, offline leader selector).
public struct ControllerStateMachine: Sendable {
    public let brokerId: Int32
    public private(set) var epoch: Int32 = 0
    public private(set) var isActive = false
    public private(set) var liveBrokers: [Int32: BrokerEndpoint] = [:]
    public private(set) var assignments: [String: [Int32: [Int32]]] = [:]
    public private(set) var leadership: [TopicPartition: VersionedLeaderIsr] = [:]
    /// Brokers in controlled shutdown: still live (they receive metadata) but never elected.
    public private(set) var shuttingDown = Set<Int32>()
    /// Registration timestamps of the live brokers as last read (restart detection); the actor
    /// sets them when it is elected, `brokersChanged` keeps them current.
    public var brokerRegisteredAt: [Int32: Int64] = [:]
    /// Partitions being reassigned (0.8.2 `partitionsBeingReassigned`).
    public private(set) var reassigning: [TopicPartition: ReassignmentContext] = [:]
    /// The broker's `unclean.leader.election.enable`.
    public var uncleanLeaderElection: Bool
    /// Topic-level `unclean.leader.election.enable` overrides, read by the actor from
    /// `/config/topics/<t>` before an event that may need them (`topicsWithoutLiveIsr`).
    public var uncleanLeaderElectionByTopic: [String: Bool] = [:]

    public init(brokerId: Int32, uncleanLeaderElection: Bool = true) {
        self.brokerId = brokerId
        self.uncleanLeaderElection = uncleanLeaderElection
    }

    /// Topics with a partition that no ISR member among `live` could lead: only for these can an
    /// election be unclean, so only their topic configs need reading (as 0.8.2's offline leader
    /// selector reads the topic config).
    public static func topicsWithoutLiveIsr(_ states: [TopicPartition: VersionedLeaderIsr], live: Set<Int32>) -> Set<String> {
        var out = Set<String>()
        for (tp, v) in states where !out.contains(tp.topic) && !v.state.isr.contains(where: live.contains) {
            out.insert(tp.topic)
        }
        return out
    }

    private func uncleanAllowed(_ topic: String) -> Bool {
        uncleanLeaderElectionByTopic[topic] ?? uncleanLeaderElection
    }

    public mutating func handle(_ event: ControllerEvent) -> [ControllerAction] {
        switch event {
        case let .elected(epoch, brokers, assignments, states):
            self.epoch = epoch
            isActive = true
            liveBrokers = Dictionary(brokers.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            self.assignments = assignments
            leadership = states
            reassigning.removeAll()
            return failover()
        case .resigned:
            isActive = false
            epoch = 0
            shuttingDown.removeAll()
            reassigning.removeAll()
            return []
        case let .controlledShutdown(id):
            guard isActive, liveBrokers[id] != nil else { return [] }
            shuttingDown.insert(id)
            return controlledShutdown(id)
        case let .deleteTopics(topics):
            guard isActive else { return [] }
            return deleteTopics(topics)
        case let .preferredReplicaElection(partitions):
            guard isActive else { return [] }
            return preferredElection(partitions)
        case let .statesRead(states):
            for (tp, st) in states where assignments[tp.topic]?[tp.partition] != nil { leadership[tp] = st }
            return []
        case let .brokersChanged(brokers, registeredAt):
            guard isActive else { brokerRegisteredAt = registeredAt; return [] }
            let now = Dictionary(brokers.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            let restarted = Set(now.keys.filter { id in
                guard liveBrokers[id] != nil, let before = brokerRegisteredAt[id], let after = registeredAt[id] else { return false }
                return before != after
            })
            brokerRegisteredAt = registeredAt
            var actions: [ControllerAction] = []
            if !restarted.isEmpty {
                // Died and came back between two reads: first its death (leaders move, ISRs
                // shrink), then its return, as 0.8.2 would see with two watch events.
                liveBrokers = liveBrokers.filter { !restarted.contains($0.key) }
                shuttingDown.subtract(restarted)
                actions += brokersChanged(new: [], dead: restarted)
            }
            let newIds = Set(now.keys).subtracting(liveBrokers.keys)
            let deadIds = Set(liveBrokers.keys).subtracting(now.keys)
            liveBrokers = now
            shuttingDown.subtract(deadIds)
            return actions + brokersChanged(new: newIds, dead: deadIds)
        case let .assignmentsChanged(all):
            guard isActive else { assignments = all; return [] }
            var newPartitions: [TopicPartition] = []
            for (topic, parts) in all {
                for (p, _) in parts where assignments[topic]?[p] == nil { newPartitions.append(TopicPartition(topic, p)) }
            }
            assignments = all
            return electLeaders(for: newPartitions.sorted(), reason: .newPartition)
        case let .stateConflict(tp, fresh):
            guard isActive else { return [] }
            if let fresh { leadership[tp] = fresh } else { leadership[tp] = nil }
            if let fresh, fresh.state.controllerEpoch > epoch { return [] }   // a newer controller owns it
            if reassigning[tp] != nil, let l = fresh?.state.leader, liveBrokers[l] != nil { return reassignmentConflict(tp) }
            return electLeaders(for: [tp], reason: .offline)
        case let .reassignPartitions(listed):
            guard isActive else { return [] }
            return startReassignments(listed)
        case let .reassignedPartitionStateChanged(tp, fresh):
            guard isActive else { return [] }
            return reassignedPartitionStateChanged(tp, fresh)
        case let .reassignmentRemoved(tp):
            if reassigning[tp]?.completing ?? false { reassigning[tp] = nil }
            return []
        }
    }

    // MARK: - Transitions

    private enum Reason { case newPartition, offline }

    private func replicas(_ tp: TopicPartition) -> [Int32] { assignments[tp.topic]?[tp.partition] ?? [] }

    private var allPartitions: [TopicPartition] {
        assignments.flatMap { t, parts in parts.keys.map { TopicPartition(t, $0) } }.sorted()
    }

    private mutating func failover() -> [ControllerAction] {
        var actions: [ControllerAction] = []
        // Partitions without a state node, or whose leader is not alive, get a leader.
        let needLeader = allPartitions.filter { tp in
            guard let l = leadership[tp] else { return true }
            return liveBrokers[l.state.leader] == nil
        }
        actions += electLeaders(for: needLeader, reason: .offline)
        // Every live replica learns the current leadership of the partitions that have one.
        let electing = Set(needLeader)
        let rest = allPartitions.filter { !electing.contains($0) }
        actions += leaderAndIsrActions(for: rest)
        actions += updateMetadataAll()
        return actions
    }

    private mutating func brokersChanged(new: Set<Int32>, dead: Set<Int32>) -> [ControllerAction] {
        var actions: [ControllerAction] = []
        if !new.isEmpty { actions += updateMetadataAll(to: Array(new)) }
        // Partitions led by dead brokers, and partitions still without a leader, get a new leader.
        let needLeader = allPartitions.filter { tp in
            guard let l = leadership[tp] else { return true }
            return l.state.leader < 0 || dead.contains(l.state.leader) || liveBrokers[l.state.leader] == nil
        }
        actions += electLeaders(for: needLeader, reason: .offline)
        // As 0.8.2 sends each step's batch with its UpdateMetadata: every broker serves the
        // new leaders before the (longer) ISR step is written.
        if !needLeader.isEmpty { actions += updateMetadataAll() }
        let electing = Set(needLeader)
        let shrinks = shrinkIsrs(without: dead, except: electing)
        actions += shrinks
        // New brokers hear about the partitions they replicate.
        if !new.isEmpty {
            let theirs = allPartitions.filter { tp in !electing.contains(tp) && replicas(tp).contains(where: new.contains) }
            actions += leaderAndIsrActions(for: theirs, only: new)
        }
        if !shrinks.isEmpty || (needLeader.isEmpty && !dead.isEmpty) { actions += updateMetadataAll() }
        return actions
    }

    /// Dead followers leave the ISR (replica -> Offline): every state write first, then one
    /// LeaderAndIsr per live broker for all the partitions that changed (not one per partition:
    /// a broker following thousands of partitions dies in one event).
    private mutating func shrinkIsrs(without dead: Set<Int32>, except electing: Set<TopicPartition>) -> [ControllerAction] {
        guard !dead.isEmpty else { return [] }
        var actions: [ControllerAction] = []
        var changed: [TopicPartition] = []
        for tp in allPartitions where !electing.contains(tp) {
            guard let cur = leadership[tp] else { continue }
            let shrunk = cur.state.isr.filter { !dead.contains($0) }
            guard shrunk != cur.state.isr, !shrunk.isEmpty else { continue }
            var s = cur.state
            s.isr = shrunk
            s.leaderEpoch += 1
            s.controllerEpoch = epoch
            actions.append(.updateState(tp, s, expectedVersion: cur.zkVersion))
            leadership[tp] = VersionedLeaderIsr(state: s, zkVersion: cur.zkVersion + 1)
            changed.append(tp)
        }
        return actions + leaderAndIsrActions(for: changed)
    }

    /// New→Online (create the state node) or Offline→Online (offline leader selector).
    private mutating func electLeaders(for partitions: [TopicPartition], reason: Reason) -> [ControllerAction] {
        var actions: [ControllerAction] = []
        var changed: [TopicPartition] = []
        for tp in partitions {
            let ar = replicas(tp)
            let liveAR = ar.filter { liveBrokers[$0] != nil && !shuttingDown.contains($0) }
            if let cur = leadership[tp] {
                let liveIsr = cur.state.isr.filter { liveBrokers[$0] != nil && !shuttingDown.contains($0) }
                var s = cur.state
                if let leader = liveAR.first(where: liveIsr.contains) {
                    s.leader = leader
                    s.isr = liveIsr
                } else if uncleanAllowed(tp.topic), let leader = liveAR.first {
                    s.leader = leader
                    s.isr = [leader]
                } else {
                    // No replica can lead: the partition stays offline; keep the last ISR member.
                    guard s.leader != -1 else { continue }
                    s.leader = -1
                    if !cur.state.isr.isEmpty { s.isr = [cur.state.isr.last!] }
                }
                s.leaderEpoch += 1
                s.controllerEpoch = epoch
                actions.append(.updateState(tp, s, expectedVersion: cur.zkVersion))
                leadership[tp] = VersionedLeaderIsr(state: s, zkVersion: cur.zkVersion + 1)
            } else {
                guard let leader = liveAR.first else { continue }   // stays New until a replica is alive
                let s = LeaderIsrState(leader: leader, leaderEpoch: 0, isr: liveAR, controllerEpoch: epoch)
                actions.append(.createState(tp, s))
                leadership[tp] = VersionedLeaderIsr(state: s, zkVersion: 0)
            }
            changed.append(tp)
        }
        actions += leaderAndIsrActions(for: changed)
        if !changed.isEmpty, reason == .newPartition { actions += updateMetadataAll() }
        return actions
    }

    /// Partitions still led by `id` that could not be moved (replication factor 1, or no other
    /// ISR member): what the ControlledShutdown response lists.
    public func partitionsLed(by id: Int32) -> [TopicPartition] {
        allPartitions.filter { leadership[$0]?.state.leader == id && replicas($0).count > 1 }
    }

    /// Controlled shutdown (0.8.2 `KafkaController.shutdownBroker`): for every replicated
    /// partition on the broker, move leadership to another ISR member (controlled-shutdown
    /// selector), or take the broker out of the ISR where it only follows.
    private mutating func controlledShutdown(_ id: Int32) -> [ControllerAction] {
        var actions: [ControllerAction] = []
        var changed: [TopicPartition] = []
        for tp in allPartitions where replicas(tp).count > 1 && replicas(tp).contains(id) {
            guard let cur = leadership[tp] else { continue }
            var s = cur.state
            if s.leader == id {
                guard let newLeader = s.isr.first(where: { $0 != id && liveBrokers[$0] != nil && !shuttingDown.contains($0) }) else { continue }
                s.leader = newLeader
                s.isr = s.isr.filter { !shuttingDown.contains($0) }
            } else if s.isr.contains(id) && s.isr.count > 1 {
                s.isr = s.isr.filter { $0 != id }
            } else {
                continue
            }
            s.leaderEpoch += 1
            s.controllerEpoch = epoch
            actions.append(.updateState(tp, s, expectedVersion: cur.zkVersion))
            leadership[tp] = VersionedLeaderIsr(state: s, zkVersion: cur.zkVersion + 1)
            changed.append(tp)
        }
        actions += leaderAndIsrActions(for: changed)
        if !changed.isEmpty { actions += updateMetadataAll() }
        return actions
    }

    /// Preferred replica selector: the head of the assigned replicas leads again when it is
    /// live and in the ISR; the ISR is unchanged.
    private mutating func preferredElection(_ partitions: [TopicPartition]) -> [ControllerAction] {
        var actions: [ControllerAction] = []
        var changed: [TopicPartition] = []
        for tp in partitions.sorted() {
            guard let preferred = replicas(tp).first, let cur = leadership[tp], cur.state.leader != preferred,
                  liveBrokers[preferred] != nil, !shuttingDown.contains(preferred), cur.state.isr.contains(preferred) else { continue }
            var s = cur.state
            s.leader = preferred
            s.leaderEpoch += 1
            s.controllerEpoch = epoch
            actions.append(.updateState(tp, s, expectedVersion: cur.zkVersion))
            leadership[tp] = VersionedLeaderIsr(state: s, zkVersion: cur.zkVersion + 1)
            changed.append(tp)
        }
        actions += leaderAndIsrActions(for: changed)
        if !changed.isEmpty { actions += updateMetadataAll() }
        return actions
    }

    /// Partitions whose leader is not their preferred replica, for brokers whose share of such
    /// partitions exceeds `percentage` (auto.leader.rebalance.enable).
    public func imbalancedPartitions(percentage: Int) -> [TopicPartition] {
        var byPreferred: [Int32: [TopicPartition]] = [:]
        for tp in allPartitions { if let p = replicas(tp).first { byPreferred[p, default: []].append(tp) } }
        var out: [TopicPartition] = []
        for (b, tps) in byPreferred where liveBrokers[b] != nil {
            let off = tps.filter { leadership[$0]?.state.leader != b }
            if !tps.isEmpty, off.count * 100 > percentage * tps.count { out += off }
        }
        return out.sorted()
    }

    /// Topic deletion: brokers drop the partitions from their metadata (leader -2), live
    /// replicas stop and delete their logs, then the topic's znodes go. (Replicas on dead
    /// brokers keep their files; 0.8.2 waits for them, this controller does not yet.)
    private mutating func deleteTopics(_ topics: [String]) -> [ControllerAction] {
        var actions: [ControllerAction] = []
        for topic in topics.sorted() {
            guard let parts = assignments[topic] else {
                actions.append(.deleteTopicNodes(topic))
                continue
            }
            let tps = parts.keys.sorted().map { TopicPartition(topic, $0) }
            let gone = tps.map { tp in
                PartitionStateInfo(topic: tp.topic, partition: tp.partition, controllerEpoch: epoch, leader: -2,
                                   leaderEpoch: leadership[tp]?.state.leaderEpoch ?? 0, isr: [], zkVersion: leadership[tp]?.zkVersion ?? 0,
                                   replicas: replicas(tp))
            }
            let targets = liveBrokers.keys.sorted()
            if !targets.isEmpty {
                actions.append(.sendUpdateMetadata(brokers: targets, states: gone, liveBrokers: liveBrokers.values.sorted { $0.id < $1.id }))
            }
            var perBroker: [Int32: [TopicPartition]] = [:]
            for tp in tps { for b in replicas(tp) where liveBrokers[b] != nil { perBroker[b, default: []].append(tp) } }
            for b in perBroker.keys.sorted() { actions.append(.sendStopReplica(broker: b, partitions: perBroker[b]!, delete: true)) }
            actions.append(.deleteTopicNodes(topic))
            assignments[topic] = nil
            for tp in tps { leadership[tp] = nil }
        }
        return actions
    }

    // MARK: - Partition reassignment (0.8.2 KafkaController.onPartitionReassignment)

    /// Whether `path` is the state node of a partition being reassigned (its watch fired).
    public func reassignedPartition(statePath path: String) -> TopicPartition? {
        reassigning.keys.first { ZkPaths.partitionState($0) == path }
    }

    /// `initiateReassignReplicasForTopicPartition` for every listed partition not being moved
    /// yet: refused (and removed from the admin node) when the partition does not exist, already
    /// has exactly these replicas, or a new replica is not alive; otherwise its state is watched
    /// and the first step runs.
    private mutating func startReassignments(_ listed: [TopicPartition: [Int32]]) -> [ControllerAction] {
        var actions: [ControllerAction] = []
        for tp in listed.keys.sorted() where reassigning[tp] == nil {
            let rar = listed[tp]!
            guard let oar = assignments[tp.topic]?[tp.partition] else {
                actions.append(.removeReassignment(tp, error: "Attempt to reassign partition \(tp) that doesn't exist"))
                continue
            }
            if rar.isEmpty {
                actions.append(.removeReassignment(tp, error: "List of reassigned replicas for partition \(tp) is empty"))
                continue
            }
            if oar == rar {
                actions.append(.removeReassignment(tp, error: "Partition \(tp) to be reassigned is already assigned to replicas \(Self.ids(rar)). Ignoring request for partition reassignment"))
                continue
            }
            let alive = rar.filter { liveBrokers[$0] != nil }
            if alive != rar {
                actions.append(.removeReassignment(tp, error: "Only \(Self.ids(alive)) replicas out of the new set of replicas \(Self.ids(rar)) for partition \(tp) to be reassigned are alive. Failing partition reassignment"))
                continue
            }
            reassigning[tp] = ReassignmentContext(newReplicas: rar, expanded: rar + oar.filter { !rar.contains($0) })
            actions += reassignmentStep(tp)
            // After the step's own state write, so the executor compares the node with what
            // was just written and feeds back only a change made by the leader meanwhile.
            if reassigning[tp]?.completing == false { actions.append(.watchReassignedPartition(tp)) }
        }
        return actions
    }

    private static func ids(_ xs: [Int32]) -> String { xs.map(String.init).joined(separator: ",") }

    /// One step of `onPartitionReassignment`: when every new replica is in the ISR, finish;
    /// otherwise make sure the assignment holds old + new replicas (OAR+RAR, written to
    /// ZooKeeper) and send LeaderAndIsr with it (leader epoch bumped) to every live replica, so
    /// the new ones start fetching and the leader may add them to the ISR.
    private mutating func reassignmentStep(_ tp: TopicPartition) -> [ControllerAction] {
        guard let ctx = reassigning[tp], let cur = leadership[tp] else { return [] }
        if ctx.newReplicas.allSatisfy(cur.state.isr.contains) { return completeReassignment(tp) }
        var actions: [ControllerAction] = []
        if replicas(tp) != ctx.expanded {
            assignments[tp.topic]?[tp.partition] = ctx.expanded
            actions.append(.writeAssignment(tp, topicAssignment: assignments[tp.topic] ?? [:]))
        }
        guard cur.state.leader >= 0 else { return actions }   // offline: the next election sends the new AR
        var s = cur.state
        s.leaderEpoch += 1
        s.controllerEpoch = epoch
        actions.append(.updateState(tp, s, expectedVersion: cur.zkVersion))
        leadership[tp] = VersionedLeaderIsr(state: s, zkVersion: cur.zkVersion + 1)
        actions += leaderAndIsrActions(for: [tp])
        return actions
    }

    /// Every new replica is in the ISR: AR becomes RAR; a leader outside RAR (or dead) hands
    /// over to the first live RAR member in the ISR (reassigned-partition leader selector);
    /// the old replicas leave the ISR (one conditional state write for both), the new replica
    /// set hears the decision, the old replicas stop and delete their logs, the assignment is
    /// written, the partition leaves `/admin/reassign_partitions`, and every broker gets
    /// the partition's new metadata.
    private mutating func completeReassignment(_ tp: TopicPartition) -> [ControllerAction] {
        guard var ctx = reassigning[tp], let cur = leadership[tp] else { return [] }
        let rar = ctx.newReplicas
        let old = replicas(tp).filter { !rar.contains($0) }
        var s = cur.state
        if !rar.contains(s.leader) || liveBrokers[s.leader] == nil || shuttingDown.contains(s.leader) {
            guard let leader = rar.first(where: { liveBrokers[$0] != nil && !shuttingDown.contains($0) && s.isr.contains($0) }) else {
                return []   // none of the new replicas can lead yet: wait for the next ISR change
            }
            s.leader = leader
        }
        s.isr = s.isr.filter { !old.contains($0) }
        s.leaderEpoch += 1
        s.controllerEpoch = epoch
        ctx.completing = true
        reassigning[tp] = ctx
        assignments[tp.topic]?[tp.partition] = rar
        var actions: [ControllerAction] = [.updateState(tp, s, expectedVersion: cur.zkVersion)]
        leadership[tp] = VersionedLeaderIsr(state: s, zkVersion: cur.zkVersion + 1)
        actions += leaderAndIsrActions(for: [tp])
        for b in old where liveBrokers[b] != nil { actions.append(.sendStopReplica(broker: b, partitions: [tp], delete: true)) }
        actions.append(.writeAssignment(tp, topicAssignment: assignments[tp.topic] ?? [:]))
        actions.append(.removeReassignment(tp, error: nil))
        if let info = stateInfo(tp), !liveBrokers.isEmpty {
            actions.append(.sendUpdateMetadata(brokers: liveBrokers.keys.sorted(), states: [info],
                                               liveBrokers: liveBrokers.values.sorted { $0.id < $1.id }))
        }
        return actions
    }

    /// The partition's state node changed while it is being reassigned.
    private mutating func reassignedPartitionStateChanged(_ tp: TopicPartition, _ fresh: VersionedLeaderIsr?) -> [ControllerAction] {
        guard let ctx = reassigning[tp], !ctx.completing else { return [] }
        guard let fresh else {
            if assignments[tp.topic]?[tp.partition] == nil {   // the topic was deleted meanwhile
                reassigning[tp] = nil
                return [.removeReassignment(tp, error: "Partition \(tp) being reassigned no longer exists")]
            }
            return []
        }
        leadership[tp] = fresh
        guard ctx.newReplicas.allSatisfy(fresh.state.isr.contains) else { return [] }
        return completeReassignment(tp)
    }

    /// A state write of a partition being reassigned lost a race (the leader changed the ISR
    /// meanwhile): back to the assignment with old and new replicas, and the step again from
    /// the fresh state.
    private mutating func reassignmentConflict(_ tp: TopicPartition) -> [ControllerAction] {
        guard var ctx = reassigning[tp] else { return [] }
        if ctx.completing {
            ctx.completing = false
            reassigning[tp] = ctx
            assignments[tp.topic]?[tp.partition] = ctx.expanded
        }
        return reassignmentStep(tp)
    }

    private func stateInfo(_ tp: TopicPartition) -> PartitionStateInfo? {
        guard let l = leadership[tp] else { return nil }
        return PartitionStateInfo(topic: tp.topic, partition: tp.partition, controllerEpoch: l.state.controllerEpoch,
                                  leader: l.state.leader, leaderEpoch: l.state.leaderEpoch, isr: l.state.isr,
                                  zkVersion: l.zkVersion, replicas: replicas(tp))
    }

    /// One LeaderAndIsr per live broker holding a replica of the partitions.
    private func leaderAndIsrActions(for partitions: [TopicPartition], only: Set<Int32>? = nil) -> [ControllerAction] {
        var perBroker: [Int32: [PartitionStateInfo]] = [:]
        for tp in partitions {
            guard let info = stateInfo(tp), info.leader >= 0 else { continue }
            for b in info.replicas where liveBrokers[b] != nil && (only?.contains(b) ?? true) {
                perBroker[b, default: []].append(info)
            }
        }
        return perBroker.keys.sorted().map { b in
            let states = perBroker[b]!
            let leaderIds = Set(states.map(\.leader))
            let leaders = leaderIds.sorted().compactMap { liveBrokers[$0] }
            return .sendLeaderAndIsr(broker: b, states: states, leaders: leaders)
        }
    }

    private func updateMetadataAll(to brokers: [Int32]? = nil) -> [ControllerAction] {
        let states = allPartitions.compactMap(stateInfo)
        let targets = (brokers ?? Array(liveBrokers.keys)).sorted()
        guard !targets.isEmpty else { return [] }
        return [.sendUpdateMetadata(brokers: targets, states: states, liveBrokers: liveBrokers.values.sorted { $0.id < $1.id })]
    }
}

// MARK: - Failures

/// Where the controller was when a ZooKeeper operation failed for good (after `ZkRetryPolicy`).
public enum ControllerPhase: Sendable, Equatable {
    /// Taking over: `/controller` won, epoch bump, loading the cluster, first decisions.
    case failover
    /// Handling one event (watch, controlled shutdown, imbalance check) as the active controller.
    case event
}

/// What the controller does after a failure: a pure decision, table-tested.
public enum ControllerRecovery: Sendable, Equatable {
    /// The broker is shutting down (client closed, task cancelled): stop, do nothing more.
    case stop
    /// The session ended: resign now; the broker elects again when the new session is up
    /// (0.8.2 `SessionExpirationListener.handleNewSession`).
    case resignAndAwaitNewSession
    /// Another controller took over (`ControllerMovedException`), or the failover could not
    /// complete: resign, give up `/controller` if this session holds it, and run the election
    /// again after `backoffMs` (0.8.2 resigns when `onControllerFailover` throws).
    case resignAndReelect(backoffMs: Int)
    /// The event's data was bad (not a ZooKeeper failure): log it, keep the controller and its
    /// watches, go on with the next event.
    case logAndContinue
}

public enum ControllerFaultPolicy {
    public static func decide(_ error: Error, phase: ControllerPhase, attempt: Int = 0) -> ControllerRecovery {
        if error is CancellationError { return .stop }
        if error is ControllerMovedError { return .resignAndReelect(backoffMs: ZkRetryPolicy.backoffMs(attempt: attempt)) }
        if let zkError = error as? ZooKeeperError {
            switch zkError {
            case .closed: return .stop
            // A connection loss only gets here when it outlived the session (the retry gave up).
            case .sessionExpired, .connectionLoss, .operationTimeout, .connectTimeout: return .resignAndAwaitNewSession
            default: break
            }
        }
        // Anything else (bad data, an unexpected ZooKeeper answer): a half-done failover must not
        // leave a controller that holds `/controller` but ignores every event, so it starts over;
        // a failed event leaves the controller as it was, its watches already set again.
        switch phase {
        case .failover: return .resignAndReelect(backoffMs: ZkRetryPolicy.backoffMs(attempt: attempt))
        case .event: return .logAndContinue
        }
    }
}
