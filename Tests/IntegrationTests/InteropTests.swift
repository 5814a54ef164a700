import Foundation
import KafkaTestSupport
import XCTest

/// Real third-party clients against the broker, as subprocesses: kcat (librdkafka), kafka-python,
/// pykafka and kazoo. They must see exactly what the project's own tools and the wire see.
final class InteropTests: IntegrationTestCase {
    private func kcat(_ c: TestCluster, _ args: [String], stdin: String? = nil, timeout: Double = 60) throws -> ProcessResult {
        try Project.kcat(port: c.broker.port, args, stdin: stdin, timeout: timeout)
    }

    private func python(_ script: String, _ args: [String], stdin: String? = nil, timeout: Double = 90) throws -> ProcessResult {
        try Project.runInteropScript(script, args, stdin: stdin, timeout: timeout)
    }

    private func jsonLines(_ text: String) throws -> [[String: Any]] { try Project.jsonLines(text) }

    /// Skips unless kcat (when `kcat`) and the venv are there; then a one-broker cluster whose
    /// `topic` has a leader.
    private func clusterWithTopic(_ topic: String, brokerId: Int = 0, partitions: Int = 1, kcat: Bool = true,
                                  python: Bool = true) async throws -> TestCluster {
        if kcat { _ = try Project.requireTool("kcat", install: "apt-get install kcat") }
        if python { _ = try Project.requireVenvPython() }
        let c = try await startCluster(brokerIds: [brokerId])
        try c.createTopic(topic, partitions: partitions)
        try c.waitForLeaders(topic: topic, partitions: partitions)
        return c
    }

    private func message(_ obj: [String: Any]) -> WireMessage {
        WireMessage(offset: (obj["offset"] as? NSNumber)?.int64Value ?? -1,
                    key: obj["key"] as? String, value: obj["value"] as? String)
    }

    /// kcat -C from the beginning to the end of partition 0, as WireMessages (`%k:%s:%o`).
    private func kcatConsume(_ c: TestCluster, topic: String) throws -> [WireMessage] {
        let r = try kcat(c, ["-C", "-t", topic, "-p", "0", "-e", "-o", "beginning", "-f", "%k|%s|%o\\n"])
        XCTAssertEqual(r.exitCode, 0, r.summary)
        return r.stdout.split(separator: "\n").map { line in
            let parts = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 3 else { return WireMessage(offset: -1, key: nil, value: String(line)) }
            return WireMessage(offset: Int64(parts[2]) ?? -1, key: parts[0].isEmpty ? nil : parts[0], value: parts[1])
        }
    }

    // MARK: kcat

    func testKcatMetadataMatchesTheTopicTool() async throws {
        let c = try await clusterWithTopic("meta", brokerId: 3, partitions: 3, python: false)

        let r = try kcat(c, ["-L", "-J", "-t", "meta"])
        XCTAssertEqual(r.exitCode, 0, r.summary)
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let brokers = json?["brokers"] as? [[String: Any]] ?? []
        XCTAssertEqual(brokers.count, 1, r.stdout)
        XCTAssertEqual((brokers.first?["id"] as? NSNumber)?.intValue, 3, r.stdout)
        XCTAssertEqual(brokers.first?["name"] as? String, "127.0.0.1:\(c.broker.port)", r.stdout)
        let topics = json?["topics"] as? [[String: Any]] ?? []
        let topic = topics.first { $0["topic"] as? String == "meta" }
        XCTAssertNotNil(topic, r.stdout)
        let partitions = (topic?["partitions"] as? [[String: Any]] ?? [])
            .sorted { (($0["partition"] as? NSNumber)?.intValue ?? 0) < (($1["partition"] as? NSNumber)?.intValue ?? 0) }
        XCTAssertEqual(partitions.count, 3, r.stdout)

        // kafka-topics --describe must say the same.
        let describe = try Project.run("kafka-topics.sh", ["--zookeeper", c.zkConnect, "--describe", "--topic", "meta"])
        var expected = "Topic:meta\tPartitionCount:3\tReplicationFactor:1\tConfigs:\n"
        for (i, p) in partitions.enumerated() {
            XCTAssertEqual((p["partition"] as? NSNumber)?.intValue, i)
            let leader = (p["leader"] as? NSNumber)?.intValue ?? -99
            let replicas = (p["replicas"] as? [[String: Any]] ?? []).compactMap { ($0["id"] as? NSNumber)?.intValue }
            let isrs = (p["isrs"] as? [[String: Any]] ?? []).compactMap { ($0["id"] as? NSNumber)?.intValue }
            XCTAssertEqual(leader, 3, r.stdout)
            XCTAssertEqual(replicas, [3], r.stdout)
            XCTAssertEqual(isrs, [3], r.stdout)
            expected += "\tTopic: meta\tPartition: \(i)\tLeader: \(leader)\tReplicas: 3\tIsr: 3\n"
        }
        XCTAssertEqual(describe.stdout, expected, describe.summary)
    }

