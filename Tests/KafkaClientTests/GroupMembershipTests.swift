import KafkaClient
import KafkaProtocol
import XCTest

private func tp(_ p: Int32, _ t: String = "t") -> TopicPartition { TopicPartition(t, p) }
private func th(_ c: String = GroupMembershipTests.me, _ n: Int = 0) -> ConsumerThreadId { ConsumerThreadId(c, n) }

/// The group consumer's membership state machine without ZooKeeper: each table row is an event
/// and the actions it must produce (log lines aside), in order.
final class GroupMembershipTests: XCTestCase {
    typealias Step = (event: GroupEvent, actions: [GroupAction])

    static let me = "g_me"
    static let other = "g_other"

    /// Two members with one stream each on a 4-partition topic: range gives us (sorted first) p0, p1.
    static let twoMembers = AssignmentContext(consumerId: me, members: [me: .topics(["t": 1]), other: .topics(["t": 1])],
                                              partitions: ["t": [0, 1, 2, 3]])
    static let alone = AssignmentContext(consumerId: me, members: [me: .topics(["t": 1])], partitions: ["t": [0, 1, 2, 3]])
    static let mine: [TopicPartition: ConsumerThreadId] = [tp(0): th(), tp(1): th()]

    /// The steps that take a fresh machine to stable with p0, p1 (offsets 5 and none).
    static let toStable: [Step] = [
        (.started, [.register]),
        (.registered, [.readGroup]),
        (.groupRead(twoMembers), [.claim(mine)]),
        (.claimResult(claimed: [tp(0), tp(1)], conflicts: [:]), [.readOffsets([tp(0), tp(1)])]),
        (.offsetsRead([tp(0): 5, tp(1): nil]), [.startFetchers([tp(0): 5, tp(1): nil]), .reportReady]),
    ]

    private func run(_ m: inout GroupMembership, _ steps: [Step], _ name: String, file: StaticString = #filePath, line: UInt = #line) {
        for (i, s) in steps.enumerated() {
            let got = m.handle(s.event).filter { if case .log = $0 { return false } else { return true } }
            XCTAssertEqual(got, s.actions, "\(name), step \(i): \(s.event)", file: file, line: line)
        }
    }

    private func machine(_ settings: GroupMembership.Settings = .init(claimWaitMs: 1000, claimWaitRoundMs: 500)) -> GroupMembership {
        GroupMembership(consumerId: Self.me, settings: settings)
    }

