import Foundation
import KafkaCluster
import KafkaProtocol
import KafkaTestSupport
import Logging
import XCTest
import ZooKeeper

/// `KafkaZooKeeper`'s group, offset, owner, config-change and admin operations against a real
/// ZooKeeper: each writes exactly 0.8.2's bytes, with 0.8.2's node mode, read back through a raw
/// client (as kazoo, Burrow or a 0.8.2 broker would see them).
final class KafkaZooKeeperOperationTests: XCTestCase {
    nonisolated(unsafe) static var server: ZooKeeperServer?

    override class func tearDown() {
        server?.stop()
        server = nil
        super.tearDown()
    }

    /// A KafkaZooKeeper under a fresh chroot, and a raw client on the same chroot.
    func clients(_ name: String = #function) async throws -> (KafkaZooKeeper, ZooKeeperClient) {
        if Self.server == nil { Self.server = try await ZooKeeperServer.start() }
        let connect = Self.server!.connectString + "/" + name.filter { $0.isLetter || $0.isNumber } + "-" + UUID().uuidString.prefix(8)
        let kzk = try await KafkaZooKeeper.connect(connect, sessionTimeoutMs: 10000, connectionTimeoutMs: 10000, createChroot: true)
        let raw = try await ZooKeeperClient.connect(connect, sessionTimeoutMs: 10000)
        return (kzk, raw)
    }

    func text(_ raw: ZooKeeperClient, _ path: String) async throws -> String? {
        try await raw.get(path).data.map { String(decoding: $0, as: UTF8.self) }
    }

    func testCommitConsumerOffsetWritesADecimalPersistentNode() async throws {
        let (kzk, raw) = try await clients()
        let tp = TopicPartition("t", 0)
        try await kzk.commitConsumerOffset(group: "g", tp, offset: 42)
        let (data, stat) = try await raw.get("/consumers/g/offsets/t/0")
        XCTAssertEqual(data, Array("42".utf8))
        XCTAssertEqual(stat.ephemeralOwner, 0)
        // Implicit parents are persistent with null data.
        let v1 = try await raw.get("/consumers/g/offsets/t")
        XCTAssertNil(v1.data)
        XCTAssertEqual(v1.stat.ephemeralOwner, 0)
        try await kzk.commitConsumerOffset(group: "g", tp, offset: 1234567890123)
        let v2 = try await text(raw, "/consumers/g/offsets/t/0")
        XCTAssertEqual(v2, "1234567890123")
        let v3 = try await kzk.consumerOffset(group: "g", tp)
        XCTAssertEqual(v3, 1234567890123)
        let v4 = try await kzk.hasConsumerOffsets(group: "g")
        XCTAssertTrue(v4)
        let v5 = try await kzk.hasConsumerOffsets(group: "g", topic: "t")
        XCTAssertTrue(v5)
        let v6 = try await kzk.hasConsumerOffsets(group: "g", topic: "u")
        XCTAssertFalse(v6)
        let v7 = try await kzk.hasConsumerOffsets(group: "other")
        XCTAssertFalse(v7)
        await kzk.close(); await raw.close()
    }

    func testConsumerOffsetReadsWhatOthersWrote() async throws {
        let (kzk, raw) = try await clients()
        let v8 = try await kzk.consumerOffset(group: "g", TopicPartition("t", 0))
        XCTAssertNil(v8)
        try await raw.createRecursive("/consumers/g/offsets/t/0", data: Array(" 17\n".utf8))
        let v9 = try await kzk.consumerOffset(group: "g", TopicPartition("t", 0))
        XCTAssertEqual(v9, 17)
        try await raw.createRecursive("/consumers/g/offsets/t/1", data: Array("x1".utf8))
        do {
            _ = try await kzk.consumerOffset(group: "g", TopicPartition("t", 1))
            XCTFail("a malformed offset must throw")
        } catch let e as ConsumerOffsetData.Malformed {
            XCTAssertEqual(e, ConsumerOffsetData.Malformed(path: "/consumers/g/offsets/t/1", text: "x1"))
        }
        await kzk.close(); await raw.close()
    }

