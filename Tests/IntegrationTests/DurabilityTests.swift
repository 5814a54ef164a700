import Foundation
import KafkaTestSupport
import XCTest
import ZooKeeper

/// Durability settings and log failures with real broker processes (issue 7 items 2, 3 and 7):
/// every setting the broker accepts takes effect, and the broker halts rather than lose or
/// discard acknowledged data.
final class DurabilityTests: IntegrationTestCase {
    static let fast = ReplicationTests.fast.merging(["replica.high.watermark.checkpoint.interval.ms": "100"]) { _, n in n }

    private func broker(_ c: TestCluster, _ id: Int32) -> TestBroker { c.brokers.first { $0.id == Int(id) }! }

    private func create(_ c: TestCluster, _ topic: String, _ extra: [String]) throws {
        let r = try Project.run("kafka-topics.sh", ["--zookeeper", c.zkConnect, "--create", "--topic", topic] + extra)
        XCTAssertEqual(r.exitCode, 0, r.summary)
    }

    // MARK: item 2

    /// `min.insync.replicas=2` in server.properties (no topic override) refuses acks=-1 once the
    /// ISR is the leader alone. Kafka 0.8.2.2 ignores the broker value; this broker does not.
    /// Properties this broker accepts without acting on are named in a start-up warning.
    func testItem2_BrokerWideMinInsyncReplicasRefusesAcksAll() async throws {
        let c = try await startCluster(brokerIds: [1, 2, 3], overrides: Self.fast.merging([
            "min.insync.replicas": "2", "num.replica.fetchers": "1",
        ]) { _, n in n })
        let zk = try await ZkInspector.connect(c.zkConnect)
        defer { Task { await zk.close() } }
        let topic = "brokerwide"
        try create(c, topic, ["--replica-assignment", "1:2:3"])
        try await zk.waitForState(topic, 0, timeout: 30, "leader 1 and a full ISR") { $0.leader == 1 && $0.isr.count == 3 }
        let leader = broker(c, 1)
        try c.waitForLeaders(topic: topic, broker: leader)
        let conn = try leader.connect()
        XCTAssertEqual(try conn.produce(topic: topic, messages: [(key: nil, value: "isr-3")], acks: -1).error, 0)

        broker(c, 2).kill9()
        broker(c, 3).kill9()
        try await zk.waitForState(topic, 0, timeout: 30, "an ISR of the leader alone") { $0.isr == [1] }
        let refused = try poll(timeout: 10, "the leader to see its ISR of one") { () -> (error: Int16, offset: Int64)? in
            let r = try conn.produce(topic: topic, messages: [(key: nil, value: "refused")], acks: -1, timeoutMs: 2000)
            return r.error == 19 ? r : nil
        }
        XCTAssertEqual(refused.error, 19, "NotEnoughReplicas from the broker-wide min.insync.replicas")
        XCTAssertEqual(try conn.fetchAll(topic: topic).map(\.value), ["isr-3"], "the refused produce appended nothing")
        XCTAssertEqual(try conn.produce(topic: topic, messages: [(key: nil, value: "acks-1")], acks: 1).error, 0)

        XCTAssertTrue(leader.output().contains("Property num.replica.fetchers is accepted for Kafka 0.8.2 compatibility but has no effect"),
                      leader.tail(80))
    }