    func testTable() {
        let me = Self.me
        let rows: [(name: String, settings: GroupMembership.Settings, steps: [Step], phase: GroupMembership.Phase, owned: [TopicPartition: ConsumerThreadId])] = [
            ("first rebalance", .init(), Self.toStable, .stable, Self.mine),
            ("a group change commits while owning, releases, reads again", .init(), Self.toStable + [
                (.groupChanged, [.stopFetchers, .commitOffsets, .release([tp(0), tp(1)]), .readGroup]),
                (.groupRead(Self.alone), [.claim([tp(0): th(me, 0), tp(1): th(me, 0), tp(2): th(me, 0), tp(3): th(me, 0)])]),
                (.claimResult(claimed: [tp(0), tp(1), tp(2), tp(3)], conflicts: [:]), [.readOffsets([tp(0), tp(1), tp(2), tp(3)])]),
                (.offsetsRead([tp(0): 7, tp(1): 8, tp(2): 9, tp(3): 10]), [.startFetchers([tp(0): 7, tp(1): 8, tp(2): 9, tp(3): 10])]),
            ], .stable, [tp(0): th(), tp(1): th(), tp(2): th(), tp(3): th()]),
            ("no auto-commit: no commit before releasing", .init(autoCommit: false), Self.toStable + [
                (.groupChanged, [.stopFetchers, .release([tp(0), tp(1)]), .readGroup]),
            ], .readingGroup, [:]),
            ("a held owner node is waited for, then claimed", .init(claimWaitMs: 1000, claimWaitRoundMs: 500), [
                (.started, [.register]), (.registered, [.readGroup]),
                (.groupRead(Self.twoMembers), [.claim(Self.mine)]),
                (.claimResult(claimed: [tp(0)], conflicts: [tp(1): "g_other-0"]), [.awaitRelease([tp(1)], timeoutMs: 500)]),
                (.ownersReleased([tp(1)]), [.claim([tp(1): th()])]),
                (.claimResult(claimed: [tp(1)], conflicts: [:]), [.readOffsets([tp(0), tp(1)])]),
                (.offsetsRead([tp(0): 1, tp(1): 2]), [.startFetchers([tp(0): 1, tp(1): 2]), .reportReady]),
            ], .stable, Self.mine),
            ("owner still held after the wait: the attempt fails, releases its claims, backs off", .init(backoffMs: 300, claimWaitMs: 1000, claimWaitRoundMs: 500), [
                (.started, [.register]), (.registered, [.readGroup]),
                (.groupRead(Self.twoMembers), [.claim(Self.mine)]),
                (.claimResult(claimed: [tp(0)], conflicts: [tp(1): "g_other-0"]), [.awaitRelease([tp(1)], timeoutMs: 500)]),
                (.ownersReleased([]), [.claim([tp(1): th()])]),
                (.claimResult(claimed: [], conflicts: [tp(1): "g_other-0"]), [.awaitRelease([tp(1)], timeoutMs: 500)]),
                (.ownersReleased([]), [.claim([tp(1): th()])]),
                (.claimResult(claimed: [], conflicts: [tp(1): "g_other-0"]), [.release([tp(0)]), .retryAfter(ms: 300)]),
                (.backoffElapsed, [.readGroup]),
                (.groupRead(Self.twoMembers), [.claim(Self.mine)]),
            ], .claiming, [:]),
            ("a group change during the claims restarts the attempt without counting a failure", .init(), [
                (.started, [.register]), (.registered, [.readGroup]),
                (.groupRead(Self.twoMembers), [.claim(Self.mine)]),
                (.groupChanged, []),
                (.claimResult(claimed: [tp(0)], conflicts: [tp(1): nil]), [.release([tp(0)]), .readGroup]),
                (.groupRead(Self.alone), [.claim([tp(0): th(), tp(1): th(), tp(2): th(), tp(3): th()])]),
            ], .claiming, [:]),
            ("a group change while offsets are read: rebalance again before fetching", .init(), [
                (.started, [.register]), (.registered, [.readGroup]),
                (.groupRead(Self.twoMembers), [.claim(Self.mine)]),
                (.claimResult(claimed: [tp(0), tp(1)], conflicts: [:]), [.readOffsets([tp(0), tp(1)])]),
                (.groupChanged, []),
                (.offsetsRead([tp(0): 1, tp(1): 1]), [.stopFetchers, .commitOffsets, .release([tp(0), tp(1)]), .readGroup, .reportReady]),
            ], .readingGroup, [:]),
            ("a group change during the read is not lost: the decision is carried out, then made again", .init(), [
                (.started, [.register]), (.registered, [.readGroup]),
                (.groupChanged, []),
                (.groupRead(Self.twoMembers), [.claim(Self.mine)]),
                (.claimResult(claimed: [tp(0), tp(1)], conflicts: [:]), [.readOffsets([tp(0), tp(1)])]),
                (.offsetsRead([tp(0): 1, tp(1): 1]), [.stopFetchers, .commitOffsets, .release([tp(0), tp(1)]), .readGroup, .reportReady]),
                (.groupRead(Self.twoMembers), [.claim(Self.mine)]),
            ], .claiming, [:]),
            ("gives up after rebalance.max.retries with 0.8.2's message", .init(maxRetries: 2, backoffMs: 100), [
                (.started, [.register]), (.registered, [.readGroup]),
                (.groupReadFailed("boom"), [.retryAfter(ms: 100)]),
                (.groupChanged, []),                       // already scheduled: the retry reads the new group
                (.backoffElapsed, [.readGroup]),
                (.groupReadFailed("boom"), [.reportGaveUp(.rebalanceFailed("g_me can't rebalance after 2 retries: boom"))]),
                (.backoffElapsed, []),
                (.groupChanged, [.readGroup]),             // the next change tries again
            ], .readingGroup, [:]),
            ("a later give-up is only logged; the consumer keeps no partitions", .init(maxRetries: 1), Self.toStable + [
                (.groupChanged, [.stopFetchers, .commitOffsets, .release([tp(0), tp(1)]), .readGroup]),
                (.groupReadFailed("boom"), []),
            ], .gaveUp, [:]),
            ("roundrobin needs identical subscriptions: the attempt fails", .init(strategy: .roundrobin, maxRetries: 1), [
                (.started, [.register]), (.registered, [.readGroup]),
                (.groupRead(AssignmentContext(consumerId: me, members: [me: .topics(["t": 1, "u": 1]), Self.other: .topics(["t": 1])], partitions: ["t": [0, 1], "u": [0]])),
                 [.reportGaveUp(.rebalanceFailed("g_me can't rebalance after 1 retries: " + Self.roundRobinError))]),
            ], .gaveUp, [:]),
            ("more members than partitions: nothing to claim or fetch", .init(), [
                (.started, [.register]), (.registered, [.readGroup]),
                (.groupRead(AssignmentContext(consumerId: me, members: [me: .topics(["t": 1]), "g_a": .topics(["t": 1])], partitions: ["t": [0]])),
                 [.readOffsets([])]),
                (.offsetsRead([:]), [.reportReady]),
            ], .stable, [:]),
            ("our registration missing from the group: register again, then read", .init(), [
                (.started, [.register]), (.registered, [.readGroup]),
                (.groupRead(AssignmentContext(consumerId: me, members: [Self.other: .topics(["t": 1])], partitions: ["t": [0]])), [.register]),
                (.registered, [.readGroup]),
            ], .readingGroup, [:]),
            ("registration refused (another live session) four times: subscribe fails", .init(backoffMs: 10), [
                (.started, [.register]),
                (.registrationFailed("taken"), [.retryAfter(ms: 10)]),
                (.backoffElapsed, [.register]),
                (.registrationFailed("taken"), [.retryAfter(ms: 10)]),
                (.backoffElapsed, [.register]),
                (.registrationFailed("taken"), [.retryAfter(ms: 10)]),
                (.backoffElapsed, [.register]),
                (.registrationFailed("taken"), [.reportGaveUp(.rebalanceFailed("g_me can't rebalance after 4 retries: cannot register consumer g_me: taken"))]),
            ], .failed, [:]),
            ("our id held by another live session: subscribe fails at once", .init(), [
                (.started, [.register]),
                (.registrationConflict("consumer g_me is already registered at /consumers/g/ids/g_me"),
                 [.reportGaveUp(.alreadyRegistered("consumer g_me is already registered at /consumers/g/ids/g_me"))]),
                (.backoffElapsed, []),
            ], .failed, [:]),
            ("session expiry: ownership is gone with the session, nothing committed; a new session registers again", .init(), Self.toStable + [
                (.sessionExpired, [.stopFetchers]),
                (.groupChanged, []),
                (.fetchFailed(tp(0), .leaderUnavailable), []),
                (.sessionReestablished, [.register]),
                (.registered, [.readGroup]),
            ], .readingGroup, [:]),
            ("a reconnect without expiry changes nothing", .init(), Self.toStable + [
                (.sessionReestablished, []),
            ], .stable, Self.mine),
            ("fetch errors: leader lookup after refresh.leader.backoff.ms, offset reset, stop on fatal", .init(refreshLeaderBackoffMs: 200), Self.toStable + [
                (.fetchFailed(tp(0), .leaderUnavailable), [.refreshLeaders([tp(0)], afterMs: 200)]),
                (.fetchFailed(tp(1), .offsetOutOfRange), [.resetOffsets([tp(1)])]),
                (.fetchFailed(tp(3), .leaderUnavailable), []),       // not ours
                (.fetchFailed(tp(1), .fatal("too large")), [.stopFetchers, .fail("too large")]),
                (.groupChanged, []),
            ], .failed, Self.mine),
            ("shutdown commits, releases, and ends the machine", .init(), Self.toStable + [
                (.shutdown, [.stopFetchers, .commitOffsets, .release([tp(0), tp(1)])]),
                (.groupChanged, []),
                (.backoffElapsed, []),
            ], .shutDown, [:]),
            ("shutdown during the first rebalance releases its claims and fails subscribe", .init(), [
                (.started, [.register]), (.registered, [.readGroup]),
                (.groupRead(Self.twoMembers), [.claim(Self.mine)]),
                (.claimResult(claimed: [tp(0)], conflicts: [tp(1): nil]), [.awaitRelease([tp(1)], timeoutMs: 500)]),
                (.shutdown, [.stopFetchers, .release([tp(0)]), .reportGaveUp(.shutDown)]),
                (.ownersReleased([tp(1)]), []),
            ], .shutDown, [:]),
        ]
        for row in rows {
            var m = GroupMembership(consumerId: me, settings: row.settings)
            run(&m, row.steps, row.name)
            XCTAssertEqual(m.phase, row.phase, row.name)
            XCTAssertEqual(m.owned, row.owned, row.name)
        }
    }

