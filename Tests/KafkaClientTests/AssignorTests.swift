import KafkaClient
import KafkaProtocol
import XCTest

/// The rebalance decision of the 0.8.2 high-level consumer as a pure value (no broker, no
/// ZooKeeper): range and roundrobin over members' registrations and topic partitions.
final class AssignorTests: XCTestCase {
    /// "C1-0" → ConsumerThreadId("C1", 0)
    private func tid(_ s: String) -> ConsumerThreadId {
        let dash = s.lastIndex(of: "-")!
        return ConsumerThreadId(String(s[..<dash]), Int(s[s.index(after: dash)...])!)
    }

    /// "t:0,1;u:2" → [TopicPartition]
    private func tps(_ s: String) -> [TopicPartition] {
        guard !s.isEmpty else { return [] }
        return s.split(separator: ";").flatMap { part -> [TopicPartition] in
            let kv = part.split(separator: ":")
            return kv[1].split(separator: ",").map { TopicPartition(String(kv[0]), Int32($0)!) }
        }.sorted()
    }

    private struct Case {
        var name: String
        var strategy: PartitionAssignmentStrategy
        var members: [String: ConsumerRegistration]
        var partitions: [String: Int]
        var topics: [String]? = nil
        /// thread → "topic:p,p;topic:p"; threads that get nothing are left out.
        var expected: [String: String]
    }

    private var cases: [Case] {
        [
            // The reference's example.
            Case(name: "range: 5 partitions over C1-0, C1-1, C2-0, C2-1", strategy: .range,
                 members: ["C1": .topics(["t": 2]), "C2": .topics(["t": 2])], partitions: ["t": 5],
                 expected: ["C1-0": "t:0,1", "C1-1": "t:2", "C2-0": "t:3", "C2-1": "t:4"]),
            Case(name: "range: 4 partitions, 2 consumers", strategy: .range,
                 members: ["g_b": .topics(["t": 1]), "g_a": .topics(["t": 1])], partitions: ["t": 4],
                 expected: ["g_a-0": "t:0,1", "g_b-0": "t:2,3"]),
            Case(name: "range: surplus threads get nothing", strategy: .range,
                 members: ["c1": .topics(["t": 1]), "c2": .topics(["t": 1]), "c3": .topics(["t": 1])], partitions: ["t": 2],
                 expected: ["c1-0": "t:0", "c2-0": "t:1"]),
            // Thread ids sort as strings: c-10 and c-11 come before c-2.
            Case(name: "range: thread ids sort as strings", strategy: .range,
                 members: ["c": .topics(["t": 12])], partitions: ["t": 12],
                 expected: ["c-0": "t:0", "c-1": "t:1", "c-10": "t:2", "c-11": "t:3", "c-2": "t:4", "c-3": "t:5",
                            "c-4": "t:6", "c-5": "t:7", "c-6": "t:8", "c-7": "t:9", "c-8": "t:10", "c-9": "t:11"]),
            // Each topic is split among its own subscribers.
            Case(name: "range: per topic", strategy: .range,
                 members: ["a": .topics(["t1": 1, "t2": 1]), "b": .topics(["t1": 1])], partitions: ["t1": 3, "t2": 3],
                 expected: ["a-0": "t1:0,1;t2:0,1,2", "b-0": "t1:2"]),
            // Wildcards are evaluated against the topic list; the offsets topic is excluded.
            Case(name: "range: whitelist and blacklist", strategy: .range,
                 members: [
                    "w": ConsumerRegistration(.filter(try! TopicFilter(.whitelist, "t.*"), streams: 1)),
                    "x": ConsumerRegistration(.filter(try! TopicFilter(.blacklist, "tb"), streams: 1)),
                 ],
                 partitions: ["ta": 2, "tb": 2, "__consumer_offsets": 2, "other": 1],
                 topics: ["__consumer_offsets", "other", "ta", "tb"],
                 expected: ["w-0": "ta:0;tb:0,1", "x-0": "other:0;ta:1"]),
            Case(name: "range: a topic without partitions", strategy: .range,
                 members: ["a": .topics(["missing": 1, "t": 1])], partitions: ["t": 1],
                 expected: ["a-0": "t:0"]),
            // Round robin deals partitions sorted by the hash of "[topic,partition]":
            // "[t,0]".hashCode() = 87540032 ... "[t,4]" ascending.
            Case(name: "roundrobin: 5 partitions over C1-0, C1-1, C2-0, C2-1", strategy: .roundrobin,
                 members: ["C1": .topics(["t": 2]), "C2": .topics(["t": 2])], partitions: ["t": 5],
                 expected: ["C1-0": "t:0,4", "C1-1": "t:1", "C2-0": "t:2", "C2-1": "t:3"]),
            // "[t,10]" and "[t,11]" hash below "[t,0]" (they overflow), so they are dealt first.
            Case(name: "roundrobin: hash order is not partition order", strategy: .roundrobin,
                 members: ["c": .topics(["t": 3])], partitions: ["t": 12],
                 expected: ["c-0": "t:10,1,4,7", "c-1": "t:11,2,5,8", "c-2": "t:0,3,6,9"]),
            // Topics interleave by hash: [foo,*] hash below [bar,*].
            Case(name: "roundrobin: two topics", strategy: .roundrobin,
                 members: ["c1": .topics(["foo": 1, "bar": 1]), "c2": .topics(["foo": 1, "bar": 1])],
                 partitions: ["foo": 3, "bar": 3],
                 expected: ["c1-0": "foo:0,2;bar:1", "c2-0": "foo:1;bar:0,2"]),
            Case(name: "roundrobin: wildcard members", strategy: .roundrobin,
                 members: [
                    "a": ConsumerRegistration(.filter(try! TopicFilter(.whitelist, "foo,bar"), streams: 1)),
                    "b": ConsumerRegistration(.filter(try! TopicFilter(.whitelist, "foo|bar"), streams: 1)),
                 ],
                 partitions: ["foo": 3, "bar": 3, "zzz": 4], topics: ["bar", "foo", "zzz"],
                 expected: ["a-0": "foo:0,2;bar:1", "b-0": "foo:1;bar:0,2"]),
        ]
    }

