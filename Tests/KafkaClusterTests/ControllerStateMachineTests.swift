import KafkaCluster
import KafkaProtocol
import XCTest
import ZooKeeper

/// The controller as a value type: events in, actions out, no ZooKeeper or sockets.
final class ControllerStateMachineTests: XCTestCase {
    let b0 = BrokerEndpoint(id: 0, host: "h0", port: 9092)
    let b1 = BrokerEndpoint(id: 1, host: "h1", port: 9093)
    let b2 = BrokerEndpoint(id: 2, host: "h2", port: 9094)
    let tp = TopicPartition("t", 0)

    func state(_ leader: Int32, _ epoch: Int32, _ isr: [Int32], ce: Int32 = 1, v: Int32 = 0) -> VersionedLeaderIsr {
        VersionedLeaderIsr(state: LeaderIsrState(leader: leader, leaderEpoch: epoch, isr: isr, controllerEpoch: ce), zkVersion: v)
    }

    func testSingleBrokerElectedCreatesStateAndLeadsNewPartition() {
        var m = ControllerStateMachine(brokerId: 0)
        let actions = m.handle(.elected(epoch: 1, liveBrokers: [b0], assignments: ["t": [0: [0]]], states: [:]))
        XCTAssertEqual(actions.first, .createState(tp, LeaderIsrState(leader: 0, leaderEpoch: 0, isr: [0], controllerEpoch: 1)))
        guard case let .sendLeaderAndIsr(broker, states, leaders) = actions[1] else { return XCTFail("\(actions)") }
        XCTAssertEqual(broker, 0)
        XCTAssertEqual(states.map(\.leader), [0])
        XCTAssertEqual(states[0].zkVersion, 0)
        XCTAssertEqual(leaders, [b0])
        XCTAssertTrue(actions.contains { if case .sendUpdateMetadata = $0 { return true } else { return false } })
    }

    /// Table: (initial state, live brokers after a change, unclean election) → expected new state.
    func testLeaderFailoverTable() {
        struct Row {
            var name: String
            var initial: VersionedLeaderIsr
            var live: [BrokerEndpoint]
            var unclean: Bool
            var expected: LeaderIsrState?
        }
        let rows = [
            Row(name: "leader dies, follower in ISR takes over", initial: state(0, 3, [0, 1, 2]), live: [b1, b2], unclean: false,
                expected: LeaderIsrState(leader: 1, leaderEpoch: 4, isr: [1, 2], controllerEpoch: 5)),
            Row(name: "leader dies, only out-of-sync replica left, unclean on", initial: state(0, 3, [0]), live: [b1, b2], unclean: true,
                expected: LeaderIsrState(leader: 1, leaderEpoch: 4, isr: [1], controllerEpoch: 5)),
            Row(name: "leader dies, only out-of-sync replica left, unclean off: offline, last ISR member kept", initial: state(0, 3, [0]), live: [b1, b2], unclean: false,
                expected: LeaderIsrState(leader: -1, leaderEpoch: 4, isr: [0], controllerEpoch: 5)),
            Row(name: "follower dies: ISR shrinks, leader stays", initial: state(0, 3, [0, 1, 2]), live: [b0, b1], unclean: false,
                expected: LeaderIsrState(leader: 0, leaderEpoch: 4, isr: [0, 1], controllerEpoch: 5)),
            Row(name: "non-replica broker dies: nothing changes", initial: state(0, 3, [0, 1]), live: [b0, b1], unclean: false, expected: nil),
        ]
        for row in rows {
            var m = ControllerStateMachine(brokerId: 0, uncleanLeaderElection: row.unclean)
            let assign: [String: [Int32: [Int32]]] = ["t": [0: row.name.hasPrefix("non-replica") ? [0, 1] : [0, 1, 2]]]
            _ = m.handle(.elected(epoch: 5, liveBrokers: [b0, b1, b2], assignments: assign, states: [tp: row.initial]))
            let actions = m.handle(.brokersChanged(row.live))
            let update = actions.compactMap { a -> (LeaderIsrState, Int32)? in
                if case let .updateState(t, s, v) = a, t == tp { return (s, v) }
                return nil
            }.first
            if let expected = row.expected {
                XCTAssertEqual(update?.0, expected, row.name)
                XCTAssertEqual(update?.1, row.initial.zkVersion, "\(row.name): conditional on the version read")
                if expected.leader >= 0 {
                    let sentTo = actions.compactMap { a -> Int32? in if case let .sendLeaderAndIsr(b, _, _) = a { return b } else { return nil } }
                    XCTAssertEqual(Set(sentTo), Set(row.live.map(\.id)), "\(row.name): every live replica hears the decision")
                }
            } else {
                XCTAssertNil(update, row.name)
            }
        }
    }