    func testKcatKafkaPythonAndConsoleConsumerSeeTheSameMessages() async throws {
        let c = try await clusterWithTopic("interop")

        // kcat produces five keyed messages...
        let kcatInput = (1...5).map { "k\($0):kcat value \($0)" }.joined(separator: "\n") + "\n"
        let produced = try kcat(c, ["-P", "-t", "interop", "-p", "0", "-K:"], stdin: kcatInput)
        XCTAssertEqual(produced.exitCode, 0, produced.summary)

        // ...and kafka-python five more; it reports the offsets the broker acknowledged.
        let pyInput = (1...5).map { "p\($0):python value \($0)" }.joined(separator: "\n") + "\n"
        let pyProduce = try python("kafka_python_check.py", ["produce", "--bootstrap", "127.0.0.1:\(c.broker.port)",
                                                             "--topic", "interop"], stdin: pyInput)
        XCTAssertEqual(pyProduce.exitCode, 0, pyProduce.summary)
        let pyAcked = try jsonLines(pyProduce.stdout).map(message)
        XCTAssertEqual(pyAcked.map(\.offset), [5, 6, 7, 8, 9], pyProduce.summary)

        // What the wire says is there:
        let expected = (1...5).map { WireMessage(offset: Int64($0 - 1), key: "k\($0)", value: "kcat value \($0)") }
            + (1...5).map { WireMessage(offset: Int64($0 + 4), key: "p\($0)", value: "python value \($0)") }
        let wire = try c.broker.connect().fetchAll(topic: "interop")
        XCTAssertEqual(wire, expected)

        // kcat, kafka-python and the console consumer see the same keys, values and offsets.
        XCTAssertEqual(try kcatConsume(c, topic: "interop"), expected)

        let pyConsume = try python("kafka_python_check.py", ["consume", "--bootstrap", "127.0.0.1:\(c.broker.port)",
                                                             "--topic", "interop", "--offset", "0", "--count", "10"])
        XCTAssertEqual(pyConsume.exitCode, 0, pyConsume.summary)
        XCTAssertEqual(try jsonLines(pyConsume.stdout).map(message), expected, pyConsume.summary)

        let console = try Project.run("kafka-console-consumer.sh",
                                      ["--zookeeper", c.zkConnect, "--topic", "interop", "--from-beginning",
                                       "--max-messages", "10", "--property", "print.key=true"], timeout: 90)
        XCTAssertEqual(console.exitCode, 0, console.summary)
        XCTAssertEqual(console.stdout, expected.map { "\($0.key ?? "null")\t\($0.value ?? "null")\n" }.joined(),
                       console.summary)

        // kafka-python's metadata view agrees too.
        let md = try python("kafka_python_check.py", ["metadata", "--bootstrap", "127.0.0.1:\(c.broker.port)",
                                                      "--topic", "interop"])
        XCTAssertEqual(md.exitCode, 0, md.summary)
        let mdJSON = try JSONSerialization.jsonObject(with: Data(md.stdout.utf8)) as? [String: Any]
        let topics = mdJSON?["topics"] as? [String: [String: Any]]
        XCTAssertEqual((topics?["interop"]?["0"] as? NSNumber)?.intValue, 0, md.summary)
        let brokers = mdJSON?["brokers"] as? [[String: Any]]
        XCTAssertEqual(brokers?.first?["host"] as? String, "127.0.0.1", md.summary)
        XCTAssertEqual((brokers?.first?["port"] as? NSNumber)?.intValue, c.broker.port, md.summary)
    }

