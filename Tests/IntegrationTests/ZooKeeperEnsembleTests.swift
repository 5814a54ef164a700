import Foundation
import KafkaTestSupport
import Synchronization
import XCTest
import ZooKeeper

/// Issue 10 item 2: `zookeeper.connect=h1:p1,h2:p2,h3:p3/chroot` for the broker, the tools and the
/// group consumer, against a real 3-member Debian ZooKeeper ensemble.
final class ZooKeeperEnsembleTests: XCTestCase {
    private var brokers: [TestBroker] = []
    private var ensemble: ZooKeeperEnsemble?
    private var standalone: ZooKeeperServer?
    private var directory: String?

    override func tearDown() async throws {
        if (testRun?.failureCount ?? 0) + (testRun?.unexpectedExceptionCount ?? 0) > 0 {
            for b in brokers { print("--- broker \(b.id) (port \(b.port)), last 40 lines ---\n\(b.tail(40))") }
            for m in ensemble?.members ?? [] { print("--- ZooKeeper \(m.port) log: \(m.logFile)") }
        }
        for b in brokers { b.stop() }
        brokers = []
        ensemble?.stop()
        ensemble = nil
        standalone?.stop()
        standalone = nil
        if let d = directory, ProcessInfo.processInfo.environment["KAFKA_TEST_KEEP_TMP"] != "1" {
            try? FileManager.default.removeItem(atPath: d)
        }
        try await super.tearDown()
    }

    /// Starts brokers `ids` (bin/kafka-server-start.sh) with the given `zookeeper.connect` and waits until each is ready.
    private func startBrokers(_ ids: [Int], zkConnect: String, overrides: [String: String] = [:]) throws {
        try Project.requireReleaseBuild()
        let dir = NSTemporaryDirectory() + "kafka-swift-ens-" + UUID().uuidString.prefix(8)
        directory = dir
        for id in ids {
            var props = [
                "broker.id": "\(id)", "port": "\(try FreePort.allocate())", "host.name": "127.0.0.1",
                "log.dirs": "\(dir)/broker-\(id)/kafka-logs", "zookeeper.connect": zkConnect, "num.partitions": "1",
            ]
            props.merge(overrides) { _, new in new }
            let b = try TestBroker(id: id, port: Int(props["port"]!)!, directory: "\(dir)/broker-\(id)", properties: props)
            brokers.append(b)
            try b.start()
        }
        for b in brokers { try b.waitUntilReady() }
    }

    private func topics(_ zkConnect: String, _ args: [String]) throws -> ProcessResult {
        try Project.run("kafka-topics.sh", ["--zookeeper", zkConnect] + args)
    }