    /// Table: (broker flag, topic override) → whether a partition whose ISR is dead gets the
    /// out-of-sync live replica as leader. The topic setting wins, as in 0.8.2 (issue 7 item 2).
    func testItem2_TopicLevelUncleanElectionOverridesTheBrokerFlag() {
        let rows: [(broker: Bool, topic: Bool?, expectedLeader: Int32)] = [
            (true, nil, 1), (true, false, -1), (false, true, 1), (false, nil, -1), (false, false, -1), (true, true, 1),
        ]
        for row in rows {
            var m = ControllerStateMachine(brokerId: 0, uncleanLeaderElection: row.broker)
            _ = m.handle(.elected(epoch: 5, liveBrokers: [b0, b1, b2], assignments: ["t": [0: [0, 1, 2]]], states: [tp: state(0, 3, [0])]))
            XCTAssertEqual(ControllerStateMachine.topicsWithoutLiveIsr(m.leadership, live: [1, 2]), ["t"])
            XCTAssertEqual(ControllerStateMachine.topicsWithoutLiveIsr(m.leadership, live: [0, 2]), [])
            m.uncleanLeaderElectionByTopic["t"] = row.topic
            _ = m.handle(.brokersChanged([b1, b2]))
            XCTAssertEqual(m.leadership[tp]?.state.leader, row.expectedLeader, "broker flag \(row.broker), topic \(String(describing: row.topic))")
        }
    }

    /// A broker that died and registered again between two reads of `/brokers/ids` (same id
    /// set, new registration timestamp) is handled as a death and a return: its leaderships move
    /// to live ISR members and it hears the new leadership as a follower.
    func testRestartedBrokerBetweenTwoReadsIsADeathAndAReturn() {
        var m = ControllerStateMachine(brokerId: 1)
        m.brokerRegisteredAt = [0: 100, 1: 100, 2: 100]
        _ = m.handle(.elected(epoch: 5, liveBrokers: [b0, b1, b2], assignments: ["t": [0: [0, 1, 2]]], states: [tp: state(0, 3, [0, 1, 2])]))
        let same = m.handle(.brokersChanged([b0, b1, b2], registeredAt: [0: 100, 1: 100, 2: 100]))
        XCTAssertEqual(same.filter { if case .updateState = $0 { return true } else { return false } }, [], "nothing changed")
        let actions = m.handle(.brokersChanged([b0, b1, b2], registeredAt: [0: 200, 1: 100, 2: 100]))
        XCTAssertTrue(actions.contains(.updateState(tp, LeaderIsrState(leader: 1, leaderEpoch: 4, isr: [1, 2], controllerEpoch: 5), expectedVersion: 0)), "\(actions)")
        let toRestarted = actions.compactMap { a -> [PartitionStateInfo]? in
            if case let .sendLeaderAndIsr(0, states, _) = a { return states } else { return nil }
        }
        XCTAssertEqual(toRestarted.last?.first?.leader, 1, "the restarted broker learns the new leader: \(actions)")
        XCTAssertEqual(m.liveBrokers.keys.sorted(), [0, 1, 2])
    }

    func testDeadBrokerComingBackLeadsOfflinePartitionAgain() {
        var m = ControllerStateMachine(brokerId: 0, uncleanLeaderElection: false)
        _ = m.handle(.elected(epoch: 2, liveBrokers: [b1], assignments: ["t": [0: [0]]], states: [tp: state(0, 1, [0])]))
        XCTAssertEqual(m.leadership[tp]?.state.leader, -1, "its only replica is dead: offline")
        let actions = m.handle(.brokersChanged([b0, b1]))
        XCTAssertTrue(actions.contains(.updateState(tp, LeaderIsrState(leader: 0, leaderEpoch: 3, isr: [0], controllerEpoch: 2), expectedVersion: 1)), "\(actions)")
    }

