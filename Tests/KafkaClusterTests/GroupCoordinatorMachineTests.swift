import KafkaCluster
import XCTest

/// The group coordinator's decisions, without sockets: each table is a sequence of events and
/// the exact answers each must produce, then the group's state.
final class GroupCoordinatorMachineTests: XCTestCase {
    typealias M = GroupCoordinatorMachine
    typealias Code = M.Code

    private let proto = [M.GroupProtocol("range", [1]), M.GroupProtocol("roundrobin", [2])]

    private func join(_ t: M.Token, _ member: String = "", client: String = "c", timeout: Int32 = 10_000,
                      type: String = "consumer", protocols: [M.GroupProtocol]? = nil, at now: Int64, group: String = "G") -> M.Event {
        .join(t, group: group, memberId: member, clientId: client, sessionTimeoutMs: timeout, protocolType: type,
              protocols: protocols ?? proto, nowMs: now)
    }

    private func joined(_ t: M.Token, gen: Int32, leader: String, member: String, members: [(String, [UInt8])] = [],
                        protocolName: String = "range") -> M.Action {
        .joinAnswer(t, M.JoinAnswer(error: Code.none, generation: gen, protocolName: protocolName, leaderId: leader, memberId: member,
                                    members: members.map { (memberId: $0.0, metadata: $0.1) }))
    }

    private func refused(_ t: M.Token, _ code: Int16, member: String = "") -> M.Action {
        .joinAnswer(t, M.JoinAnswer(error: code, memberId: member))
    }

    private struct Step {
        var event: M.Event
        var expect: [M.Action]
        var line: UInt
    }