    /// Three ZooKeeper members, three brokers under a chroot, an RF 3 topic and an acks=-1 producer
    /// writing all along. The ZooKeeper leader is stopped; the two others elect a new one; the old
    /// leader comes back as a follower; then a follower is stopped (two of three always serve: with
    /// one member left no ZooKeeper ensemble has a quorum). Writes keep being acknowledged after a
    /// bounded pause, the brokers keep their sessions, the controller still creates a topic with
    /// only two members up, and every acknowledged message is read back from every replica.
    func testBrokersSurviveZooKeeperLeaderAndFollowerStops() async throws {
        let ens = try await ZooKeeperEnsemble.start(size: 3)
        ensemble = ens
        let chroot = "/kafka-ensemble"
        let zkConnect = ens.connectString + chroot
        try startBrokers([1, 2, 3], zkConnect: zkConnect)
        XCTAssertEqual(try topics(zkConnect, ["--create", "--topic", "ens", "--partitions", "1", "--replication-factor", "3"]).exitCode, 0)
        let inspector = try await ZkInspector.connect(zkConnect)
        defer { Task { await inspector.close() } }
        try await inspector.waitForState("ens", 0, timeout: 30, "ISR of 3") { $0.isr.count == 3 }

        let ports = brokers.map(\.port)
        let producer = FailoverProducer(topic: "ens", acks: -1) { ports }
        let ackTimes = Mutex<[Date]>([])
        let work = BackgroundWork { w in
            var i = 0
            while !w.shouldStop {
                if producer.send("m-\(i)", timeout: 60) != nil { ackTimes.withLock { $0.append(Date()) } }
                i += 1
            }
        }
        func acks() -> Int { ackTimes.withLock { $0.count } }
        func waitForMoreAcks(_ what: String, than n: Int, by: Int = 20) async throws {
            _ = try await pollAsync(timeout: 30, "\(by) more acknowledged writes \(what)") { acks() >= n + by ? true : nil }
        }
        defer { work.stopAndWait(timeout: 70) }
        try await waitForMoreAcks("at the start", than: 0)

        // 1. Stop the ZooKeeper leader.
        let oldLeader = try XCTUnwrap(ens.leader, "no ZooKeeper member reports Mode: leader")
        oldLeader.stopServer()
        let stoppedLeaderAt = acks()
        let newLeader = try await ens.waitForQuorum(serving: 2, timeout: 30)
        XCTAssertNotEqual(newLeader.port, oldLeader.port)
        try await waitForMoreAcks("after the ZooKeeper leader stopped", than: stoppedLeaderAt)
        let idsAfterLeader = try await pollAsync(timeout: 20, "the brokers' registrations after the leader stop") {
            try await inspector.liveBrokerIds()
        }
        XCTAssertEqual(idsAfterLeader, [1, 2, 3], "the brokers' sessions moved to the surviving members")

        // 2. The old leader rejoins as a follower; then a follower is stopped.
        try await oldLeader.restart()
        try await ens.waitForQuorum(serving: 3, timeout: 60)
        let follower = try XCTUnwrap(ens.followers.first, "no ZooKeeper member reports Mode: follower")
        follower.stopServer()
        let stoppedFollowerAt = acks()
        try await ens.waitForQuorum(serving: 2, timeout: 30)
        try await waitForMoreAcks("after a ZooKeeper follower stopped", than: stoppedFollowerAt)

        // The controller works through the two remaining members: a new topic gets its leaders.
        XCTAssertEqual(try topics(zkConnect, ["--create", "--topic", "ens2", "--partitions", "2", "--replication-factor", "3"]).exitCode, 0)
        for p in 0..<2 {
            try await inspector.waitForState("ens2", p, timeout: 30, "a leader and an ISR of 3") { $0.leader > 0 && $0.isr.count == 3 }
        }
        let ids = try await inspector.liveBrokerIds()
        XCTAssertEqual(ids, [1, 2, 3])

        XCTAssertTrue(work.stopAndWait(timeout: 70), "the producer did not stop")
        let times = ackTimes.withLock { $0 }
        let longestPause = zip(times, times.dropFirst()).map { $1.timeIntervalSince($0) }.max() ?? 0
        print("ensemble: \(times.count) acks=-1 writes acknowledged; longest pause between two acks \(String(format: "%.2f", longestPause)) s; "
              + "\(producer.failures.count) failed attempts (retried)")
        XCTAssertLessThan(longestPause, 15, "writes paused too long while ZooKeeper members stopped")

        // Every acknowledged message, read back from every replica.
        let acked = producer.acked
        XCTAssertEqual(acked.count, times.count)
        let expected = Dictionary(acked.map { ($0.offset, $0.value) }, uniquingKeysWith: { a, _ in a })
        for b in brokers {
            let read = try await pollAsync(timeout: 30, "broker \(b.id) to hold every acknowledged message") { () -> [WireMessage]? in
                let all = try b.connect().debugFetchAll(topic: "ens").messages
                return expected.allSatisfy({ o, _ in all.contains { $0.offset == o } }) ? all : nil
            }
            let byOffset = Dictionary(read.map { ($0.offset, $0.value ?? "") }, uniquingKeysWith: { a, _ in a })
            for (offset, value) in expected {
                XCTAssertEqual(byOffset[offset], value, "broker \(b.id), offset \(offset)")
            }
        }

        // The group consumer with the ensemble's connect string and the chroot reads the log from the start.
        let firstHundred = expected.keys.sorted().prefix(100).map { expected[$0]! }
        let consumed = try Project.run("kafka-console-consumer.sh", ["--zookeeper", zkConnect, "--topic", "ens", "--from-beginning",
                                                                     "--max-messages", "100"], timeout: 60)
        XCTAssertEqual(consumed.exitCode, 0, consumed.summary)
        XCTAssertEqual(consumed.stdout.split(separator: "\n").map(String.init), firstHundred, consumed.summary)
    }

