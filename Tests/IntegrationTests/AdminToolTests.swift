import Foundation
import KafkaTestSupport
import XCTest
import ZooKeeper

/// bin/kafka-simple-consumer-shell.sh, bin/kafka-preferred-replica-election.sh and topic
/// deletion against a real broker.
final class AdminToolTests: XCTestCase {
    func testSimpleConsumerShellPreferredElectionAndDelete() async throws {
        let cluster = try await TestCluster.start(brokerIds: [0], overrides: ["delete.topic.enable": "true"])
        defer { cluster.stop() }
        try cluster.createTopic("shell", partitions: 2)
        let conn = try cluster.broker.connect()
        for _ in 0..<100 {
            if let t = try conn.metadata(["shell"]).topic("shell"), t.error == 0, t.partitions.count == 2 { break }
            usleep(100_000)
        }
        XCTAssertEqual(try conn.produce(topic: "shell", partition: 1, messages: [(key: "a", value: "1"), (key: "b", value: "2"), (key: "c", value: "3")]).error, 0)

        // Simple consumer shell: every message of partition 1 from the beginning, then stop.
        let shell = try Project.run("kafka-simple-consumer-shell.sh", ["--broker-list", cluster.brokerList, "--topic", "shell", "--partition", "1",
                                                                      "--offset", "-2", "--no-wait-at-logend", "--print-offsets",
                                                                      "--property", "print.key=true"])
        XCTAssertEqual(shell.exitCode, 0, shell.summary)
        XCTAssertEqual(shell.stdout, "a\t1\nnext offset = 1\nb\t2\nnext offset = 2\nc\t3\nnext offset = 3\n", shell.summary)
        XCTAssertTrue(shell.stderr.contains("Terminating. Reached the end of partition (shell, 1) at offset 3"), shell.summary)
        let from2 = try Project.run("kafka-simple-consumer-shell.sh", ["--broker-list", cluster.brokerList, "--topic", "shell", "--partition", "1",
                                                                      "--offset", "2", "--max-messages", "1"])
        XCTAssertEqual(from2.stdout, "3\n", from2.summary)
        let bad = try Project.run("kafka-simple-consumer-shell.sh", ["--broker-list", cluster.brokerList, "--topic", "shell", "--partition", "7"])
        XCTAssertEqual(bad.exitCode, 1, bad.summary)
        XCTAssertTrue(bad.stderr.contains("partition 7 does not exist"), bad.summary)

        // Preferred replica election: the node is created, processed and removed by the controller.
        let election = try Project.run("kafka-preferred-replica-election.sh", ["--zookeeper", cluster.zkConnect])
        XCTAssertEqual(election.exitCode, 0, election.summary)
        XCTAssertTrue(election.stdout.contains("Successfully started preferred replica election for partitions Set([shell,0], [shell,1])"), election.summary)
        let zk = try await ZooKeeperClient.connect(cluster.zkConnect)
        var pending = true
        for _ in 0..<100 {
            pending = try await zk.exists("/admin/preferred_replica_election") != nil
            if !pending { break }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        XCTAssertFalse(pending, "the controller did not process the election:\n\(cluster.broker.tail(20))")

        // Topic deletion with delete.topic.enable=true: gone from ZooKeeper, metadata and disk.
        let del = try Project.run("kafka-topics.sh", ["--zookeeper", cluster.zkConnect, "--delete", "--topic", "shell"])
        XCTAssertEqual(del.exitCode, 0, del.summary)
        var gone = false
        for _ in 0..<100 {
            gone = try await zk.exists("/brokers/topics/shell") == nil && !FileManager.default.fileExists(atPath: cluster.broker.logDir + "/shell-1")
            if gone { break }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        XCTAssertTrue(gone, cluster.broker.tail(20))
        let list = try Project.run("kafka-topics.sh", ["--zookeeper", cluster.zkConnect, "--list"])
        XCTAssertFalse(list.stdout.contains("shell"), list.summary)
        XCTAssertNil(try conn.metadata([]).topic("shell"))
        await zk.close()
    }

    /// OffsetCommit v0 writes ZooKeeper paths built from the group and topic: a group that is
    /// not a legal name gets an error and writes nothing, a legal one is stored as Kafka does.
    func testOffsetCommitGroupNamesArePathSafe() async throws {
        let cluster = try await TestCluster.start(brokerIds: [0])
        defer { cluster.stop() }
        try cluster.createTopic("committed")
        let conn = try cluster.broker.connect()
        for _ in 0..<100 {
            if let t = try conn.metadata(["committed"]).topic("committed"), t.error == 0, t.partitions.first?.leader == 0 { break }
            usleep(100_000)
        }
        func commit(group: String, offset: Int64) throws -> Int16 {
            var w = WireWriter()
            w.string(group)
            w.int32(1)
            w.string("committed")
            w.int32(1)
            w.int32(0)
            w.int64(offset)
            w.string("")
            _ = try conn.sendRequest(apiKey: 8, apiVersion: 0, body: w.bytes)
            var r = try conn.receiveResponse().body
            _ = try r.int32(); _ = try r.string(); _ = try r.int32(); _ = try r.int32()
            return try r.int16()
        }
        let zk = try await ZooKeeperClient.connect(cluster.zkConnect)
        for bad in ["a/b", "..", "x y", ""] {
            XCTAssertEqual(try commit(group: bad, offset: 5), -1, "group \"\(bad)\"")
        }
        let stray = try await zk.exists("/consumers/a")
        XCTAssertNil(stray, "nothing written for group a/b")
        XCTAssertEqual(try commit(group: "good-group.1", offset: 7), 0)
        let (data, _) = try await zk.get("/consumers/good-group.1/offsets/committed/0")
        XCTAssertEqual(String(decoding: data ?? [], as: UTF8.self), "7")
        await zk.close()
    }
}
