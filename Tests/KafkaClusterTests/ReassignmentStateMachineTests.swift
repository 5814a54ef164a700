import KafkaCluster
import KafkaProtocol
import XCTest

/// Partition reassignment in the controller state machine (0.8.2 `onPartitionReassignment`):
/// events in, actions out.
final class ReassignmentStateMachineTests: XCTestCase {
    let b0 = BrokerEndpoint(id: 0, host: "h0", port: 9092)
    let b1 = BrokerEndpoint(id: 1, host: "h1", port: 9093)
    let b2 = BrokerEndpoint(id: 2, host: "h2", port: 9094)
    let tp = TopicPartition("t", 0)
    let other = TopicPartition("t", 1)

    func state(_ leader: Int32, _ epoch: Int32, _ isr: [Int32], ce: Int32 = 1, v: Int32 = 0) -> VersionedLeaderIsr {
        VersionedLeaderIsr(state: LeaderIsrState(leader: leader, leaderEpoch: epoch, isr: isr, controllerEpoch: ce), zkVersion: v)
    }

    /// A controller (epoch 5) over brokers 0-2 with t-0 on {0,1} led by 0 and t-1 on {1,0}.
    func machine(live: [BrokerEndpoint]? = nil, assignment: [Int32] = [0, 1], leader: Int32 = 0, isr: [Int32] = [0, 1]) -> ControllerStateMachine {
        var m = ControllerStateMachine(brokerId: 0)
        _ = m.handle(.elected(epoch: 5, liveBrokers: live ?? [b0, b1, b2], assignments: ["t": [0: assignment, 1: [1, 0]]],
                              states: [tp: state(leader, 3, isr, v: 4), other: state(1, 1, [1, 0])]))
        return m
    }

    func leaderAndIsrTargets(_ actions: [ControllerAction]) -> [Int32: [Int32]] {
        var out: [Int32: [Int32]] = [:]
        for a in actions { if case let .sendLeaderAndIsr(b, states, _) = a, let s = states.first(where: { $0.topicPartition == tp }) { out[b] = s.replicas } }
        return out
    }

    /// Table: requests the controller refuses; each is removed from the admin node with 0.8.2's reason.
    func testRefusedReassignmentsTable() {
        let rows: [(name: String, listed: [TopicPartition: [Int32]], live: [BrokerEndpoint], error: String)] = [
            ("partition does not exist", [TopicPartition("t", 7): [1, 2]], [b0, b1, b2], "Attempt to reassign partition [t,7] that doesn't exist"),
            ("topic does not exist", [TopicPartition("nope", 0): [1]], [b0, b1, b2], "Attempt to reassign partition [nope,0] that doesn't exist"),
            ("same replicas", [tp: [0, 1]], [b0, b1, b2], "Partition [t,0] to be reassigned is already assigned to replicas 0,1. Ignoring request for partition reassignment"),
            ("new replica dead", [tp: [1, 2]], [b0, b1], "Only 1 replicas out of the new set of replicas 1,2 for partition [t,0] to be reassigned are alive. Failing partition reassignment"),
            ("empty replica list", [tp: []], [b0, b1, b2], "List of reassigned replicas for partition [t,0] is empty"),
        ]
        for row in rows {
            var m = machine(live: row.live)
            let actions = m.handle(.reassignPartitions(row.listed))
            XCTAssertEqual(actions, [.removeReassignment(row.listed.keys.first!, error: row.error)], row.name)
            XCTAssertTrue(m.reassigning.isEmpty, row.name)
            XCTAssertEqual(m.assignments["t"]?[0], [0, 1], row.name)
        }
    }

    /// New replicas not yet in the ISR: AR = RAR + the old replicas not in RAR, written to
    /// ZooKeeper, leader epoch bumped, LeaderAndIsr with that AR to every live replica, watch.
    func testStartAddsNewReplicasAndWaits() {
        var m = machine()
        let actions = m.handle(.reassignPartitions([tp: [1, 2]]))
        XCTAssertEqual(actions.first, .writeAssignment(tp, topicAssignment: [0: [1, 2, 0], 1: [1, 0]]))
        XCTAssertEqual(actions[1], .updateState(tp, LeaderIsrState(leader: 0, leaderEpoch: 4, isr: [0, 1], controllerEpoch: 5), expectedVersion: 4))
        XCTAssertEqual(leaderAndIsrTargets(actions), [0: [1, 2, 0], 1: [1, 2, 0], 2: [1, 2, 0]])
        XCTAssertEqual(actions.last, .watchReassignedPartition(tp))
        XCTAssertEqual(m.reassigning[tp], ReassignmentContext(newReplicas: [1, 2], expanded: [1, 2, 0]))
        // Listed again (the admin node changed for another partition): no second start.
        XCTAssertEqual(m.handle(.reassignPartitions([tp: [1, 2]])), [])
        // The ISR grows but 2 is not in it yet: keep waiting.
        XCTAssertEqual(m.handle(.reassignedPartitionStateChanged(tp, state(0, 4, [0, 1], ce: 5, v: 5))), [])
    }