    func testRegisterConsumerWritesTheGivenJSONEphemeral() async throws {
        let (kzk, raw) = try await clients()
        let json = "{\"version\":1,\"subscription\":{\"t\":1},\"pattern\":\"static\",\"timestamp\":\"1404263054520\"}"
        try await kzk.registerConsumer(group: "g", consumerId: "g_c1", registrationJSON: json, sessionTimeoutMs: 2000, logger: Logger(label: "t"))
        let (data, stat) = try await raw.get("/consumers/g/ids/g_c1")
        XCTAssertEqual(data, Array(json.utf8))
        XCTAssertEqual(stat.ephemeralOwner, kzk.sessionId)
        // Registering again on the same session is a no-op.
        try await kzk.registerConsumer(group: "g", consumerId: "g_c1", registrationJSON: json, sessionTimeoutMs: 2000, logger: Logger(label: "t"))
        let v10 = try await kzk.consumerIds(group: "g")
        XCTAssertEqual(v10, ["g_c1"])
        let v11 = try await kzk.consumerRegistrationData(group: "g", consumerId: "g_c1")
        XCTAssertEqual(v11, Array(json.utf8))
        let v12 = try await kzk.consumerRegistrationData(group: "g", consumerId: "gone")
        XCTAssertNil(v12)
        try await kzk.deleteConsumerGroup("g")
        let v13 = try await raw.exists("/consumers/g")
        XCTAssertNil(v13)
        await kzk.close(); await raw.close()
    }

    func testClaimAndReleaseOwnership() async throws {
        let (kzk, raw) = try await clients()
        let tp = TopicPartition("t", 2)
        let v14 = try await kzk.claimPartition(group: "g", tp, threadId: "g_c1-0")
        XCTAssertEqual(v14, .claimed)
        let (data, stat) = try await raw.get("/consumers/g/owners/t/2")
        XCTAssertEqual(data, Array("g_c1-0".utf8))
        XCTAssertEqual(stat.ephemeralOwner, kzk.sessionId)
        let v15 = try await kzk.claimPartition(group: "g", tp, threadId: "g_c1-0")
        XCTAssertEqual(v15, .claimed)
        let v16 = try await kzk.claimPartition(group: "g", tp, threadId: "g_c2-0")
        XCTAssertEqual(v16, .heldBy("g_c1-0"))
        let v17 = try await kzk.partitionOwner(group: "g", tp)
        XCTAssertEqual(v17, "g_c1-0")
        let v18 = try await kzk.ownedTopics(group: "g")
        XCTAssertEqual(v18, ["t"])
        let v19 = try await kzk.ownedTopics(group: "none")
        XCTAssertNil(v19)
        try await kzk.releasePartition(group: "g", tp)
        try await kzk.releasePartition(group: "g", tp)   // a missing node is fine
        let v20 = try await kzk.partitionOwner(group: "g", tp)
        XCTAssertNil(v20)
        await kzk.close(); await raw.close()
    }

    func testConfigChangeNotification() async throws {
        let (kzk, raw) = try await clients()
        try await kzk.notifyTopicConfigChange("my.topic")
        try await kzk.notifyTopicConfigChange("other")
        let children = try await raw.children("/config/changes").sorted()
        XCTAssertEqual(children, [ConfigChangeNotification.childName(sequence: 0), ConfigChangeNotification.childName(sequence: 1)])
        let (data, stat) = try await raw.get("/config/changes/" + children[0])
        XCTAssertEqual(data, Array("\"my.topic\"".utf8))
        XCTAssertEqual(stat.ephemeralOwner, 0)
        let v21 = try await kzk.configChanges().sorted()
        XCTAssertEqual(v21, children)
        let v22 = try await kzk.configChangeTopic(children[0])
        XCTAssertEqual(v22, "my.topic")
        let v23 = try await kzk.configChangeTopic(children[1])
        XCTAssertEqual(v23, "other")
        let v24 = try await kzk.configChangeTopic("config_change_0000000099")
        XCTAssertNil(v24)
        await kzk.close(); await raw.close()
    }