    func testStateConflictFromNewerControllerStopsWork() {
        var m = ControllerStateMachine(brokerId: 0)
        _ = m.handle(.elected(epoch: 2, liveBrokers: [b0, b1], assignments: ["t": [0: [0, 1]]], states: [tp: state(0, 1, [0, 1])]))
        let actions = m.handle(.stateConflict(tp, state(1, 9, [1], ce: 3, v: 7)))
        XCTAssertEqual(actions, [])
    }

    /// Issue 9: a broker leading a third of 3,000 RF-3 partitions (and following the rest) dies.
    /// The new leaders' state writes come as one run (the executor pipelines it), then one
    /// LeaderAndIsr per surviving broker and an UpdateMetadata (clients find the new leaders
    /// before the ISR step is done); then the shrunk ISRs' writes as one run, again one
    /// LeaderAndIsr per broker and an UpdateMetadata. Never one request per partition.
    func testFailoverOfManyPartitionsSendsOneLeaderAndIsrPerBrokerPerStep() {
        var m = ControllerStateMachine(brokerId: 0)
        var parts: [Int32: [Int32]] = [:]
        var states: [TopicPartition: VersionedLeaderIsr] = [:]
        for p in Int32(0)..<3000 {
            let replicas = (0..<3).map { Int32((Int(p) + $0) % 3) }
            parts[p] = replicas
            states[TopicPartition("t", p)] = state(replicas[0], 0, replicas)
        }
        _ = m.handle(.elected(epoch: 2, liveBrokers: [b0, b1, b2], assignments: ["t": parts], states: states))
        let actions = m.handle(.brokersChanged([b0, b1]))
        // Shape: W^1000 L L U W^2000 L L U, where W is a state write.
        var shape: [String] = []
        for a in actions {
            let c: String
            switch a {
            case .updateState, .createState: c = "W"
            case .sendLeaderAndIsr: c = "L"
            case .sendUpdateMetadata: c = "U"
            default: c = "?"
            }
            if c == "W", let last = shape.last, last.hasPrefix("W") {
                shape[shape.count - 1] = "W\(Int(last.dropFirst())! + 1)"
            } else {
                shape.append(c == "W" ? "W1" : c)
            }
        }
        XCTAssertEqual(shape, ["W1000", "L", "L", "U", "W2000", "L", "L", "U"])
        let leaderAndIsr = actions.compactMap { a -> (Int32, Int)? in
            if case let .sendLeaderAndIsr(b, st, _) = a { return (b, st.count) } else { return nil }
        }
        XCTAssertEqual(leaderAndIsr.map(\.0), [0, 1, 0, 1])
        XCTAssertEqual(leaderAndIsr.map(\.1).reduce(0, +), 2 * 3000, "each partition reaches both live replicas once")
        XCTAssertEqual(m.partitionsLed(by: 2), [])
        XCTAssertTrue(m.leadership.values.allSatisfy { !$0.state.isr.contains(2) })
    }

    /// Many lost races, each decided alone, carried out as one batch: writes first, then one
    /// LeaderAndIsr per broker. Anything else is left as it was.
    func testBatchedLostRacesSendOneLeaderAndIsrPerBroker() {
        var m = ControllerStateMachine(brokerId: 0)
        let tps = (Int32(0)..<50).map { TopicPartition("t", $0) }
        var states: [TopicPartition: VersionedLeaderIsr] = [:]
        for tp in tps { states[tp] = state(2, 1, [2, 0, 1]) }
        _ = m.handle(.elected(epoch: 3, liveBrokers: [b0, b1, b2], assignments: ["t": Dictionary(uniqueKeysWithValues: tps.map { ($0.partition, [2, 0, 1]) })], states: states))
        _ = m.handle(.brokersChanged([b0, b1]))
        var actions: [ControllerAction] = []
        // The leader changed every ISR meanwhile (version 2): each partition is decided again.
        for tp in tps { actions += m.handle(.stateConflict(tp, state(2, 1, [2, 1], v: 2))) }
        let batch = ControllerStateMachine.batched(actions)
        XCTAssertEqual(batch.count, 50 + 2, "\(batch.count) actions")
        XCTAssertTrue(batch.prefix(50).allSatisfy { if case .updateState(_, let s, 2) = $0 { return s.leader == 1 } else { return false } })
        let sends = batch.suffix(2).compactMap { a -> (Int32, Int, [Int32])? in
            if case let .sendLeaderAndIsr(b, st, l) = a { return (b, st.count, l.map(\.id)) } else { return nil }
        }
        XCTAssertEqual(sends.map(\.0), [0, 1])
        XCTAssertEqual(sends.map(\.1), [50, 50])
        XCTAssertEqual(sends.map(\.2), [[1], [1]])
        // Not only writes and LeaderAndIsr: unchanged.
        let mixed: [ControllerAction] = [.createState(tp, LeaderIsrState(leader: 0, leaderEpoch: 0, isr: [0], controllerEpoch: 1)),
                                         .sendStopReplica(broker: 1, partitions: [tp], delete: false)]
        XCTAssertEqual(ControllerStateMachine.batched(mixed), mixed)
        let twice: [ControllerAction] = [.updateState(tp, LeaderIsrState(leader: 0, leaderEpoch: 1, isr: [0], controllerEpoch: 1), expectedVersion: 0),
                                         .updateState(tp, LeaderIsrState(leader: 0, leaderEpoch: 2, isr: [0], controllerEpoch: 1), expectedVersion: 1)]
        XCTAssertEqual(ControllerStateMachine.batched(twice), twice)
    }