    /// Table: once every new replica is in the ISR the partition switches over.
    func testCompletionTable() {
        struct Row {
            var name: String
            var assignment: [Int32]
            var leader: Int32
            var rar: [Int32]
            var isrAfterCatchUp: [Int32]
            var live: [BrokerEndpoint]
            var expected: LeaderIsrState
            var stopped: [Int32]
        }
        let rows = [
            Row(name: "{0,1} -> {1,2}, leader 0 leaves: 1 (first of RAR in ISR) leads", assignment: [0, 1], leader: 0, rar: [1, 2],
                isrAfterCatchUp: [0, 1, 2], live: [b0, b1, b2],
                expected: LeaderIsrState(leader: 1, leaderEpoch: 5, isr: [1, 2], controllerEpoch: 5), stopped: [0]),
            Row(name: "{0,1} -> {2}: full move, 2 leads alone", assignment: [0, 1], leader: 0, rar: [2],
                isrAfterCatchUp: [0, 1, 2], live: [b0, b1, b2],
                expected: LeaderIsrState(leader: 2, leaderEpoch: 5, isr: [2], controllerEpoch: 5), stopped: [0, 1]),
            Row(name: "{0,1} -> {0,2}: leader 0 stays", assignment: [0, 1], leader: 0, rar: [0, 2],
                isrAfterCatchUp: [0, 2, 1], live: [b0, b1, b2],
                expected: LeaderIsrState(leader: 0, leaderEpoch: 5, isr: [0, 2], controllerEpoch: 5), stopped: [1]),
            Row(name: "{0,1} -> {2,1}: leader 0 leaves, 2 is first of RAR", assignment: [0, 1], leader: 0, rar: [2, 1],
                isrAfterCatchUp: [0, 1, 2], live: [b0, b1, b2],
                expected: LeaderIsrState(leader: 2, leaderEpoch: 5, isr: [1, 2], controllerEpoch: 5), stopped: [0]),
        ]
        for row in rows {
            var m = machine(live: row.live, assignment: row.assignment, leader: row.leader)
            _ = m.handle(.reassignPartitions([tp: row.rar]))
            let caughtUp = state(row.leader, 4, row.isrAfterCatchUp, ce: 5, v: 6)
            let actions = m.handle(.reassignedPartitionStateChanged(tp, caughtUp))
            XCTAssertEqual(actions.first, .updateState(tp, row.expected, expectedVersion: 6), row.name)
            XCTAssertEqual(leaderAndIsrTargets(actions), Dictionary(uniqueKeysWithValues: row.rar.map { ($0, row.rar) }), "\(row.name): only the new replicas, with AR = RAR")
            let stops = actions.compactMap { a -> Int32? in if case let .sendStopReplica(b, parts, delete) = a, parts == [tp], delete { return b } else { return nil } }
            XCTAssertEqual(stops, row.stopped, "\(row.name): old replicas stop and delete their logs")
            XCTAssertTrue(actions.contains(.writeAssignment(tp, topicAssignment: [0: row.rar, 1: [1, 0]])), row.name)
            XCTAssertTrue(actions.contains(.removeReassignment(tp, error: nil)), row.name)
            guard case let .sendUpdateMetadata(brokers, states, _)? = actions.last else { return XCTFail("\(row.name): \(actions)") }
            XCTAssertEqual(brokers, [0, 1, 2], row.name)
            XCTAssertEqual(states.map(\.replicas), [row.rar], row.name)
            // Order: state write first, then requests, then the assignment, then the admin node.
            let order = actions.map { a -> String in
                switch a {
                case .updateState: return "state"
                case .sendLeaderAndIsr: return "lai"
                case .sendStopReplica: return "stop"
                case .writeAssignment: return "assign"
                case .removeReassignment: return "remove"
                case .sendUpdateMetadata: return "meta"
                default: return "other"
                }
            }
            XCTAssertEqual(order.filter { $0 != "lai" && $0 != "stop" }, ["state", "assign", "remove", "meta"], row.name)
            XCTAssertEqual(m.assignments["t"]?[0], row.rar, row.name)
            XCTAssertEqual(m.leadership[tp]?.state, row.expected, row.name)
            XCTAssertEqual(m.reassigning[tp]?.completing, true, row.name)
            _ = m.handle(.reassignmentRemoved(tp))
            XCTAssertNil(m.reassigning[tp], row.name)
        }
    }