    func testTopicConfigAndAssignmentWrites() async throws {
        let (kzk, raw) = try await clients()
        try await kzk.createTopic("t", assignment: [0: [0]])
        let v25 = try await text(raw, "/config/topics/t")
        XCTAssertEqual(v25, "{\"version\":1,\"config\":{}}")
        let v26 = try await text(raw, "/brokers/topics/t")
        XCTAssertEqual(v26, "{\"version\":1,\"partitions\":{\"0\":[0]}}")
        try await kzk.writeAssignment("t", [0: [0], 1: [1]])
        let v27 = try await text(raw, "/brokers/topics/t")
        XCTAssertEqual(v27, "{\"version\":1,\"partitions\":{\"0\":[0],\"1\":[1]}}")
        let v28 = try await kzk.topicExists("t")
        XCTAssertTrue(v28)
        let v29 = try await kzk.topicExists("u")
        XCTAssertFalse(v29)
        let v30 = try await kzk.topicsWithConfig()
        XCTAssertEqual(v30, ["t"])
        await kzk.close(); await raw.close()
    }

    func testTopicDeletion() async throws {
        let (kzk, raw) = try await clients()
        try await kzk.createTopic("t", assignment: [0: [0]], config: ["retention.ms": "1000"])
        try await kzk.createPartitionState(TopicPartition("t", 0), LeaderIsrState(leader: 0, leaderEpoch: 0, isr: [0], controllerEpoch: 1))
        let v31 = try await kzk.markTopicForDeletion("t")
        XCTAssertTrue(v31)
        let v32 = try await kzk.markTopicForDeletion("t")
        XCTAssertFalse(v32)
        let (data, stat) = try await raw.get("/admin/delete_topics/t")
        XCTAssertEqual(data ?? [], [])
        XCTAssertEqual(stat.dataLength, 0)   // an empty string, not null
        let v33 = try await kzk.topicsMarkedForDeletion()
        XCTAssertEqual(v33, ["t"])
        try await kzk.deleteTopicNodes("t")
        let v34 = try await raw.exists("/brokers/topics/t")
        XCTAssertNil(v34)
        let v35 = try await raw.exists("/config/topics/t")
        XCTAssertNil(v35)
        let v36 = try await raw.exists("/admin/delete_topics/t")
        XCTAssertNil(v36)
        await kzk.close(); await raw.close()
    }

    func testPreferredReplicaElection() async throws {
        let (kzk, raw) = try await clients()
        let v37 = try await kzk.preferredReplicaElectionData()
        XCTAssertNil(v37)
        let parts = [TopicPartition("foo", 1), TopicPartition("foo", 0)]
        let started = try await kzk.startPreferredReplicaElection(parts)
        XCTAssertNil(started)
        let json = "{\"version\":1,\"partitions\":[{\"topic\":\"foo\",\"partition\":1},{\"topic\":\"foo\",\"partition\":0}]}"
        let v38 = try await text(raw, "/admin/preferred_replica_election")
        XCTAssertEqual(v38, json)
        let again = try await kzk.startPreferredReplicaElection([TopicPartition("bar", 0)])
        XCTAssertEqual(again, .some(.some(parts)))
        let v39 = try await text(raw, "/admin/preferred_replica_election")
        XCTAssertEqual(v39, json)   // untouched
        let v40 = try await kzk.preferredReplicaElectionData()
        XCTAssertEqual(v40, .some(Array(json.utf8)))
        try await kzk.completePreferredReplicaElection()
        let v41 = try await raw.exists("/admin/preferred_replica_election")
        XCTAssertNil(v41)
        await kzk.close(); await raw.close()
    }

    func testReassignment() async throws {
        let (kzk, raw) = try await clients()
        let v42 = try await kzk.reassignment()
        XCTAssertNil(v42)
        let v43 = try await kzk.startReassignment([TopicPartition("foo", 1): [1, 2, 3]])
        XCTAssertTrue(v43)
        let v44 = try await kzk.startReassignment([TopicPartition("foo", 0): [1]])
        XCTAssertFalse(v44)
        let v45 = try await text(raw, "/admin/reassign_partitions")
        XCTAssertEqual(v45, "{\"version\":1,\"partitions\":[{\"topic\":\"foo\",\"partition\":1,\"replicas\":[1,2,3]}]}")
        let v46 = try await kzk.reassignment()
        XCTAssertEqual(v46, [TopicPartition("foo", 1): [1, 2, 3]])
        await kzk.close(); await raw.close()
    }

