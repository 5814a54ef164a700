import Foundation
import KafkaClient
import KafkaTestSupport
import XCTest

/// kafka-replica-verification.sh and kafka-mirror-maker.sh against real brokers (issue 10 item 4).
final class ReplicaToolsTests: IntegrationTestCase {
    func write(_ text: String, _ path: String) throws -> String {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func launch(_ script: String, _ args: [String], output: String) throws -> BackgroundProcess {
        try BackgroundProcess.launch(Project.script(script), args, environment: nil, currentDirectory: Project.root, outputFile: output)
    }

    /// 3 brokers, RF 3: every replica agrees, the tool reports "max lag is 0" in 0.8.2's words.
    func testReplicaVerificationOnRF3Topic() async throws {
        let c = try await startCluster(brokerIds: [0, 1, 2])
        try c.createTopic("verified", partitions: 2, replicationFactor: 3)
        try c.createTopic("ignored", partitions: 1, replicationFactor: 1)
        try c.waitForLeaders(topic: "verified", partitions: 2)
        var cfg = ProducerConfig(brokerList: c.brokerList)
        cfg.requiredAcks = -1
        let producer = try Producer(config: cfg)
        for i in 0..<20 {
            for p: Int32 in [0, 1] {
                _ = try await producer.send(topic: "verified", messages: (0..<5).map { j in (key: Array("k\(j)".utf8), value: Array("m\(i)-\(j)".utf8)) }, partition: p)
            }
        }
        await producer.close()

        let out = "\(c.directory)/replica-verification.out"
        let p = try launch("kafka-replica-verification.sh", ["--broker-list", c.brokerList, "--topic-white-list", "verif.*",
                                                             "--time", "-2", "--report-interval-ms", "300", "--max-wait-ms", "100"], output: out)
        defer { p.stop() }
        let text = try poll(timeout: 60, "a max-lag line with lag 0") { () -> String? in
            let o = p.output()
            if !p.isRunning { throw WireError("kafka-replica-verification.sh exited: \(o)") }
            return o.contains(": max lag is 0 for partition [verified,") ? o : nil
        }
        let lines = text.split(separator: "\n").map(String.init)
        let stamp = #"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}: "#
        XCTAssertNotNil(lines.first?.range(of: stamp + "verification process is started\\.$", options: .regularExpression), text)
        let lag = lines.first { $0.contains("max lag is 0") } ?? ""
        XCTAssertNotNil(lag.range(of: stamp + #"max lag is 0 for partition \[verified,[01]\] at offset 100 among 2 paritions$"#, options: .regularExpression), text)
        XCTAssertFalse(text.contains("unmatched checksum"), text)
        XCTAssertFalse(text.contains("doesn't match"), text)

        // Misuse names the flag.
        let bad = try Project.run("kafka-replica-verification.sh", ["--broker-list", c.brokerList, "--topic-white-list", "(("])
        XCTAssertEqual(bad.exitCode, 1, bad.summary)
        XCTAssertTrue(bad.stderr.contains("--topic-white-list (( is an invalid regex."), bad.summary)
        let noBrokers = try Project.run("kafka-replica-verification.sh", ["--time", "-2"])
        XCTAssertEqual(noBrokers.exitCode, 1, noBrokers.summary)
        XCTAssertTrue(noBrokers.stderr.contains("Missing required argument \"[broker-list]\""), noBrokers.summary)
        let badList = try Project.run("kafka-replica-verification.sh", ["--broker-list", "localhost"])
        XCTAssertEqual(badList.exitCode, 1, badList.summary)
        XCTAssertTrue(badList.stderr.contains("--broker-list localhost"), badList.summary)
    }

    /// Issue 10's acceptance case: 1,000,000 keyed messages (100 keys, a sequence number per key)
    /// copied by kafka-mirror-maker.sh between two clusters under two chroots of one ZooKeeper,
    /// while they are being produced. On the target: exactly 1,000,000 messages, each key in one
    /// partition with its sequence 0, 1, 2, ... complete and in order (no gap, no duplicate: a
    /// failure-free run copies each message once).
    func testMirrorMakerCopiesOneMillionKeyedMessagesInOrder() async throws {
        let keys = 100, perKey = 10_000, total = keys * perKey
        let source = try await startCluster(brokerIds: [0], chroot: "/source")
        let target = try await TestCluster.start(brokerIds: [0], sharing: source.zooKeeper, chroot: "/target")
        defer { target.stop() }
        let topic = "mirrored"
        try source.createTopic(topic, partitions: 4)
        try target.createTopic(topic, partitions: 3)   // another partition count: the target partitions by key again
        try source.waitForLeaders(topic: topic, partitions: 4)
        try target.waitForLeaders(topic: topic, partitions: 3)

        // The mirror maker runs from the start and copies while the source is being written.
        let consumerFile = try write("zookeeper.connect=\(source.zkConnect)\ngroup.id=mirror-1m\nauto.offset.reset=smallest\nauto.commit.interval.ms=1000\n", "\(source.directory)/consumer.properties")
        let producerFile = try write("metadata.broker.list=\(target.brokerList)\nrequest.required.acks=-1\nbatch.num.messages=1000\nclient.id=mm\n", "\(source.directory)/producer.properties")
        let started = Date()
        let mm = try launch("kafka-mirror-maker.sh", ["--consumer.config", consumerFile, "--producer.config", producerFile,
                                                      "--whitelist", topic, "--num.streams", "2", "--num.producers", "2"],
                            output: "\(source.directory)/mirror-maker.out")
        defer { mm.stop() }

        // Message i: key k<i % 100>, value "k<key>:<sequence of the key>"; 10,000 per request.
        var cfg = ProducerConfig(brokerList: source.brokerList)
        cfg.requiredAcks = 1
        let producer = try Producer(config: cfg)
        let keyBytes = (0..<keys).map { Array(String(format: "k%02d", $0).utf8) }
        var batch: [(key: [UInt8]?, value: [UInt8]?)] = []
        batch.reserveCapacity(10_000)
        for i in 0..<total {
            let k = i % keys
            batch.append((keyBytes[k], keyBytes[k] + Array(":\(i / keys)".utf8)))
            if batch.count == 10_000 {
                _ = try await producer.send(topic: topic, messages: batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
        await producer.close()
        let produced = Date()

        // Wait until the target's log end offsets add up to the total.
        let conn = try target.broker.connect()
        let copiedCount = try await pollAsync(timeout: 240, "\(total) messages on the target") { () -> Int64? in
            if !mm.isRunning { throw WireError("kafka-mirror-maker.sh exited: \(mm.output())") }
            let n = try (0..<3).map { try conn.offsets(topic: topic, partition: Int32($0), time: -1).offsets.first ?? 0 }.reduce(0, +)
            return n >= Int64(total) ? n : nil
        }
        let copied = Date()
        XCTAssertEqual(copiedCount, Int64(total), "copied exactly once")
        XCTAssertEqual(mm.stop(grace: 30), 0, mm.output())

        // Per key: one target partition, sequence numbers 0..<10,000 in offset order.
        var next = [Int](repeating: 0, count: keys)
        var partitionOf = [Int32?](repeating: nil, count: keys)
        var problems: [String] = []
        var read = 0
        for p: Int32 in 0..<3 {
            for m in try conn.fetchAll(topic: topic, partition: p) {
                read += 1
                guard let key = m.key, key.count == 3, let k = Int(key.dropFirst()), k < keys,
                      let value = m.value, value.hasPrefix(key + ":"), let seq = Int(value.dropFirst(4)) else {
                    problems.append("unexpected message \(m) in partition \(p)")
                    continue
                }
                if partitionOf[k] == nil { partitionOf[k] = p }
                if partitionOf[k] != p { problems.append("\(key) in partitions \(partitionOf[k]!) and \(p)") }
                if seq != next[k] { problems.append("\(key): sequence \(seq) at offset \(m.offset) of partition \(p), expected \(next[k])") }
                next[k] = seq + 1
            }
            if problems.count > 20 { break }
        }
        XCTAssertEqual(problems.prefix(20).map { $0 }, [])
        XCTAssertEqual(read, total)
        XCTAssertEqual(next, [Int](repeating: perKey, count: keys), "every key's last sequence number")
        print("mirror maker, \(total) messages: produced in \(String(format: "%.1f", produced.timeIntervalSince(started))) s, all on the target \(String(format: "%.1f", copied.timeIntervalSince(started))) s after the mirror maker started")
    }

    /// Two single-broker clusters on their own ZooKeepers: whitelisted topics are copied exactly
    /// (keys, values, per-key order), others are not.
    func testMirrorMakerCopiesWhitelistedTopics() async throws {
        let source = try await startCluster(brokerIds: [0])
        let target = try await TestCluster.start(brokerIds: [0])
        defer { target.stop() }
        try source.createTopic("mirror-a", partitions: 2)
        try source.createTopic("mirror-b", partitions: 1)
        try source.createTopic("other", partitions: 1)
        try target.createTopic("mirror-a", partitions: 2)   // mirror-b is auto-created on the target
        for t in ["mirror-a", "mirror-b", "other"] { try source.waitForLeaders(topic: t, partitions: t == "mirror-a" ? 2 : 1) }
        try target.waitForLeaders(topic: "mirror-a", partitions: 2)

        var cfg = ProducerConfig(brokerList: source.brokerList)
        cfg.requiredAcks = -1
        let producer = try Producer(config: cfg)
        var sent: [String: [(key: String, value: String)]] = [:]
        for (topic, n) in [("mirror-a", 3000), ("mirror-b", 1000), ("other", 100)] {
            var batch: [(key: [UInt8]?, value: [UInt8]?)] = []
            for i in 0..<n {
                let key = "k\(i % 7)", value = "\(topic)-\(i)"
                sent[topic, default: []].append((key, value))
                batch.append((Array(key.utf8), Array(value.utf8)))
                if batch.count == 100 { _ = try await producer.send(topic: topic, messages: batch); batch.removeAll() }
            }
            if !batch.isEmpty { _ = try await producer.send(topic: topic, messages: batch) }
        }
        await producer.close()

        let consumerFile = try write("zookeeper.connect=\(source.zkConnect)\ngroup.id=mirror\nauto.offset.reset=smallest\nauto.commit.interval.ms=1000\n", "\(source.directory)/consumer.properties")
        let producerFile = try write("metadata.broker.list=\(target.brokerList)\nrequest.required.acks=-1\nclient.id=mm\n", "\(source.directory)/producer.properties")
        let mm = try launch("kafka-mirror-maker.sh", ["--consumer.config", consumerFile, "--producer.config", producerFile,
                                                      "--whitelist", "mirror-a, mirror-b", "--num.streams", "2", "--num.producers", "2",
                                                      "--queue.size", "500"], output: "\(source.directory)/mirror-maker.out")
        defer { mm.stop() }

        let conn = try target.broker.connect()
        for (topic, parts) in [("mirror-a", 2), ("mirror-b", 1)] {
            let expected = sent[topic]!
            let copied = try await pollAsync(timeout: 90, "\(expected.count) messages of \(topic) on the target") { () -> [[WireMessage]]? in
                if !mm.isRunning { throw WireError("kafka-mirror-maker.sh exited: \(mm.output())") }
                let all = try (0..<parts).map { try conn.debugFetchAll(topic: topic, partition: Int32($0)).messages }
                return all.map(\.count).reduce(0, +) >= expected.count ? all : nil
            }
            let flat = copied.flatMap { $0 }
            XCTAssertEqual(flat.count, expected.count, "\(topic): copied exactly once")
            XCTAssertEqual(Set(flat.map { "\($0.key ?? "null"):\($0.value ?? "null")" }), Set(expected.map { "\($0.key):\($0.value)" }), topic)
            // Per key: one target partition, values in the order they were produced.
            for k in 0..<7 {
                let key = "k\(k)"
                let want = expected.filter { $0.key == key }.map(\.value)
                let holders = copied.filter { $0.contains { $0.key == key } }
                XCTAssertEqual(holders.count, 1, "\(topic) \(key) lands in one partition")
                XCTAssertEqual(holders.first?.filter { $0.key == key }.map { $0.value ?? "" }, want, "\(topic) \(key) in order")
            }
        }
        let zk = try await ZkInspector.connect(target.zkConnect)
        let targetTopics = try await zk.zk.children("/brokers/topics").sorted()
        await zk.close()
        XCTAssertEqual(targetTopics, ["mirror-a", "mirror-b"], "the non-whitelisted topic is not mirrored")

        XCTAssertEqual(mm.stop(grace: 30), 0, mm.output())

        // Misuse: each bad flag or file is named.
        let cases: [([String], String)] = [
            (["--producer.config", producerFile, "--whitelist", "x"], "Missing required argument \"[consumer.config]\""),
            (["--consumer.config", consumerFile, "--whitelist", "x"], "Missing required argument \"[producer.config]\""),
            (["--consumer.config", consumerFile, "--producer.config", producerFile], "Exactly one of whitelist or blacklist is required."),
            (["--consumer.config", consumerFile, "--producer.config", producerFile, "--whitelist", "a", "--blacklist", "b"], "Exactly one of whitelist or blacklist is required."),
            (["--consumer.config", "/nonexistent.properties", "--producer.config", producerFile, "--whitelist", "a"], "/nonexistent.properties"),
            (["--consumer.config", consumerFile, "--producer.config", consumerFile, "--whitelist", "a"], "has no metadata.broker.list"),
            (["--consumer.config", consumerFile, "--producer.config", producerFile, "--whitelist", "(("], "--whitelist (( is an invalid regex."),
            (["--consumer.config", consumerFile, "--producer.config", producerFile, "--whitelist", "a", "--num.streams", "0"], "--num.streams must be at least 1"),
            (["--consumer.config", consumerFile, "--producer.config", producerFile, "--whitelist", "a", "--bogus"], "--bogus"),
        ]
        for (args, message) in cases {
            let r = try Project.run("kafka-mirror-maker.sh", args)
            XCTAssertEqual(r.exitCode, 1, "\(args): \(r.summary)")
            XCTAssertTrue(r.stderr.contains(message), "\(args): expected \(message) in \(r.summary)")
        }
    }
}