    /// New replicas already in the ISR (e.g. a shrink {0,1,2} -> {0,1}): done in one go.
    func testReplicasAlreadyInIsrFinishAtOnce() {
        var m = machine(assignment: [0, 1, 2], isr: [0, 1, 2])
        let actions = m.handle(.reassignPartitions([tp: [0, 1]]))
        XCTAssertEqual(actions.first, .updateState(tp, LeaderIsrState(leader: 0, leaderEpoch: 4, isr: [0, 1], controllerEpoch: 5), expectedVersion: 4))
        XCTAssertTrue(actions.contains(.sendStopReplica(broker: 2, partitions: [tp], delete: true)))
        XCTAssertFalse(actions.contains(.watchReassignedPartition(tp)))
        XCTAssertTrue(actions.contains(.removeReassignment(tp, error: nil)))
    }

    /// The completing state write loses a race with the leader's own ISR write: the assignment
    /// goes back to old + new replicas and the step runs again from the fresh state.
    func testConflictWhileCompletingRetriesFromFreshState() {
        var m = machine()
        _ = m.handle(.reassignPartitions([tp: [1, 2]]))
        _ = m.handle(.reassignedPartitionStateChanged(tp, state(0, 4, [0, 1, 2], ce: 5, v: 6)))
        XCTAssertEqual(m.assignments["t"]?[0], [1, 2])
        // Meanwhile the leader shrank the ISR (2 fell behind): wait again, with AR = OAR + RAR.
        let actions = m.handle(.stateConflict(tp, state(0, 4, [0, 1], ce: 5, v: 7)))
        XCTAssertEqual(m.assignments["t"]?[0], [1, 2, 0])
        XCTAssertEqual(m.reassigning[tp]?.completing, false)
        XCTAssertEqual(actions.first, .updateState(tp, LeaderIsrState(leader: 0, leaderEpoch: 5, isr: [0, 1], controllerEpoch: 5), expectedVersion: 7))
        XCTAssertFalse(actions.contains { if case .removeReassignment = $0 { return true } else { return false } })
        XCTAssertEqual(leaderAndIsrTargets(actions), [0: [1, 2, 0], 1: [1, 2, 0], 2: [1, 2, 0]])
        // A later catch-up finishes it.
        let done = m.handle(.reassignedPartitionStateChanged(tp, state(0, 5, [0, 1, 2], ce: 5, v: 9)))
        XCTAssertTrue(done.contains(.removeReassignment(tp, error: nil)))
    }

    /// Controller failover in the middle: AR already holds old + new replicas and the admin
    /// node still lists the partition; the new controller carries on without rewriting the
    /// assignment, and finishes when the new replicas are in the ISR.
    func testFailoverResumesInProgressReassignment() {
        var m = ControllerStateMachine(brokerId: 1)
        _ = m.handle(.elected(epoch: 6, liveBrokers: [b1, b2], assignments: ["t": [0: [1, 2, 0]]], states: [tp: state(1, 7, [1, 2], ce: 5, v: 11)]))
        let actions = m.handle(.reassignPartitions([tp: [1, 2]]))
        XCTAssertFalse(actions.contains { if case .writeAssignment(_, let a) = $0 { return a[0] == [1, 2, 0] } else { return false } })
        XCTAssertEqual(actions.first, .updateState(tp, LeaderIsrState(leader: 1, leaderEpoch: 8, isr: [1, 2], controllerEpoch: 6), expectedVersion: 11))
        XCTAssertTrue(actions.contains(.writeAssignment(tp, topicAssignment: [0: [1, 2]])))
        XCTAssertTrue(actions.contains(.removeReassignment(tp, error: nil)))
        XCTAssertFalse(actions.contains { if case let .sendStopReplica(b, _, _) = $0 { return b == 0 } else { return false } }, "dead old replica gets nothing")
        // A new controller forgets every reassignment until it reads the admin node again.
        _ = m.handle(.resigned)
        XCTAssertTrue(m.reassigning.isEmpty)
    }

    /// No new replica in the ISR can lead (the caught-up one died): wait, change nothing.
    func testCompletionWaitsWhenNoNewReplicaCanLead() {
        var m = machine()
        _ = m.handle(.reassignPartitions([tp: [2]]))
        _ = m.handle(.brokersChanged([b0, b1]))
        XCTAssertEqual(m.handle(.reassignedPartitionStateChanged(tp, state(0, 4, [0, 1, 2], ce: 5, v: 9))), [])
        XCTAssertEqual(m.assignments["t"]?[0], [2, 0, 1])
        XCTAssertEqual(m.reassigning[tp]?.completing, false)
    }

    func testStatePathLookupAndInactiveController() {
        var m = machine()
        _ = m.handle(.reassignPartitions([tp: [1, 2]]))
        XCTAssertEqual(m.reassignedPartition(statePath: "/brokers/topics/t/partitions/0/state"), tp)
        XCTAssertNil(m.reassignedPartition(statePath: "/brokers/topics/t/partitions/1/state"))
        var idle = ControllerStateMachine(brokerId: 0)
        XCTAssertEqual(idle.handle(.reassignPartitions([tp: [1]])), [])
        XCTAssertEqual(idle.handle(.reassignedPartitionStateChanged(tp, nil)), [])
    }
}