    func testCompressedMessagesFromKafkaPython() async throws {
        let c = try await clusterWithTopic("compressed")
        var expected: [WireMessage] = []
        for codec in ["gzip", "snappy"] {
            let input = (1...4).map { "\(codec)-k\($0):\(codec) value \($0)" }.joined(separator: "\n") + "\n"
            let r = try python("kafka_python_check.py", ["produce", "--bootstrap", "127.0.0.1:\(c.broker.port)",
                                                         "--topic", "compressed", "--compression", codec], stdin: input)
            XCTAssertEqual(r.exitCode, 0, "\(codec): \(r.summary)")
            let base = Int64(expected.count)
            expected += (1...4).map { WireMessage(offset: base + Int64($0 - 1), key: "\(codec)-k\($0)", value: "\(codec) value \($0)") }
        }
        XCTAssertEqual(try kcatConsume(c, topic: "compressed"), expected)
        let py = try python("kafka_python_check.py", ["consume", "--bootstrap", "127.0.0.1:\(c.broker.port)",
                                                      "--topic", "compressed", "--offset", "0", "--count", "8"])
        XCTAssertEqual(py.exitCode, 0, py.summary)
        XCTAssertEqual(try jsonLines(py.stdout).map(message), expected, py.summary)
        // Reading from the middle of a compressed batch starts at that offset.
        let mid = try python("kafka_python_check.py", ["consume", "--bootstrap", "127.0.0.1:\(c.broker.port)",
                                                       "--topic", "compressed", "--offset", "5", "--count", "3"])
        XCTAssertEqual(try jsonLines(mid.stdout).map(message), Array(expected[5...]), mid.summary)
    }

    // MARK: kazoo

    func testKazooReadsTheZooKeeperLayout() async throws {
        let c = try await clusterWithTopic("zktopic", brokerId: 2, partitions: 2, kcat: false)

        let r = try python("kazoo_check.py", ["--zk", c.zkConnect, "--broker-id", "2", "--host", "127.0.0.1",
                                              "--port", "\(c.broker.port)", "--topic", "zktopic", "--partitions", "2"])
        XCTAssertEqual(r.exitCode, 0, r.summary)
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let states = json?["states"] as? [String: [String: Any]] ?? [:]

        // Leader and ISR in ZooKeeper are what kafka-topics --describe and Metadata report.
        let describe = try Project.run("kafka-topics.sh", ["--zookeeper", c.zkConnect, "--describe", "--topic", "zktopic"])
        let md = try c.waitForLeaders(topic: "zktopic", partitions: 2)
        for p in 0..<2 {
            let state = states["\(p)"]?["json"] as? [String: Any]
            let leader = (state?["leader"] as? NSNumber)?.intValue
            let isr = (state?["isr"] as? [NSNumber])?.map(\.intValue)
            XCTAssertEqual(leader, 2, r.stdout)
            XCTAssertEqual(isr, [2], r.stdout)
            XCTAssertEqual(md.partitions[p].leader, 2)
            XCTAssertEqual(md.partitions[p].isr, [2])
            XCTAssertTrue(describe.stdout.contains("\tTopic: zktopic\tPartition: \(p)\tLeader: 2\tReplicas: 2\tIsr: 2\n"),
                          describe.summary)
        }
        let topicJSON = (json?["topic"] as? [String: Any])?["raw"] as? String
        // Partition keys come in the JVM's hash order; accept either order of the two.
        let accepted = ["{\"version\":1,\"partitions\":{\"1\":[2],\"0\":[2]}}",
                        "{\"version\":1,\"partitions\":{\"0\":[2],\"1\":[2]}}"]
        XCTAssertTrue(accepted.contains(topicJSON ?? ""), "assignment JSON: \(topicJSON ?? "nil")")
    }

    // MARK: pykafka

    func testPykafkaProducerAndSimpleConsumer() async throws {
        let c = try await clusterWithTopic("pyk")

        let input = (1...6).map { "key\($0):pykafka value \($0)" }.joined(separator: "\n") + "\n"
        let produce = try python("pykafka_check.py", ["produce", "--hosts", "127.0.0.1:\(c.broker.port)", "--topic", "pyk"],
                                 stdin: input)
        XCTAssertEqual(produce.exitCode, 0, produce.summary)
        let expected = (1...6).map { WireMessage(offset: Int64($0 - 1), key: "key\($0)", value: "pykafka value \($0)") }
        XCTAssertEqual(try c.broker.connect().fetchAll(topic: "pyk"), expected)

        let consume = try python("pykafka_check.py", ["consume", "--hosts", "127.0.0.1:\(c.broker.port)", "--topic", "pyk",
                                                      "--count", "6"])
        XCTAssertEqual(consume.exitCode, 0, consume.summary)
        XCTAssertEqual(try jsonLines(consume.stdout).map(message), expected, consume.summary)
        XCTAssertEqual(try kcatConsume(c, topic: "pyk"), expected)
    }
}