    private func step(_ e: M.Event, _ expect: [M.Action], line: UInt = #line) -> Step { Step(event: e, expect: expect, line: line) }

    private func run(_ machine: inout M, _ steps: [Step]) {
        for s in steps {
            let got = machine.handle(s.event)
            XCTAssertEqual(got, s.expect, "event \(s.event)", line: s.line)
        }
    }

    // Member ids: "<client id>-<incarnation>-<n>".
    private let a = "c-inc-1", b = "c-inc-2", c = "c-inc-3"

    /// a joins an empty group (token 1, at 0) and leads generation 1 alone.
    private var aJoinsAlone: Step { step(join(1, at: 0), [joined(1, gen: 1, leader: a, member: a, members: [(a, [1])])]) }

    /// After `aJoinsAlone`: b joins (token 2), a rejoins (token 3); both in generation 2, a leading.
    private var twoMembersInGenerationTwo: [Step] {
        [
            aJoinsAlone,
            step(join(2, at: 1), []),
            step(join(3, a, at: 2), [joined(3, gen: 2, leader: a, member: a, members: [(a, [1]), (b, [1])]), joined(2, gen: 2, leader: a, member: b)]),
        ]
    }

    /// `twoMembersInGenerationTwo`, then the leader's empty sync (token 4): the group is stable.
    private var twoMembersStable: [Step] {
        twoMembersInGenerationTwo + [
            step(.sync(4, group: "G", generation: 2, memberId: a, assignments: [:], nowMs: 3), [.syncAnswer(4, error: Code.none, assignment: [])]),
        ]
    }

    func testOneMemberJoinsSyncsHeartbeatsAndLeaves() {
        var m = M(incarnation: "inc")
        run(&m, [
            aJoinsAlone,
            step(.heartbeat(2, group: "G", generation: 1, memberId: a, nowMs: 10), [.heartbeatAnswer(2, error: Code.none)]),
            step(.sync(3, group: "G", generation: 1, memberId: a, assignments: [a: [7, 7]], nowMs: 20),
                 [.syncAnswer(3, error: Code.none, assignment: [7, 7])]),
            // A stable member's second sync gets its assignment again.
            step(.sync(4, group: "G", generation: 1, memberId: a, assignments: [:], nowMs: 30),
                 [.syncAnswer(4, error: Code.none, assignment: [7, 7])]),
            step(.heartbeat(5, group: "G", generation: 0, memberId: a, nowMs: 40), [.heartbeatAnswer(5, error: Code.illegalGeneration)]),
            step(.leave(6, group: "G", memberId: a, nowMs: 50), [.leaveAnswer(6, error: Code.none)]),
            step(.heartbeat(7, group: "G", generation: 1, memberId: a, nowMs: 60), [.heartbeatAnswer(7, error: Code.unknownMemberId)]),
        ])
        XCTAssertNil(m.snapshot("G"), "an empty group is forgotten")
        XCTAssertEqual(m.groupCount, 0)
    }

    func testSecondMemberTriggersARebalanceTheFirstLearnsFromItsHeartbeat() {
        var m = M(incarnation: "inc")
        run(&m, [
            aJoinsAlone,
            step(.sync(2, group: "G", generation: 1, memberId: a, assignments: [a: [1]], nowMs: 0), [.syncAnswer(2, error: Code.none, assignment: [1])]),
            // b joins: its answer waits for a.
            step(join(3, at: 100), []),
            step(.heartbeat(4, group: "G", generation: 1, memberId: a, nowMs: 200), [.heartbeatAnswer(4, error: Code.rebalanceInProgress)]),
            step(join(5, a, at: 300), [
                joined(5, gen: 2, leader: a, member: a, members: [(a, [1]), (b, [1])]),
                joined(3, gen: 2, leader: a, member: b),
            ]),
            // The follower's sync waits for the leader's.
            step(.sync(6, group: "G", generation: 2, memberId: b, assignments: [:], nowMs: 400), []),
            step(.sync(7, group: "G", generation: 2, memberId: a, assignments: [a: [0xA], b: [0xB]], nowMs: 500), [
                .syncAnswer(7, error: Code.none, assignment: [0xA]),
                .syncAnswer(6, error: Code.none, assignment: [0xB]),
            ]),
        ])
        XCTAssertEqual(m.snapshot("G"), M.GroupSnapshot(phase: .stable, generation: 2, protocolName: "range", leader: a, members: [a, b]))
        XCTAssertEqual(m.checkCommit(group: "G", generation: 2, memberId: b), Code.none)
        XCTAssertEqual(m.checkCommit(group: "G", generation: 1, memberId: b), Code.illegalGeneration)
    }

    func testMembersThatDoNotRejoinAreDroppedAtTheRebalanceDeadline() {
        var m = M(incarnation: "inc")
        run(&m, [
            step(join(1, timeout: 10_000, at: 0), [joined(1, gen: 1, leader: a, member: a, members: [(a, [1])])]),
            step(.sync(2, group: "G", generation: 1, memberId: a, assignments: [:], nowMs: 0), [.syncAnswer(2, error: Code.none, assignment: [])]),
            step(join(3, timeout: 6_000, at: 1_000), []),
            // Deadline: 1,000 + the largest session timeout (10,000); a never rejoins.
            step(.heartbeat(4, group: "G", generation: 1, memberId: a, nowMs: 2_000), [.heartbeatAnswer(4, error: Code.rebalanceInProgress)]),
            step(.tick(nowMs: 10_999), []),
            step(.tick(nowMs: 11_000), [joined(3, gen: 2, leader: b, member: b, members: [(b, [1])])]),
        ])
        XCTAssertEqual(m.snapshot("G")?.members, [b])
        XCTAssertEqual(m.snapshot("G")?.phase, .awaitingSync)
        XCTAssertEqual(m.checkCommit(group: "G", generation: 2, memberId: a), Code.illegalGeneration, "a is gone")
    }

    func testSessionExpiryRemovesASilentMemberAndTheOthersRebalance() {
        var m = M(incarnation: "inc")
        run(&m, [
            step(join(1, timeout: 6_000, at: 0), [joined(1, gen: 1, leader: a, member: a, members: [(a, [1])])]),
            step(join(2, timeout: 6_000, at: 10), []),
            step(join(3, a, timeout: 6_000, at: 20), [
                joined(3, gen: 2, leader: a, member: a, members: [(a, [1]), (b, [1])]),
                joined(2, gen: 2, leader: a, member: b),
            ]),
            step(.sync(4, group: "G", generation: 2, memberId: a, assignments: [a: [1], b: [2]], nowMs: 30), [.syncAnswer(4, error: Code.none, assignment: [1])]),
            step(.sync(5, group: "G", generation: 2, memberId: b, assignments: [:], nowMs: 40), [.syncAnswer(5, error: Code.none, assignment: [2])]),
            // b keeps heartbeating, the leader a falls silent.
            step(.heartbeat(6, group: "G", generation: 2, memberId: b, nowMs: 5_000), [.heartbeatAnswer(6, error: Code.none)]),
            step(.tick(nowMs: 6_030), []),
            step(.tick(nowMs: 6_031), []),   // a expired: b must rejoin
            step(.heartbeat(7, group: "G", generation: 2, memberId: b, nowMs: 6_100), [.heartbeatAnswer(7, error: Code.rebalanceInProgress)]),
            step(join(8, b, timeout: 6_000, at: 6_200), [joined(8, gen: 3, leader: b, member: b, members: [(b, [1])])]),
        ])
        XCTAssertEqual(m.snapshot("G"), M.GroupSnapshot(phase: .awaitingSync, generation: 3, protocolName: "range", leader: b, members: [b]))
    }

    func testTheLastMemberExpiringForgetsTheGroup() {
        var m = M(incarnation: "inc")
        run(&m, [
            step(join(1, timeout: 6_000, at: 0), [joined(1, gen: 1, leader: a, member: a, members: [(a, [1])])]),
            step(.tick(nowMs: 6_000), []),
            step(.tick(nowMs: 6_001), []),
            step(.sync(2, group: "G", generation: 1, memberId: a, assignments: [:], nowMs: 6_002), [.syncAnswer(2, error: Code.unknownMemberId, assignment: [])]),
            // A stale member id is refused; with no id the member joins afresh.
            step(join(3, a, at: 6_003), [refused(3, Code.unknownMemberId, member: a)]),
            step(join(4, at: 6_004), [joined(4, gen: 1, leader: b, member: b, members: [(b, [1])])]),
        ])
    }

    func testRefusedJoins() {
        var m = M(incarnation: "inc")
        run(&m, [
            step(join(1, timeout: 5_999, at: 0), [refused(1, Code.invalidSessionTimeout)]),
            step(join(2, timeout: 300_001, at: 0), [refused(2, Code.invalidSessionTimeout)]),
            step(join(3, at: 0, group: ""), [refused(3, Code.invalidGroupId)]),
            step(join(4, "nobody", at: 0), [refused(4, Code.unknownMemberId, member: "nobody")]),
            step(join(5, protocols: [], at: 0), [refused(5, Code.inconsistentGroupProtocol)]),
            step(join(6, type: "", at: 0), [refused(6, Code.inconsistentGroupProtocol)]),
            // A first member fixes the protocol type and the protocols the group can use.
            step(join(7, at: 0), [joined(7, gen: 1, leader: a, member: a, members: [(a, [1])])]),
            step(join(8, type: "connect", at: 1), [refused(8, Code.inconsistentGroupProtocol)]),
            step(join(9, protocols: [M.GroupProtocol("sticky")], at: 2), [refused(9, Code.inconsistentGroupProtocol)]),
            step(.sync(10, group: "G", generation: 2, memberId: a, assignments: [:], nowMs: 3), [.syncAnswer(10, error: Code.illegalGeneration, assignment: [])]),
            step(.sync(11, group: "H", generation: 1, memberId: a, assignments: [:], nowMs: 3), [.syncAnswer(11, error: Code.unknownMemberId, assignment: [])]),
            step(.leave(12, group: "G", memberId: "nobody", nowMs: 4), [.leaveAnswer(12, error: Code.unknownMemberId)]),
        ])
        XCTAssertEqual(m.snapshot("G")?.members, [a], "refused joins change nothing")
        XCTAssertEqual(m.snapshot("G")?.phase, .awaitingSync)
    }

    func testProtocolChoiceFollowsTheMembersPreferences() {
        var m = M(incarnation: "inc")
        let rr = [M.GroupProtocol("roundrobin", [2]), M.GroupProtocol("range", [1])]
        run(&m, [
            aJoinsAlone,
            step(join(2, protocols: rr, at: 1), []),
            step(join(3, protocols: rr, at: 2), []),
            // Two of three prefer roundrobin; each member's metadata for it goes to the leader.
            step(join(4, a, at: 3), [
                joined(4, gen: 2, leader: a, member: a, members: [(a, [2]), (b, [2]), (c, [2])], protocolName: "roundrobin"),
                joined(2, gen: 2, leader: a, member: b, protocolName: "roundrobin"),
                joined(3, gen: 2, leader: a, member: c, protocolName: "roundrobin"),
            ]),
        ])
    }

    func testARejoinWhileAwaitingSyncCancelsTheWaitingSyncs() {
        var m = M(incarnation: "inc")
        run(&m, twoMembersInGenerationTwo + [
            step(.sync(4, group: "G", generation: 2, memberId: b, assignments: [:], nowMs: 3), []),
            // b's client gives up and rejoins: its waiting sync is answered, a must rejoin too.
            step(join(5, b, at: 4), [.syncAnswer(4, error: Code.rebalanceInProgress, assignment: [])]),
            step(.sync(6, group: "G", generation: 2, memberId: a, assignments: [:], nowMs: 5), [.syncAnswer(6, error: Code.rebalanceInProgress, assignment: [])]),
            step(join(7, a, at: 6), [joined(7, gen: 3, leader: a, member: a, members: [(a, [1]), (b, [1])]), joined(5, gen: 3, leader: a, member: b)]),
        ])
    }

    func testAStableFollowerRejoiningUnchangedGetsTheCurrentGeneration() {
        var m = M(incarnation: "inc")
        run(&m, twoMembersStable + [
            step(join(5, b, at: 4), [joined(5, gen: 2, leader: a, member: b)]),
        ])
        XCTAssertEqual(m.snapshot("G")?.phase, .stable)
    }

    func testLeavingMemberMakesTheRestRebalance() {
        var m = M(incarnation: "inc")
        run(&m, twoMembersStable + [
            // The leader leaves: b learns from its heartbeat and becomes the leader.
            step(.leave(5, group: "G", memberId: a, nowMs: 4), [.leaveAnswer(5, error: Code.none)]),
            step(.heartbeat(6, group: "G", generation: 2, memberId: b, nowMs: 5), [.heartbeatAnswer(6, error: Code.rebalanceInProgress)]),
            step(join(7, b, at: 6), [joined(7, gen: 3, leader: b, member: b, members: [(b, [1])])]),
        ])
    }

    func testCommitChecks() {
        var m = M(incarnation: "inc")
        _ = m.handle(join(1, at: 0))
        let table: [(group: String, generation: Int32, member: String, expect: Int16, line: UInt)] = [
            ("G", -1, "", Code.none, #line),           // outside group management (every 0.8 client)
            ("other", -1, "", Code.none, #line),
            ("G", -1, "pykafka-consumer-id", Code.none, #line),   // pykafka's balanced consumer
            ("G", 1, a, Code.none, #line),
            ("G", 0, a, Code.illegalGeneration, #line),
            ("G", 1, "nobody", Code.illegalGeneration, #line),
            ("other", 3, "x", Code.illegalGeneration, #line),
            ("other", -1, "x", Code.none, #line),
        ]
        for t in table {
            XCTAssertEqual(m.checkCommit(group: t.group, generation: t.generation, memberId: t.member), t.expect, line: t.line)
        }
    }

    func testShutdownAnswersEveryWaitingRequest() {
        var m = M(incarnation: "inc")
        run(&m, [
            aJoinsAlone,
            step(join(2, at: 1), []),
            step(.shutdown, [refused(2, Code.coordinatorNotAvailable, member: b)]),
        ])
        XCTAssertEqual(m.groupCount, 0)
    }
}