    func testTable() throws {
        for c in cases {
            let partitions = c.partitions.mapValues { n in (0..<Int32(n)).map { $0 } }
            var all: [TopicPartition: ConsumerThreadId] = [:]
            for member in c.members.keys.sorted() {
                let ctx = AssignmentContext(consumerId: member, members: c.members, topics: c.topics, partitions: partitions)
                let decision = try RebalanceDecision.decide(ctx, strategy: c.strategy)
                XCTAssertEqual(decision.consumerId, member)
                XCTAssertTrue(decision.ownership.values.allSatisfy { $0.consumer == member }, "\(c.name): \(member) got another consumer's thread")
                let got = decision.partitionsByThread
                let want = c.expected.filter { $0.key.hasPrefix(member + "-") && tid($0.key).consumer == member }
                XCTAssertEqual(Dictionary(uniqueKeysWithValues: got.map { ($0.key.description, $0.value) }),
                               want.mapValues(tps), "\(c.name): decision of \(member)")
                for (tp, t) in decision.ownership {
                    XCTAssertNil(all[tp], "\(c.name): \(tp) decided twice")
                    all[tp] = t
                }
            }
            // The merged decisions equal decideAll, and every partition of a subscribed topic has one owner.
            let ctx = AssignmentContext(consumerId: c.members.keys.sorted()[0], members: c.members, topics: c.topics, partitions: partitions)
            XCTAssertEqual(try RebalanceDecision.decideAll(ctx, strategy: c.strategy), all, c.name)
            XCTAssertEqual(Set(all.keys), Set(c.expected.values.flatMap(tps)), c.name)
        }
    }

    func testRoundRobinNeedsIdenticalSubscriptions() {
        let shapes: [(String, [String: ConsumerRegistration])] = [
            ("different topics", ["a": .topics(["t1": 1, "t2": 1]), "b": .topics(["t1": 1])]),
            ("different stream counts across topics", ["a": .topics(["t1": 1, "t2": 2])]),
        ]
        for (name, members) in shapes {
            let ctx = AssignmentContext(consumerId: "a", members: members, partitions: ["t1": [0, 1], "t2": [0, 1]])
            XCTAssertThrowsError(try RebalanceDecision.decide(ctx, strategy: .roundrobin), name) { error in
                XCTAssertTrue("\(error)".hasPrefix("Round-robin assignment is allowed only if all consumers in the group subscribe to the same topics, AND if the stream counts across topics are identical for a given consumer instance."), "\(error)")
            }
            // Range accepts the same group.
            XCTAssertNoThrow(try RebalanceDecision.decide(ctx, strategy: .range), name)
        }
        // Different stream counts per consumer are fine when every topic has the same thread set.
        let ok = AssignmentContext(consumerId: "a", members: ["a": .topics(["t1": 2, "t2": 2]), "b": .topics(["t1": 1, "t2": 1])],
                                   partitions: ["t1": [0, 1, 2], "t2": [0, 1, 2]])
        XCTAssertEqual(try RebalanceDecision.decideAll(ok, strategy: .roundrobin).count, 6)
    }

    func testOwnRegistrationRequired() {
        let ctx = AssignmentContext(consumerId: "me", members: ["other": .topics(["t": 1])], partitions: ["t": [0]])
        XCTAssertThrowsError(try RebalanceDecision.decide(ctx, strategy: .range))
    }