    /// `unclean.leader.election.enable=false` on the topic, the broker default true: when the
    /// only ISR member dies, the out-of-sync replica that comes back is not elected; the
    /// partition waits for its ISR member and keeps every acknowledged message.
    func testItem2_TopicLevelUncleanElectionDisabledWaitsForTheIsr() async throws {
        let c = try await startCluster(brokerIds: [1, 2], overrides: Self.fast)
        let zk = try await ZkInspector.connect(c.zkConnect)
        defer { Task { await zk.close() } }
        let topic = "topicunclean"
        try create(c, topic, ["--replica-assignment", "1:2", "--config", "unclean.leader.election.enable=false"])
        try await zk.waitForState(topic, 0, timeout: 30, "leader 1 and a full ISR") { $0.leader == 1 && $0.isr.count == 2 }
        let leader = broker(c, 1), follower = broker(c, 2)
        try c.waitForLeaders(topic: topic, broker: leader)
        follower.kill9()
        try await zk.waitForState(topic, 0, timeout: 30, "an ISR of the leader alone") { $0.isr == [1] }
        let conn = try leader.connect()
        for i in 0..<5 {
            XCTAssertEqual(try conn.produce(topic: topic, messages: [(key: nil, value: "only-on-1-\(i)")], acks: 1).error, 0)
        }
        leader.kill9()
        // Broker 2 comes back alone and becomes the controller: its failover finds the only
        // ISR member dead and must not elect itself.
        try follower.start()
        try follower.waitUntilReady()
        _ = try await pollAsync(timeout: 30, "broker 2 to become the controller") { try await zk.controllerId() == 2 ? true : nil }
        let offline = try await zk.waitForState(topic, 0, timeout: 30, "the controller to mark the partition offline") { $0.leader != 1 }
        XCTAssertEqual(offline.leader, -1, "the out-of-sync replica 2 was elected although the topic forbids it")
        try await Task.sleep(nanoseconds: 2_000_000_000)
        let state = try await zk.partitionState(topic, 0)
        XCTAssertEqual(state?.leader, -1, "the out-of-sync replica 2 was elected although the topic forbids it")
        try leader.start()
        try leader.waitUntilReady()
        try await zk.waitForState(topic, 0, timeout: 30, "broker 1 leading again") { $0.leader == 1 }
        try c.waitForLeaders(topic: topic, broker: leader)
        XCTAssertEqual(try leader.connect().fetchAll(topic: topic).compactMap(\.value), (0..<5).map { "only-on-1-\($0)" })
    }

    // MARK: item 3

    /// The leader lost its disk and came back empty while it was the only ISR member; the
    /// follower holds acknowledged messages above the leader's log end. With unclean election
    /// disabled the follower halts (as 0.8.2 does) instead of truncating them away.
    func testItem3_FollowerAheadOfLeaderHaltsInsteadOfTruncating() async throws {
        let c = try await startCluster(brokerIds: [1, 2], overrides: Self.fast.merging([
            "unclean.leader.election.enable": "false",
        ]) { _, n in n })
        let zk = try await ZkInspector.connect(c.zkConnect)
        defer { Task { await zk.close() } }
        let topic = "ahead"
        try create(c, topic, ["--replica-assignment", "1:2"])
        try await zk.waitForState(topic, 0, timeout: 30, "leader 1 and a full ISR") { $0.leader == 1 && $0.isr.count == 2 }
        let leader = broker(c, 1), follower = broker(c, 2)
        try c.waitForLeaders(topic: topic, broker: leader)
        let conn = try leader.connect()
        for i in 0..<10 {
            XCTAssertEqual(try conn.produce(topic: topic, messages: [(key: nil, value: "m\(i)")], acks: -1).error, 0)
        }
        // The follower learns the high watermark 10 on its next fetch and checkpoints it.
        let followerDir = follower.logDir + "/\(topic)-0"
        try poll(timeout: 10, "the follower's high-watermark checkpoint to reach 10") { () -> Bool? in
            let text = (try? String(contentsOfFile: follower.logDir + "/replication-offset-checkpoint", encoding: .utf8)) ?? ""
            return text.contains("\(topic) 0 10") ? true : nil
        }
        follower.kill9()
        try await zk.waitForState(topic, 0, timeout: 30, "an ISR of the leader alone") { $0.isr == [1] }
        leader.kill9()
        // The leader's disk is lost: it restarts with an empty log dir and leads again (it is
        // the only ISR member), with log end 0.
        try FileManager.default.removeItem(atPath: leader.logDir)
        try leader.start()
        try leader.waitUntilReady()
        try poll(timeout: 30, "the restarted leader to lead with an empty log") { () -> Bool? in
            let restarted = leader.output().components(separatedBy: "=== restart ===").last ?? ""
            return restarted.contains("is now leader of [\(topic),0]") ? true : nil
        }

        try follower.start()
        let code = try poll(timeout: 60, "the follower to halt") { follower.process?.exitStatus }
        XCTAssertEqual(code, 1, follower.tail(40))
        XCTAssertTrue(follower.output().contains("Halting"), follower.tail(40))
        XCTAssertFalse(follower.output().contains("to the leader's log end"), "the follower truncated:\n\(follower.tail(40))")
        XCTAssertEqual(try dumpedMessages(partitionDir: followerDir).count, 10, "the follower kept the 10 acknowledged messages")
    }