    func testNewTopicAssignmentsGetLeadersOnlyForNewPartitions() {
        var m = ControllerStateMachine(brokerId: 0)
        _ = m.handle(.elected(epoch: 1, liveBrokers: [b0, b1], assignments: ["a": [0: [0, 1]]], states: [TopicPartition("a", 0): state(0, 0, [0, 1])]))
        let actions = m.handle(.assignmentsChanged(["a": [0: [0, 1]], "b": [0: [1, 0], 1: [0, 1]]]))
        let created = actions.compactMap { a -> TopicPartition? in if case let .createState(t, _) = a { return t } else { return nil } }
        XCTAssertEqual(created, [TopicPartition("b", 0), TopicPartition("b", 1)])
        if case let .createState(_, s) = actions[0] { XCTAssertEqual(s.leader, 1, "preferred replica (head of the list) leads") }
    }

    func testControlledShutdownMovesLeadershipAndShrinksIsr() {
        var m = ControllerStateMachine(brokerId: 1)
        let a = TopicPartition("t", 0), b = TopicPartition("t", 1), single = TopicPartition("s", 0)
        _ = m.handle(.elected(epoch: 4, liveBrokers: [b0, b1, b2],
                              assignments: ["t": [0: [0, 1, 2], 1: [1, 0, 2]], "s": [0: [0]]],
                              states: [a: state(0, 2, [0, 1, 2], v: 5), b: state(1, 7, [1, 0, 2], v: 9), single: state(0, 0, [0])]))
        let actions = m.handle(.controlledShutdown(brokerId: 0))
        // Led by 0: the next ISR member that is not shutting down leads; 0 leaves the ISR.
        XCTAssertTrue(actions.contains(.updateState(a, LeaderIsrState(leader: 1, leaderEpoch: 3, isr: [1, 2], controllerEpoch: 4), expectedVersion: 5)), "\(actions)")
        // Followed by 0: it only leaves the ISR.
        XCTAssertTrue(actions.contains(.updateState(b, LeaderIsrState(leader: 1, leaderEpoch: 8, isr: [1, 2], controllerEpoch: 4), expectedVersion: 9)), "\(actions)")
        // Replication factor 1: nothing can move; it is what the response lists (only RF > 1 counts).
        XCTAssertFalse(actions.contains { if case let .updateState(t, _, _) = $0 { return t == single } else { return false } })
        XCTAssertEqual(m.partitionsLed(by: 0), [])
        XCTAssertEqual(m.shuttingDown, [0])
        // A shutting-down broker is never elected.
        _ = m.handle(.brokersChanged([b0, b2]))
        XCTAssertNotEqual(m.leadership[a]?.state.leader, 0)
        XCTAssertNotEqual(m.leadership[b]?.state.leader, 0)
    }

