import KafkaCluster
import KafkaProtocol
import XCTest

/// The znode encodings, byte for byte as Kafka 0.8.2 writes them (kafka-0.8-cluster.md §1.1):
/// what other 0.8.2 brokers and tools, kazoo scripts and Burrow read.
final class ZnodeFormatTests: XCTestCase {
    func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

    // MARK: /consumers/<g>/offsets/<t>/<p>

    func testConsumerOffsetIsAPlainDecimal() {
        XCTAssertEqual(ConsumerOffsetData.encode(42), Array("42".utf8))
        XCTAssertEqual(ConsumerOffsetData.encode(0), Array("0".utf8))
        XCTAssertEqual(ConsumerOffsetData.encode(-1), Array("-1".utf8))
        XCTAssertEqual(ConsumerOffsetData.encode(Int64.max), Array("9223372036854775807".utf8))
    }

    func testConsumerOffsetDecodeTrimsWhitespaceOnly() {
        XCTAssertEqual(ConsumerOffsetData.decode(Array("42".utf8)), 42)
        XCTAssertEqual(ConsumerOffsetData.decode(Array(" 42\n".utf8)), 42)
        XCTAssertEqual(ConsumerOffsetData.decode(Array("\t7 ".utf8)), 7)
        XCTAssertEqual(ConsumerOffsetData.decode(Array("-1".utf8)), -1)
        XCTAssertNil(ConsumerOffsetData.decode(Array("4 2".utf8)))
        XCTAssertNil(ConsumerOffsetData.decode(Array("0x10".utf8)))
        XCTAssertNil(ConsumerOffsetData.decode(Array("{\"offset\":1}".utf8)))
        XCTAssertNil(ConsumerOffsetData.decode([]))
        XCTAssertNil(ConsumerOffsetData.decode(nil))
    }

    func testMalformedOffsetReadsAsJavasNumberFormatMessage() {
        // What 0.8.2's ConsumerOffsetChecker prints for such a node.
        XCTAssertEqual(ConsumerOffsetData.Malformed(path: "/consumers/g/offsets/t/0", text: "abc").description, "For input string: \"abc\"")
    }

    // MARK: /consumers/<g>/owners/<t>/<p>

    func testOwnerIsTheThreadIdAsText() {
        let id = "g_host-1428512949385-1a2b3c4d-0"
        XCTAssertEqual(PartitionOwnerData.encode(id), Array(id.utf8))
        XCTAssertEqual(PartitionOwnerData.decode(Array(id.utf8)), id)
        XCTAssertNil(PartitionOwnerData.decode(nil))
    }

    // MARK: /config/changes

    func testConfigChangeNotificationIsTheTopicAsAJSONString() {
        XCTAssertEqual(text(ConfigChangeNotification.encode(topic: "my.topic-1")), "\"my.topic-1\"")
        XCTAssertEqual(text(ConfigChangeNotification.encode(topic: "a_b")), "\"a_b\"")
        XCTAssertEqual(ConfigChangeNotification.decode(Array("\"my.topic-1\"".utf8)), "my.topic-1")
        XCTAssertEqual(ConfigChangeNotification.decode(Array(" \"t\"\n".utf8)), "t")
        XCTAssertEqual(ConfigChangeNotification.decode(Array("bare".utf8)), "bare")
    }

    func testConfigChangeSequenceNames() {
        XCTAssertEqual(ConfigChangeNotification.prefix, "config_change_")
        XCTAssertEqual(ConfigChangeNotification.childName(sequence: 7), "config_change_0000000007")
        XCTAssertEqual(ConfigChangeNotification.childName(sequence: 1234567890), "config_change_1234567890")
        XCTAssertEqual(ConfigChangeNotification.sequence("config_change_0000000007"), 7)
        XCTAssertEqual(ConfigChangeNotification.sequence("config_change_0000000000"), 0)
        XCTAssertNil(ConfigChangeNotification.sequence("other_0000000007"))
        XCTAssertNil(ConfigChangeNotification.sequence("config_change_x"))
    }

    // MARK: /config/topics/<t>

    func testTopicConfig() throws {
        XCTAssertEqual(TopicConfigData.json(["retention.ms": "86400000"]), "{\"version\":1,\"config\":{\"retention.ms\":\"86400000\"}}")
        XCTAssertEqual(TopicConfigData.json([:]), "{\"version\":1,\"config\":{}}")
        XCTAssertEqual(try TopicConfigData.parse(Array("{\"version\":1,\"config\":{\"segment.bytes\":\"1024\"}}".utf8), path: "/p"), ["segment.bytes": "1024"])
    }

    // MARK: /admin