    // MARK: item 7

    /// A failed fsync (through the fault shim) with `log.flush.interval.messages=1`: the produce
    /// whose flush failed is not acknowledged and the broker halts without a clean-shutdown
    /// marker; the next start recovers the log with every acknowledged message.
    func testItem7_FailedFsyncHaltsBeforeAcknowledgingAndForcesRecovery() async throws {
        let gcc = try Project.requireTool("gcc", install: "apt-get install gcc")
        let c = try await startCluster(brokerIds: [], overrides: Self.fast)
        let shim = c.directory + "/fault_shim.so"
        let build = try ProcessRunner.run(gcc, ["-shared", "-fPIC", "-O2", "-o", shim, Project.root + "/Tests/faults/fault_shim.c", "-ldl"], timeout: 120)
        XCTAssertEqual(build.exitCode, 0, build.summary)
        let control = c.directory + "/shim-control"
        try Data("00".utf8).write(to: URL(fileURLWithPath: control))
        let b = try c.addBroker(id: 0, overrides: ["log.flush.interval.messages": "1"])
        b.environment = ["LD_PRELOAD": shim, "FAULT_SHIM_CONTROL": control, "FAULT_SHIM_PREFIX": b.logDir]
        try b.start()
        try b.waitUntilReady()
        try c.createTopic("synced")
        try c.waitForLeaders(topic: "synced", broker: b)
        let conn = try b.connect()
        for i in 0..<3 {
            XCTAssertEqual(try conn.produce(topic: "synced", messages: [(key: nil, value: "acked-\(i)")], acks: 1).error, 0)
        }

        try Data("10".utf8).write(to: URL(fileURLWithPath: control))   // fsync fails from now on
        let answer = Result { try conn.produce(topic: "synced", messages: [(key: nil, value: "unsynced")], acks: 1, timeoutMs: 5000) }
        if case .success(let r) = answer { XCTAssertNotEqual(r.error, 0, "a produce whose fsync failed was acknowledged") }
        let code = try poll(timeout: 20, "the broker to halt") { b.process?.exitStatus }
        XCTAssertEqual(code, 1, b.tail(30))
        XCTAssertTrue(b.output().contains("Halting"), b.tail(30))
        XCTAssertFalse(FileManager.default.fileExists(atPath: b.logDir + "/.kafka_cleanshutdown"), "no clean-shutdown marker after the halt")

        try Data("00".utf8).write(to: URL(fileURLWithPath: control))
        try b.start()
        try b.waitUntilReady()
        try c.waitForLeaders(topic: "synced", broker: b)
        let restarted = b.output().components(separatedBy: "=== restart ===").last ?? ""
        XCTAssertTrue(restarted.contains("Found no clean shutdown marker"), b.tail(60))
        let values = try b.connect().fetchAll(topic: "synced").compactMap(\.value)
        XCTAssertEqual(Array(values.prefix(3)), ["acked-0", "acked-1", "acked-2"], "every acknowledged message survives")
    }
}