    func testTopicDeletionStopsLiveReplicasAndRemovesNodes() {
        var m = ControllerStateMachine(brokerId: 0)
        let t0 = TopicPartition("d", 0), t1 = TopicPartition("d", 1)
        _ = m.handle(.elected(epoch: 3, liveBrokers: [b0, b1], assignments: ["d": [0: [0, 2], 1: [1, 0]], "keep": [0: [0]]],
                              states: [t0: state(0, 1, [0]), t1: state(1, 1, [1, 0])]))
        let actions = m.handle(.deleteTopics(["d", "unknown"]))
        guard case let .sendUpdateMetadata(brokers, states, _) = actions.first(where: { if case .sendUpdateMetadata = $0 { return true } else { return false } }) else {
            return XCTFail("\(actions)")
        }
        XCTAssertEqual(brokers, [0, 1])
        XCTAssertEqual(Set(states.map(\.leader)), [-2], "brokers drop deleted partitions from metadata")
        XCTAssertTrue(actions.contains(.sendStopReplica(broker: 0, partitions: [t0, t1], delete: true)))
        XCTAssertTrue(actions.contains(.sendStopReplica(broker: 1, partitions: [t1], delete: true)))
        XCTAssertFalse(actions.contains { if case let .sendStopReplica(b, _, _) = $0 { return b == 2 } else { return false } }, "dead broker 2 gets nothing")
        XCTAssertTrue(actions.contains(.deleteTopicNodes("d")))
        XCTAssertTrue(actions.contains(.deleteTopicNodes("unknown")), "an unknown topic's mark is just removed")
        XCTAssertNil(m.assignments["d"])
        XCTAssertNotNil(m.assignments["keep"])
    }

    func testPreferredReplicaElectionAndImbalance() {
        var m = ControllerStateMachine(brokerId: 1)
        let p0 = TopicPartition("p", 0), p1 = TopicPartition("p", 1), p2 = TopicPartition("p", 2)
        _ = m.handle(.elected(epoch: 2, liveBrokers: [b0, b1], assignments: ["p": [0: [0, 1], 1: [0, 1], 2: [1, 0]]],
                              states: [p0: state(1, 4, [1, 0], v: 3), p1: state(1, 4, [1], v: 6), p2: state(1, 1, [1, 0])]))
        // Broker 0 prefers p0 and p1 but leads neither: 100 % > 10 %.
        XCTAssertEqual(m.imbalancedPartitions(percentage: 10), [p0, p1])
        let actions = m.handle(.preferredReplicaElection([p0, p1, p2]))
        XCTAssertTrue(actions.contains(.updateState(p0, LeaderIsrState(leader: 0, leaderEpoch: 5, isr: [1, 0], controllerEpoch: 2), expectedVersion: 3)))
        XCTAssertFalse(actions.contains { if case let .updateState(t, _, _) = $0 { return t == p1 } else { return false } }, "preferred replica not in the ISR")
        XCTAssertFalse(actions.contains { if case let .updateState(t, _, _) = $0 { return t == p2 } else { return false } }, "already led by its preferred replica")
        // A fresher state read from ZooKeeper (the leader expanded the ISR) makes p1 eligible.
        _ = m.handle(.statesRead([p1: state(1, 4, [1, 0], v: 7)]))
        XCTAssertTrue(m.handle(.preferredReplicaElection([p1])).contains(.updateState(p1, LeaderIsrState(leader: 0, leaderEpoch: 5, isr: [1, 0], controllerEpoch: 2), expectedVersion: 7)))
        XCTAssertEqual(m.imbalancedPartitions(percentage: 10), [])
    }

    func testInactiveControllerIgnoresEvents() {
        var m = ControllerStateMachine(brokerId: 0)
        XCTAssertEqual(m.handle(.brokersChanged([b0])), [])
        _ = m.handle(.elected(epoch: 1, liveBrokers: [b0], assignments: [:], states: [:]))
        _ = m.handle(.resigned)
        XCTAssertFalse(m.isActive)
        XCTAssertEqual(m.handle(.assignmentsChanged(["t": [0: [0]]])), [])
    }

    // MARK: - Faults (issue 7 item 5)