    func testStrategyConfig() {
        XCTAssertEqual(PartitionAssignmentStrategy(config: "roundrobin"), .roundrobin)
        XCTAssertEqual(PartitionAssignmentStrategy(config: "range"), .range)
        XCTAssertEqual(PartitionAssignmentStrategy(config: "RoundRobin"), .range)   // anything else is range
        XCTAssertEqual(try ZookeeperConsumerConfig(properties: ["zookeeper.connect": "z:1", "group.id": "g"]).partitionAssignmentStrategy, .range)
        let rr = try? ZookeeperConsumerConfig(properties: ["zookeeper.connect": "z:1", "group.id": "g", "partition.assignment.strategy": "roundrobin",
                                                           "rebalance.backoff.ms": "300", "auto.commit.interval.ms": "500"])
        XCTAssertEqual(rr?.partitionAssignmentStrategy, .roundrobin)
        XCTAssertEqual(rr?.rebalanceBackoffMs, 300)
        XCTAssertEqual(rr?.autoCommitIntervalMs, 500)
        XCTAssertThrowsError(try ZookeeperConsumerConfig(properties: ["zookeeper.connect": "z:1", "group.id": "g", "auto.offset.reset": "earliest"]))
        XCTAssertThrowsError(try ZookeeperConsumerConfig(properties: ["zookeeper.connect": "z:1", "group.id": "g/h"]))
    }

    func testJavaStringSemantics() {
        // Values of java.lang.String.hashCode().
        XCTAssertEqual(JavaString.hashCode(""), 0)
        XCTAssertEqual(JavaString.hashCode("hello"), 99162322)
        XCTAssertEqual(JavaString.hashCode("Aa"), JavaString.hashCode("BB"))
        XCTAssertEqual(JavaString.hashCode("[t,0]"), 87540032)
        XCTAssertEqual(JavaString.hashCode("[foo,10]"), -1000248451)
        XCTAssertEqual(TopicPartition("foo", 10).description, "[foo,10]")
        XCTAssertTrue(tid("g_c-10") < tid("g_c-2"))
        XCTAssertTrue(tid("g_c-1") < tid("g_c-10"))
        XCTAssertTrue(tid("B-0") < tid("a-0"))   // code units, not locale order
    }

    func testRegistrationJSON() throws {
        let reg = ConsumerRegistration(.topics(["mytopic": 2]), timestamp: 1404263054520)
        XCTAssertEqual(reg.json(), #"{"version":1,"subscription":{"mytopic":2},"pattern":"static","timestamp":"1404263054520"}"#)
        XCTAssertEqual(try ConsumerRegistration.parse(Array(reg.json().utf8)), reg)

        let w = ConsumerRegistration(.filter(try TopicFilter(.whitelist, " 'a/b, c' "), streams: 1), timestamp: 1)
        XCTAssertEqual(w.json(), #"{"version":1,"subscription":{"a\/b|c":1},"pattern":"white_list","timestamp":"1"}"#)
        XCTAssertEqual(try ConsumerRegistration.parse(Array(w.json().utf8)), w)
        XCTAssertEqual(try ConsumerRegistration.parse(Array(#"{"version":1,"subscription":{"x.*":3},"pattern":"black_list","timestamp":"5"}"#.utf8)),
                       ConsumerRegistration(.filter(try TopicFilter(.blacklist, "x.*"), streams: 3), timestamp: 5))
        // A list pattern with an empty subscription, or an unknown pattern, reads as static.
        XCTAssertEqual(try ConsumerRegistration.parse(Array(#"{"version":1,"subscription":{},"pattern":"white_list","timestamp":"5"}"#.utf8)).subscription, .topics([:]))
        XCTAssertEqual(try ConsumerRegistration.parse(Array(#"{"version":1,"subscription":{"t":1},"pattern":"other","timestamp":"5"}"#.utf8)).subscription, .topics(["t": 1]))
        // pykafka's BalancedConsumer registers the bare topic name: not a Kafka registration.
        XCTAssertThrowsError(try ConsumerRegistration.parse(Array("mytopic".utf8))) { error in
            XCTAssertEqual("\(error)", "error constructing TopicCount : mytopic")
        }

        let filter = try TopicFilter(.whitelist, "t.*")
        XCTAssertTrue(filter.isTopicAllowed("tx"))
        XCTAssertFalse(filter.isTopicAllowed("xt"))   // whole-name match
        XCTAssertFalse(try TopicFilter(.whitelist, ".*").isTopicAllowed("__consumer_offsets"))
        XCTAssertTrue(try TopicFilter(.whitelist, ".*").isTopicAllowed("__consumer_offsets", excludeInternalTopics: false))
        XCTAssertThrowsError(try TopicFilter(.whitelist, "a("))
    }
}