    static let roundRobinError = """
        Round-robin assignment is allowed only if all consumers in the group subscribe to the same topics, \
        AND if the stream counts across topics are identical for a given consumer instance.
        Topic u has the following available consumer streams: g_me-0
        Topic t has the following available consumer streams: g_me-0, g_other-0
        """

    /// A failed attempt logs 0.8.2's "try #n failed" line; the decision is logged on success.
    func testLogLines() {
        var m = machine(.init(maxRetries: 3))
        _ = m.handle(.started)
        _ = m.handle(.registered)
        let failed = m.handle(.groupReadFailed("no node"))
        XCTAssertEqual(failed.first, .log("[g_me], begin rebalancing consumer g_me try #0 failed: no node"))
        _ = m.handle(.backoffElapsed)
        _ = m.handle(.groupRead(Self.twoMembers))
        _ = m.handle(.claimResult(claimed: [tp(0), tp(1)], conflicts: [:]))
        let done = m.handle(.offsetsRead([:]))
        XCTAssertEqual(done.first, .log("[g_me], range assignment: g_me-0 -> [t,0],[t,1]"))
        XCTAssertEqual(m.lastDecision?.partitions, [tp(0), tp(1)])
        XCTAssertEqual(m.failures, 0)
        XCTAssertEqual(m.completedRebalances, 1)
        _ = m.handle(.sessionExpired)
        _ = m.handle(.sessionReestablished)
        XCTAssertEqual(m.handle(.registered), [.log("[g_me], re-registered in a new ZooKeeper session"), .readGroup])
    }