    /// Table: a failed ZooKeeper operation → retry (with backoff) or give up.
    func testZkRetryPolicyTable() {
        struct Row {
            var name: String
            var error: Error
            var scope: ZkRetryScope
            var sessionChanged = false
            var stopped = false
            var attempt = 0
            var expected: ZkRetryDecision
        }
        let rows = [
            Row(name: "connection loss, same session: retry", error: ZooKeeperError.connectionLoss, scope: .session, expected: .retry(afterMs: 50)),
            Row(name: "operation timeout, same session: retry", error: ZooKeeperError.operationTimeout, scope: .session, attempt: 2, expected: .retry(afterMs: 200)),
            Row(name: "connection loss outliving the session: give up (controller resigns)", error: ZooKeeperError.connectionLoss, scope: .session,
                sessionChanged: true, expected: .fail),
            Row(name: "connection loss, any session: retry", error: ZooKeeperError.connectionLoss, scope: .anySession, sessionChanged: true,
                expected: .retry(afterMs: 50)),
            Row(name: "session expired, session scope: give up", error: ZooKeeperError.sessionExpired, scope: .session, expected: .fail),
            Row(name: "session expired, any session: retry on the new one", error: ZooKeeperError.sessionExpired, scope: .anySession,
                attempt: 30, expected: .retry(afterMs: 1000)),
            Row(name: "client closed: give up", error: ZooKeeperError.closed, scope: .anySession, expected: .fail),
            Row(name: "broker shutting down: give up", error: ZooKeeperError.connectionLoss, scope: .session, stopped: true, expected: .fail),
            Row(name: "cancelled: give up", error: CancellationError(), scope: .anySession, expected: .fail),
            Row(name: "no node is an answer, not an outage", error: ZooKeeperError.noNode("/x"), scope: .session, expected: .fail),
            Row(name: "bad version is an answer", error: ZooKeeperError.badVersion("/x"), scope: .session, expected: .fail),
            Row(name: "node exists is an answer", error: ZooKeeperError.nodeExists("/x"), scope: .anySession, expected: .fail),
            Row(name: "bad data is an answer", error: ZkDataError(path: "/x", reason: "empty"), scope: .session, expected: .fail),
        ]
        for row in rows {
            XCTAssertEqual(ZkRetryPolicy.decide(row.error, attempt: row.attempt, scope: row.scope, sessionChanged: row.sessionChanged,
                                                stopped: row.stopped), row.expected, row.name)
        }
        XCTAssertEqual((0..<8).map { ZkRetryPolicy.backoffMs(attempt: $0) }, [50, 100, 200, 400, 800, 1000, 1000, 1000])
        XCTAssertEqual(ZkRetryPolicy.backoffMs(attempt: 1000), 1000, "no overflow")
    }

    /// Table: a failure that retries could not absorb, and where it happened → what the
    /// controller does. It never stays elected-but-inactive.
    func testControllerFaultPolicyTable() {
        struct Row {
            var name: String
            var error: Error
            var phase: ControllerPhase
            var expected: ControllerRecovery
        }
        let moved = ControllerMovedError(reason: "bad version")
        let rows = [
            Row(name: "bad-version epoch update: another controller took over", error: moved, phase: .failover, expected: .resignAndReelect(backoffMs: 50)),
            Row(name: "controller moved while handling an event", error: moved, phase: .event, expected: .resignAndReelect(backoffMs: 50)),
            Row(name: "session expired during failover: wait for the new session", error: ZooKeeperError.sessionExpired, phase: .failover,
                expected: .resignAndAwaitNewSession),
            Row(name: "session expired during an event", error: ZooKeeperError.sessionExpired, phase: .event, expected: .resignAndAwaitNewSession),
            Row(name: "connection loss that outlived the session", error: ZooKeeperError.connectionLoss, phase: .event, expected: .resignAndAwaitNewSession),
            Row(name: "client closed (shutdown)", error: ZooKeeperError.closed, phase: .failover, expected: .stop),
            Row(name: "cancelled (shutdown)", error: CancellationError(), phase: .event, expected: .stop),
            Row(name: "bad data during failover: start over rather than hold /controller idle", error: ZkDataError(path: "/x", reason: "empty"),
                phase: .failover, expected: .resignAndReelect(backoffMs: 50)),
            Row(name: "bad data in one event: log, keep controller and watches", error: ZkDataError(path: "/x", reason: "empty"), phase: .event,
                expected: .logAndContinue),
            Row(name: "unexpected ZooKeeper answer during failover", error: ZooKeeperError.other(code: -8, path: "/x"), phase: .failover,
                expected: .resignAndReelect(backoffMs: 50)),
        ]
        for row in rows { XCTAssertEqual(ControllerFaultPolicy.decide(row.error, phase: row.phase), row.expected, row.name) }
        XCTAssertEqual(ControllerFaultPolicy.decide(moved, phase: .failover, attempt: 3), .resignAndReelect(backoffMs: 400), "backoff grows")
    }