    /// The controller removes finished partitions; the node is rewritten byte-exact, and
    /// deleted with the last one (0.8.2 `updatePartitionReassignmentData`).
    func testRemoveFromReassignmentRewritesThenDeletes() async throws {
        let (kzk, raw) = try await clients()
        let a = TopicPartition("foo", 0), b = TopicPartition("foo", 1)
        let none0 = try await kzk.removeFromReassignment([a])
        XCTAssertEqual(none0, [:])
        _ = try await kzk.startReassignment([a: [1, 2], b: [2, 3]])
        let left = try await kzk.removeFromReassignment([a])
        XCTAssertEqual(left, [b: [2, 3]])
        let v1 = try await text(raw, "/admin/reassign_partitions")
        XCTAssertEqual(v1, "{\"version\":1,\"partitions\":[{\"topic\":\"foo\",\"partition\":1,\"replicas\":[2,3]}]}")
        let none1 = try await kzk.removeFromReassignment([b])
        XCTAssertEqual(none1, [:])
        let gone = try await raw.exists("/admin/reassign_partitions")
        XCTAssertNil(gone)
        // The state watch of a reassigned partition: nil without a node.
        let none = try await kzk.watchPartitionState(a)
        XCTAssertNil(none)
        await kzk.close(); await raw.close()
    }

    func testBrokerLookupAndDeregistrationOfOwnNodeOnly() async throws {
        let (kzk, raw) = try await clients()
        try await kzk.ensurePersistentPaths()
        let reg = BrokerRegistration(id: 3, host: "h3", port: 9093, timestamp: 1428512949385)
        try await kzk.registerBroker(reg, sessionTimeoutMs: 2000, logger: Logger(label: "t"))
        let v47 = try await text(raw, "/brokers/ids/3")
        XCTAssertEqual(v47, "{\"jmx_port\":-1,\"timestamp\":\"1428512949385\",\"host\":\"h3\",\"version\":1,\"port\":9093}")
        let v48 = try await kzk.broker(3)
        XCTAssertEqual(v48, reg)
        let v49 = try await kzk.broker(4)
        XCTAssertNil(v49)
        // A node of another session is never removed.
        try await raw.create("/brokers/ids/4", data: Array(BrokerRegistration(id: 4, host: "h4", port: 1).json().utf8), mode: .ephemeral)
        let v50 = try await kzk.deregisterBroker(4)
        XCTAssertFalse(v50)
        let v51 = try await raw.exists("/brokers/ids/4")
        XCTAssertNotNil(v51)
        let v52 = try await kzk.deregisterBroker(3)
        XCTAssertTrue(v52)
        let v53 = try await raw.exists("/brokers/ids/3")
        XCTAssertNil(v53)
        await kzk.close(); await raw.close()
    }

    /// `electController` for each state of `/controller`: who is controller afterwards (-1: this
    /// broker's node of another session, to be waited out), and whose session holds the node.
    func testElectControllerDecisions() async throws {
        enum Holder { case none, other, ownOtherSession, ownThisSession }
        let cases: [(holder: Holder, replace: Bool, winner: Int32, heldByKzk: Bool)] = [
            (.none, false, 1, true),
            (.other, false, 2, false),
            (.other, true, 2, false),                // another broker's node is never touched
            (.ownOtherSession, false, -1, false),    // wait for the old session to expire
            (.ownOtherSession, true, 1, true),       // a dead process of this broker: replaced at once
            (.ownThisSession, false, 1, true),
        ]
        for c in cases {
            let (kzk, raw) = try await clients("electController\(c.holder)\(c.replace)")
            switch c.holder {
            case .none: break
            case .other:
                try await raw.create("/controller", data: Array(ControllerRegistration.json(brokerId: 2).utf8), mode: .ephemeral)
            case .ownOtherSession:
                try await raw.create("/controller", data: Array(ControllerRegistration.json(brokerId: 1).utf8), mode: .ephemeral)
            case .ownThisSession:
                _ = try await kzk.electController(brokerId: 1)
            }
            let winner = try await kzk.electController(brokerId: 1, replaceStaleOwnNode: c.replace, logger: Logger(label: "t"))
            XCTAssertEqual(winner, c.winner, "\(c)")
            let (data, stat) = try await raw.get("/controller")
            XCTAssertEqual(stat.ephemeralOwner == kzk.sessionId, c.heldByKzk, "\(c)")
            XCTAssertEqual(try ControllerRegistration.parseBrokerId(data), c.heldByKzk ? 1 : (c.holder == .other ? 2 : 1), "\(c)")
            await kzk.close(); await raw.close()
        }
    }
}
