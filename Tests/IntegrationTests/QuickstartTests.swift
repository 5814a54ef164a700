import Foundation
import KafkaTestSupport
import XCTest

/// The Kafka 0.8 quickstart, run through this project's bin/ scripts against a real ZooKeeper and broker.
final class QuickstartTests: IntegrationTestCase {
    func testQuickstartTranscript() async throws {
        let c = try await startCluster(brokerIds: [0])
        let zk = c.zkConnect

        // bin/kafka-topics.sh --create
        let create = try Project.run("kafka-topics.sh", ["--zookeeper", zk, "--create", "--topic", "test",
                                                         "--partitions", "1", "--replication-factor", "1"])
        XCTAssertEqual(create.exitCode, 0, create.summary)
        XCTAssertEqual(create.stdout, "Created topic \"test\".\n", create.summary)

        // --list
        let list = try Project.run("kafka-topics.sh", ["--zookeeper", zk, "--list"])
        XCTAssertEqual(list.exitCode, 0, list.summary)
        XCTAssertEqual(list.stdout.split(separator: "\n").map(String.init), ["test"], list.summary)

        // --describe, once the controller has elected the leader
        let expected = "Topic:test\tPartitionCount:1\tReplicationFactor:1\tConfigs:\n"
            + "\tTopic: test\tPartition: 0\tLeader: 0\tReplicas: 0\tIsr: 0\n"
        var describe = try Project.run("kafka-topics.sh", ["--zookeeper", zk, "--describe", "--topic", "test"])
        let deadline = Date().addingTimeInterval(20)
        while describe.stdout != expected && Date() < deadline {
            usleep(200_000)
            describe = try Project.run("kafka-topics.sh", ["--zookeeper", zk, "--describe", "--topic", "test"])
        }
        XCTAssertEqual(describe.exitCode, 0, describe.summary)
        XCTAssertEqual(describe.stdout, expected, describe.summary)
        // Without --topic it describes every topic: the same output here.
        let describeAll = try Project.run("kafka-topics.sh", ["--zookeeper", zk, "--describe"])
        XCTAssertEqual(describeAll.stdout, expected, describeAll.summary)

        // Console producer: each stdin line is one message.
        let produce = try Project.run("kafka-console-producer.sh",
                                      ["--broker-list", "127.0.0.1:\(c.broker.port)", "--topic", "test"],
                                      stdin: "This is a message\nThis is another message\n")
        XCTAssertEqual(produce.exitCode, 0, produce.summary)

        // Console consumer from the beginning.
        let consume = try Project.run("kafka-console-consumer.sh",
                                      ["--zookeeper", zk, "--topic", "test", "--from-beginning", "--max-messages", "2"],
                                      timeout: 90)
        XCTAssertEqual(consume.exitCode, 0, consume.summary)
        XCTAssertEqual(consume.stdout, "This is a message\nThis is another message\n", consume.summary)
        XCTAssertTrue(consume.stderr.contains("Consumed 2 messages"), consume.summary)

        // The log on disk: <log.dirs>/test-0/00000000000000000000.log and .index
        let partitionDir = "\(c.broker.logDir)/test-0"
        let files = (try? FileManager.default.contentsOfDirectory(atPath: partitionDir)) ?? []
        XCTAssertTrue(files.contains("00000000000000000000.log"), "files in \(partitionDir): \(files)")
        XCTAssertTrue(files.contains("00000000000000000000.index"), "files in \(partitionDir): \(files)")

        // The same two messages over the wire, at offsets 0 and 1.
        let conn = try c.broker.connect()
        let got = try conn.fetchAll(topic: "test")
        XCTAssertEqual(got.map(\.offset), [0, 1])
        XCTAssertEqual(got.map(\.value), ["This is a message", "This is another message"])
        XCTAssertEqual(got.map(\.key), [nil, nil])
    }

    func testConsoleProducerWithKeys() async throws {
        let c = try await startCluster(brokerIds: [0])
        try c.createTopic("keyed")
        try c.waitForLeaders(topic: "keyed")
        let produce = try Project.run("kafka-console-producer.sh",
                                      ["--broker-list", "127.0.0.1:\(c.broker.port)", "--topic", "keyed",
                                       "--property", "parse.key=true", "--property", "key.separator=:",
                                       "--request-required-acks", "1", "--sync"],
                                      stdin: "k1:v1\nk2:v2:with colon\n")
        XCTAssertEqual(produce.exitCode, 0, produce.summary)
        let got = try poll(timeout: 15, "two messages in keyed-0") { () -> [WireMessage]? in
            let m = try c.broker.connect().fetchAll(topic: "keyed")
            return m.count >= 2 ? m : nil
        }
        XCTAssertEqual(got.map(\.key), ["k1", "k2"])
        XCTAssertEqual(got.map(\.value), ["v1", "v2:with colon"])
        XCTAssertEqual(got.map(\.offset), [0, 1])
    }

    func testCreatingAnExistingTopicFails() async throws {
        let c = try await startCluster(brokerIds: [0])
        try c.createTopic("dup")
        let again = try Project.run("kafka-topics.sh", ["--zookeeper", c.zkConnect, "--create", "--topic", "dup",
                                                        "--partitions", "1", "--replication-factor", "1"])
        XCTAssertNotEqual(again.exitCode, 0, again.summary)
        XCTAssertTrue((again.stdout + again.stderr).contains("Topic \"dup\" already exists."), again.summary)
        XCTAssertFalse(again.stdout.contains("Created topic"), again.summary)
    }