    /// A resigned machine ignores events (the actor must elect again), and a second election
    /// after a failed one takes over from scratch: every partition's leadership is sent again.
    func testReElectionAfterResignationStartsOver() {
        var m = ControllerStateMachine(brokerId: 1)
        let assign: [String: [Int32: [Int32]]] = ["t": [0: [0, 1]]]
        _ = m.handle(.elected(epoch: 3, liveBrokers: [b0, b1], assignments: assign, states: [tp: state(0, 1, [0, 1])]))
        XCTAssertEqual(m.handle(.resigned), [])
        XCTAssertFalse(m.isActive)
        XCTAssertEqual(m.handle(.brokersChanged([b1])), [], "inactive: events are ignored")
        XCTAssertEqual(m.epoch, 0)
        let actions = m.handle(.elected(epoch: 5, liveBrokers: [b1], assignments: assign, states: [tp: state(0, 1, [0, 1], v: 2)]))
        XCTAssertTrue(m.isActive)
        XCTAssertEqual(actions.first, .updateState(tp, LeaderIsrState(leader: 1, leaderEpoch: 2, isr: [1], controllerEpoch: 5), expectedVersion: 2),
                       "the dead leader found by the new failover is replaced")
    }
}

final class AdminTests: XCTestCase {
    func testAssignmentMatchesKafkaWithFixedStart() throws {
        // 5 brokers, 10 partitions, RF 3, start index 0: the layout documented for AdminUtils.
        let a = try ReplicaAssignment.assign(brokers: [0, 1, 2, 3, 4], partitions: 10, replicationFactor: 3, fixedStartIndex: 0)
        XCTAssertEqual(a[0], [0, 1, 2])
        XCTAssertEqual(a[1], [1, 2, 3])
        XCTAssertEqual(a[4], [4, 0, 1])
        XCTAssertEqual(a[5], [0, 2, 3])
        XCTAssertEqual(a[9], [4, 1, 2])
        for (_, r) in a { XCTAssertEqual(Set(r).count, 3) }
    }

    func testReplicationFactorLargerThanBrokersIsAnError() {
        XCTAssertThrowsError(try ReplicaAssignment.assign(brokers: [0], partitions: 1, replicationFactor: 3)) { e in
            XCTAssertEqual("\(e)", "replication factor: 3 larger than available brokers: 1")
        }
    }

    func testTopicNames() {
        XCTAssertNil(TopicNames.validationError("test.topic_1-x"))
        XCTAssertNotNil(TopicNames.validationError("bad/name"))
        XCTAssertNotNil(TopicNames.validationError(".."))
        XCTAssertNotNil(TopicNames.validationError(""))
        XCTAssertNotNil(TopicNames.validationError(String(repeating: "a", count: 256)))
    }

    func testZooKeeperJSONInKafkaKeyOrder() throws {
        let reg = BrokerRegistration(id: 0, host: "h1", port: 9092, timestamp: 1428512949385)
        XCTAssertEqual(reg.json(), #"{"jmx_port":-1,"timestamp":"1428512949385","host":"h1","version":1,"port":9092}"#)
        XCTAssertEqual(try BrokerRegistration.parse(id: 0, Array(reg.json().utf8), path: "/x"), reg)
        let st = LeaderIsrState(leader: 0, leaderEpoch: 0, isr: [0, 1], controllerEpoch: 1)
        XCTAssertEqual(st.json(), #"{"controller_epoch":1,"leader":0,"version":1,"leader_epoch":0,"isr":[0,1]}"#)
        XCTAssertEqual(try LeaderIsrState.parse(Array(st.json().utf8), path: "/x"), st)
        XCTAssertEqual(ControllerRegistration.json(brokerId: 2, timestamp: 5), #"{"version":1,"brokerid":2,"timestamp":"5"}"#)
        XCTAssertEqual(try ControllerRegistration.parseBrokerId(Array("2".utf8)), 2)
        XCTAssertEqual(TopicAssignment.json([1: [0, 1], 0: [1, 0]]), #"{"version":1,"partitions":{"0":[1,0],"1":[0,1]}}"#)
        XCTAssertEqual(TopicConfigData.json([:]), #"{"version":1,"config":{}}"#)
        XCTAssertThrowsError(try LeaderIsrState.parse(Array("{}".utf8), path: "/x"))
        XCTAssertThrowsError(try BrokerRegistration.parse(id: 0, Array("not json".utf8), path: "/x"))
    }
}