    func testPreferredReplicaElection() throws {
        let json = "{\"version\":1,\"partitions\":[{\"topic\":\"foo\",\"partition\":1},{\"topic\":\"bar\",\"partition\":0}]}"
        XCTAssertEqual(PreferredReplicaElectionData.json([TopicPartition("foo", 1), TopicPartition("bar", 0)]), json)
        XCTAssertEqual(try PreferredReplicaElectionData.parse(Array(json.utf8), path: "/p"), [TopicPartition("foo", 1), TopicPartition("bar", 0)])
        // Tool input needs only "partitions".
        XCTAssertEqual(try PreferredReplicaElectionData.parse(Array("{\"partitions\":[{\"topic\":\"t\",\"partition\":2}]}".utf8), path: "/p"), [TopicPartition("t", 2)])
    }

    func testReassignment() throws {
        let json = "{\"version\":1,\"partitions\":[{\"topic\":\"foo\",\"partition\":1,\"replicas\":[1,2,3]}]}"
        XCTAssertEqual(ReassignmentData.json([TopicPartition("foo", 1): [1, 2, 3]]), json)
        XCTAssertEqual(try ReassignmentData.parse(Array(json.utf8), path: "/p"), [TopicPartition("foo", 1): [1, 2, 3]])
        XCTAssertThrowsError(try ReassignmentData.parse(Array("{\"version\":1}".utf8), path: "/p"))
    }

    /// The reassignment tool's files: entries in file order with duplicates kept (0.8.2
    /// `parsePartitionReassignmentDataWithoutDedup`), topics-to-move as 0.8.2 prints its example.
    func testReassignmentToolFiles() throws {
        let file = "{\"partitions\":\n\t[{\"topic\": \"foo\",\n\t  \"partition\": 1,\n\t  \"replicas\": [1,2,3] }, {\"topic\":\"foo\",\"partition\":1,\"replicas\":[2]}],\n\"version\":1\n}"
        let list = try ReassignmentData.parseList(Array(file.utf8), path: "r.json")
        XCTAssertEqual(list.map(\.0), [TopicPartition("foo", 1), TopicPartition("foo", 1)])
        XCTAssertEqual(list.map(\.1), [[1, 2, 3], [2]])
        XCTAssertEqual(try ReassignmentData.parseList(Array("{\"version\":1}".utf8), path: "r.json").count, 0)
        XCTAssertThrowsError(try ReassignmentData.parseList(Array("{\"partitions\":[{\"topic\":\"a\",\"partition\":0}]}".utf8), path: "r.json")) {
            XCTAssertEqual("\($0)", "bad data in ZooKeeper node r.json: entry without a \"replicas\" list of integers: {\"partition\":0,\"topic\":\"a\"}")
        }
        XCTAssertThrowsError(try ReassignmentData.parseList(Array("not json".utf8), path: "r.json"))
        XCTAssertEqual(TopicsToMoveData.json(["foo", "foo1"]), "{\"topics\":[{\"topic\":\"foo\"},{\"topic\":\"foo1\"}],\"version\":1}")
        XCTAssertEqual(try TopicsToMoveData.parse(Array("{\"topics\":\n\t[{\"topic\": \"foo\"},{\"topic\": \"foo1\"}],\n\"version\":1\n}".utf8), path: "t.json"), ["foo", "foo1"])
        XCTAssertThrowsError(try TopicsToMoveData.parse(Array("{\"topics\":[{\"name\":\"x\"}]}".utf8), path: "t.json"))
    }

    // MARK: Brokers, topics, state, controller

    func testBrokerTopicStateAndControllerJSON() {
        XCTAssertEqual(BrokerRegistration(id: 1, host: "h1", port: 9092, timestamp: 1428512949385).json(),
                       "{\"jmx_port\":-1,\"timestamp\":\"1428512949385\",\"host\":\"h1\",\"version\":1,\"port\":9092}")
        XCTAssertEqual(TopicAssignment.json([0: [2, 0], 1: [0, 1]]), "{\"version\":1,\"partitions\":{\"0\":[2,0],\"1\":[0,1]}}")
        XCTAssertEqual(LeaderIsrState(leader: 0, leaderEpoch: 0, isr: [0, 1], controllerEpoch: 1).json(),
                       "{\"controller_epoch\":1,\"leader\":0,\"version\":1,\"leader_epoch\":0,\"isr\":[0,1]}")
        XCTAssertEqual(ControllerRegistration.json(brokerId: 2, timestamp: 1428512949385), "{\"version\":1,\"brokerid\":2,\"timestamp\":\"1428512949385\"}")
    }

    func testPaths() {
        let tp = TopicPartition("t", 3)
        XCTAssertEqual(ZkPaths.consumerOffset("g", tp), "/consumers/g/offsets/t/3")
        XCTAssertEqual(ZkPaths.consumerOwner("g", tp), "/consumers/g/owners/t/3")
        XCTAssertEqual(ZkPaths.consumerIds("g"), "/consumers/g/ids")
        XCTAssertEqual(ZkPaths.deleteTopic("t"), "/admin/delete_topics/t")
        XCTAssertEqual(ZkPaths.reassignPartitions, "/admin/reassign_partitions")
        XCTAssertEqual(ZkPaths.preferredReplicaElection, "/admin/preferred_replica_election")
        XCTAssertEqual(ZkPaths.configChanges, "/config/changes")
    }
}