    func testReplicationFactorLargerThanLiveBrokersFails() async throws {
        let c = try await startCluster(brokerIds: [0])
        let r = try Project.run("kafka-topics.sh", ["--zookeeper", c.zkConnect, "--create", "--topic", "rf3",
                                                    "--partitions", "1", "--replication-factor", "3"])
        XCTAssertNotEqual(r.exitCode, 0, r.summary)
        XCTAssertTrue((r.stdout + r.stderr).contains("replication factor: 3 larger than available brokers: 1"), r.summary)
        let list = try Project.run("kafka-topics.sh", ["--zookeeper", c.zkConnect, "--list"])
        XCTAssertFalse(list.stdout.contains("rf3"), "the topic must not be created:\n\(list.summary)")
    }

    func testBadTopicNameFails() async throws {
        let c = try await startCluster(brokerIds: [0])
        for bad in ["bad/name", "bad name", "b@d"] {
            let r = try Project.run("kafka-topics.sh", ["--zookeeper", c.zkConnect, "--create", "--topic", bad,
                                                        "--partitions", "1", "--replication-factor", "1"])
            XCTAssertNotEqual(r.exitCode, 0, "topic \(bad): \(r.summary)")
            XCTAssertTrue((r.stdout + r.stderr).contains("illegal"), "topic \(bad): \(r.summary)")
        }
        let list = try Project.run("kafka-topics.sh", ["--zookeeper", c.zkConnect, "--list"])
        XCTAssertEqual(list.stdout, "", list.summary)
    }
}

/// The bin/ scripts themselves: help texts, usage errors, a missing build. No cluster needed.
final class ScriptTests: XCTestCase {
    func testToolsPrintHelpWithoutArguments() throws {
        try Project.requireReleaseBuild()
        let expectations: [(String, [String])] = [
            ("kafka-topics.sh", ["--zookeeper", "--create", "--list", "--describe", "--partitions", "--replication-factor"]),
            ("kafka-console-producer.sh", ["--broker-list", "--topic"]),
            ("kafka-console-consumer.sh", ["--zookeeper", "--topic", "--from-beginning", "--max-messages"]),
            ("kafka-producer-perf-test.sh", ["--broker-list", "--messages"]),
            ("kafka-consumer-perf-test.sh", ["--zookeeper", "--topic"]),
            ("kafka-dump-log.sh", ["--files"]),
        ]
        for (script, options) in expectations {
            let r = try Project.run(script, [], timeout: 30)
            XCTAssertNotEqual(r.exitCode, 0, "\(script) without arguments: \(r.summary)")
            let text = r.stdout + r.stderr
            for option in options {
                XCTAssertTrue(text.contains(option), "\(script) help must mention \(option): \(r.summary)")
            }
        }
    }

    func testServerStartWithoutArgumentsPrintsUsage() throws {
        let r = try Project.run("kafka-server-start.sh", [], timeout: 30)
        XCTAssertEqual(r.exitCode, 1, r.summary)
        XCTAssertTrue((r.stdout + r.stderr).contains("USAGE: bin/kafka-server-start.sh [-daemon] server.properties"), r.summary)
    }

    func testRunClassMapsKnownClassesAndRejectsOthers() throws {
        try Project.requireReleaseBuild()
        let unknown = try Project.run("kafka-run-class.sh", ["kafka.tools.NoSuchTool"], timeout: 30)
        XCTAssertEqual(unknown.exitCode, 1, unknown.summary)
        XCTAssertTrue(unknown.stderr.contains("kafka.tools.NoSuchTool"), unknown.summary)
        let mirror = try Project.run("kafka-run-class.sh", ["kafka.tools.MirrorMaker"], timeout: 30)
        XCTAssertTrue((mirror.stdout + mirror.stderr).contains("--whitelist"), "MirrorMaker help: \(mirror.summary)")
        let topics = try Project.run("kafka-run-class.sh", ["kafka.admin.TopicCommand"], timeout: 30)
        XCTAssertTrue((topics.stdout + topics.stderr).contains("--zookeeper"), "TopicCommand help: \(topics.summary)")
    }

    /// A copy of bin/ outside the project (so no .build/release next to it) explains how to build.
    func testScriptsExplainHowToBuildWhenTheBinaryIsMissing() throws {
        let dir = NSTemporaryDirectory() + "kafka-swift-nobuild-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir + "/bin", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in ["lib.sh", "kafka-topics.sh", "kafka-server-start.sh"] {
            try FileManager.default.copyItem(atPath: Project.script(name), toPath: "\(dir)/bin/\(name)")
        }
        try "broker.id=0\n".write(toFile: "\(dir)/server.properties", atomically: true, encoding: .utf8)
        for (script, args) in [("kafka-topics.sh", ["--list"]), ("kafka-server-start.sh", ["\(dir)/server.properties"])] {
            let r = try ProcessRunner.run("\(dir)/bin/\(script)", args, currentDirectory: dir, timeout: 30)
            XCTAssertEqual(r.exitCode, 1, "\(script): \(r.summary)")
            XCTAssertTrue(r.stderr.contains("swift build -c release"), "\(script): \(r.summary)")
            XCTAssertTrue(r.stderr.contains("bin/setup.sh"), "\(script): \(r.summary)")
        }
    }
}