    /// The broker creates its chroot (0.8.2's KafkaServer.initZk) and registers under it; the tools
    /// given the chroot use it: kafka-topics (--create/--list/--describe), the console consumer's
    /// group (offsets under the chroot), the offset checker, the preferred replica election, the
    /// consumer perf test and zookeeper-shell.sh. Nothing is written outside the chroot.
    func testBrokerAndToolsUseTheChroot() async throws {
        let zk = try await ZooKeeperServer.start()
        standalone = zk
        let chroot = "/kafka/prod"
        let root = try await ZooKeeperClient.connect(zk.connectString, sessionTimeoutMs: 10000)
        defer { Task { await root.close() } }
        let before = try await root.exists(chroot)
        XCTAssertNil(before, "the chroot exists before the broker started")
        let zkConnect = zk.connectString + chroot
        try startBrokers([0], zkConnect: zkConnect)

        // The chroot, made by the broker, holds Kafka's tree; the real root does not.
        let registered = try await root.children(chroot + "/brokers/ids")
        XCTAssertEqual(registered, ["0"])
        let rootBrokers = try await root.exists("/brokers")
        XCTAssertNil(rootBrokers, "/brokers written outside the chroot")
        let chrooted = try await ZooKeeperClient.connect(zkConnect, sessionTimeoutMs: 10000)
        defer { Task { await chrooted.close() } }
        let chrootedIds = try await chrooted.children("/brokers/ids")
        XCTAssertEqual(chrootedIds, ["0"])

        // kafka-topics.sh through the chroot.
        let created = try topics(zkConnect, ["--create", "--topic", "chrooted", "--partitions", "2", "--replication-factor", "1"])
        XCTAssertEqual(created.exitCode, 0, created.summary)
        XCTAssertTrue(created.stdout.contains("Created topic \"chrooted\"."), created.summary)
        let list = try topics(zkConnect, ["--list"])
        XCTAssertEqual(list.stdout, "chrooted\n", list.summary)
        let inRoot = try topics(zk.connectString, ["--list"])
        XCTAssertEqual(inRoot.stdout, "", "the topic is visible outside the chroot: \(inRoot.summary)")
        let assigned = try await root.exists(chroot + "/brokers/topics/chrooted")
        XCTAssertNotNil(assigned)
        let desc = try await pollAsync(timeout: 30, "leaders in --describe") { () -> [DescribedPartition]? in
            let d = DescribedPartition.parse(try topics(zkConnect, ["--describe", "--topic", "chrooted"]).stdout, topic: "chrooted")
            return d.count == 2 && d.allSatisfy({ $0.leader == 0 && $0.isr == [0] }) ? d : nil
        }
        XCTAssertEqual(desc.map(\.replicas), [[0], [0]])

        // Produce, then consume with the group consumer through the chroot.
        let b = brokers[0]
        let produced = try Project.run("kafka-console-producer.sh", ["--broker-list", "127.0.0.1:\(b.port)", "--topic", "chrooted"],
                                       stdin: "a\nb\nc\nd\n")
        XCTAssertEqual(produced.exitCode, 0, produced.summary)
        let config = directory! + "/consumer.properties"
        try "group.id=chroot-group\n".write(toFile: config, atomically: true, encoding: .utf8)
        let consumed = try Project.run("kafka-console-consumer.sh", ["--zookeeper", zkConnect, "--topic", "chrooted", "--consumer.config", config,
                                                                     "--from-beginning", "--max-messages", "4"], timeout: 60)
        XCTAssertEqual(consumed.exitCode, 0, consumed.summary)
        XCTAssertEqual(Set(consumed.stdout.split(separator: "\n").map(String.init)), ["a", "b", "c", "d"], consumed.summary)
        let groupNode = try await root.exists(chroot + "/consumers/chroot-group/offsets/chrooted")
        XCTAssertNotNil(groupNode, "the group's offsets are not under the chroot")
        let rootConsumers = try await root.exists("/consumers")
        XCTAssertNil(rootConsumers, "/consumers written outside the chroot")

        let checker = try Project.run("kafka-consumer-offset-checker.sh", ["--zookeeper", zkConnect, "--group", "chroot-group"])
        XCTAssertEqual(checker.exitCode, 0, checker.summary)
        let rows = checker.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: " ").map(String.init) }
        XCTAssertEqual(rows.count, 2, checker.summary)
        XCTAssertEqual(rows.map { Int($0[3]) ?? -1 }.reduce(0, +), 4, "committed offsets add up to the 4 messages: \(checker.summary)")

        let election = try Project.run("kafka-preferred-replica-election.sh", ["--zookeeper", zkConnect])
        XCTAssertEqual(election.exitCode, 0, election.summary)
        XCTAssertTrue(election.stdout.contains("Successfully started preferred replica election"), election.summary)
        _ = try await pollAsync(timeout: 20, "the controller to process the election under the chroot") { () -> Bool? in
            try await root.exists(chroot + "/admin/preferred_replica_election") == nil ? true : nil
        }
        let rootAdmin = try await root.exists("/admin")
        XCTAssertNil(rootAdmin, "/admin written outside the chroot")

        let perf = try Project.run("kafka-consumer-perf-test.sh", ["--zookeeper", zkConnect, "--topic", "chrooted", "--messages", "4",
                                                                   "--group", "perf-chroot"], timeout: 120)
        XCTAssertEqual(perf.exitCode, 0, perf.summary)
        XCTAssertEqual(perf.stdout.split(separator: "\n").last?.components(separatedBy: ", ").dropFirst(5).first, "4", perf.summary)
        // (The topic exists only under the chroot: reading its 4 messages means the tool used it.)
        let rootAfterPerf = try await root.exists("/consumers")
        XCTAssertNil(rootAfterPerf, "the perf consumer wrote /consumers outside the chroot")

        let shell = try Project.run("zookeeper-shell.sh", [zkConnect, "ls", "/brokers/ids"], timeout: 60)
        XCTAssertEqual(shell.exitCode, 0, shell.summary)
        XCTAssertTrue(shell.stdout.contains("[0]"), shell.summary)
    }
}