    /// Every member of a group that decides on the same view claims disjoint partitions that
    /// together cover the topic: 20 members, then 10, on 60 partitions.
    func testMembersOnOneViewCoverEveryPartitionOnce() throws {
        for n in [20, 10] {
            var members: [String: ConsumerRegistration] = [:]
            for i in 0..<n { members["g_c\(i)"] = .topics(["t": 1]) }
            var owners: [TopicPartition: String] = [:]
            for id in members.keys {
                var m = GroupMembership(consumerId: id)
                _ = m.handle(.started)
                _ = m.handle(.registered)
                let ctx = AssignmentContext(consumerId: id, members: members, partitions: ["t": (0..<60).map { Int32($0) }])
                guard case .claim(let wanted)? = m.handle(.groupRead(ctx)).first else { return XCTFail("no claim for \(id)") }
                for tp in wanted.keys {
                    XCTAssertNil(owners[tp], "\(tp) claimed twice")
                    owners[tp] = id
                }
            }
            XCTAssertEqual(owners.count, 60)
            XCTAssertEqual(Set(owners.values).count, n)
        }
    }

    func testTypedConfig() throws {
        let base = ["zookeeper.connect": "z:1", "group.id": "g"]
        let c = try ZookeeperConsumerConfig(properties: base)
        XCTAssertEqual(c.autoOffsetReset, .largest)
        XCTAssertEqual(c.rebalanceMaxRetries, 4)
        XCTAssertEqual(c.rebalanceBackoffMs, 2000)
        XCTAssertEqual(c.queuedMaxMessageChunks, 2)
        XCTAssertEqual(c.refreshLeaderBackoffMs, 200)
        var p = base
        p["auto.offset.reset"] = "smallest"
        p["zookeeper.sync.time.ms"] = "700"
        p["fetch.min.bytes"] = "10"
        p["auto.commit.enable"] = "FALSE"
        let d = try ZookeeperConsumerConfig(properties: p)
        XCTAssertEqual(d.autoOffsetReset, .smallest)
        XCTAssertEqual(d.rebalanceBackoffMs, 700)          // rebalance.backoff.ms defaults to zookeeper.sync.time.ms
        XCTAssertEqual(d.fetchMinBytes, 10)
        XCTAssertFalse(d.autoCommitEnable)
        let errors: [([String: String], ConsumerConfigError)] = [
            (["group.id": "g"], .missing("zookeeper.connect")),
            (["zookeeper.connect": "z:1"], .missing("group.id")),
            (base.merging(["group.id": "a b"]) { $1 }, .illegalGroupId("a b")),
            (base.merging(["auto.offset.reset": "earliest"]) { $1 }, .invalidAutoOffsetReset("earliest")),
            (base.merging(["fetch.wait.max.ms": "x"]) { $1 }, .notANumber(key: "fetch.wait.max.ms", value: "x")),
            (base.merging(["auto.commit.enable": "yes"]) { $1 }, .notABoolean(key: "auto.commit.enable", value: "yes")),
            (base.merging(["fetch.message.max.bytes": "0"]) { $1 }, .outOfRange(key: "fetch.message.max.bytes", value: 0, requirement: "must be at least 1")),
            (base.merging(["socket.timeout.ms": "50", "fetch.wait.max.ms": "100"]) { $1 },
             .outOfRange(key: "socket.timeout.ms", value: 50, requirement: "should always be at least fetch.wait.max.ms (100)")),
        ]
        for (props, expected) in errors {
            XCTAssertThrowsError(try ZookeeperConsumerConfig(properties: props), "\(props)") { e in
                XCTAssertEqual(e as? ConsumerConfigError, expected)
            }
        }
        XCTAssertEqual(ConsumerConfigError.invalidAutoOffsetReset("earliest").description,
                       "Wrong value earliest of auto.offset.reset in ConsumerConfig; Valid values are smallest and largest")
    }
}
