import Foundation
import KafkaTestSupport
import XCTest
import ZooKeeper

/// Consumer groups in ZooKeeper against a real broker: console consumers sharing a group
/// (range split, owners, takeover through the ids watch, committed offsets), the offset
/// checker's exact output, and pykafka's ZooKeeper-balanced consumer.
final class ConsumerGroupTests: IntegrationTestCase {
    private var zk: ZooKeeperClient?
    private var processes: [BackgroundProcess] = []

    override func tearDown() async throws {
        for p in processes { p.stop(grace: 5) }
        processes.removeAll()
        await zk?.close()
        zk = nil
        try await super.tearDown()
    }

    // MARK: Helpers

    private func zkClient(_ c: TestCluster) async throws -> ZooKeeperClient {
        if let zk { return zk }
        let z = try await ZooKeeperClient.connect(c.zkConnect, sessionTimeoutMs: 30000)
        zk = z
        return z
    }

    private func text(_ zk: ZooKeeperClient, _ path: String) async -> String? {
        guard let (data, _) = try? await zk.get(path) else { return nil }
        return String(decoding: data ?? [], as: UTF8.self)
    }

    /// partition → owner thread id, from /consumers/<g>/owners/<t>/<p>.
    private func owners(_ zk: ZooKeeperClient, group: String, topic: String) async -> [Int32: String] {
        var out: [Int32: String] = [:]
        for p in (try? await zk.children("/consumers/\(group)/owners/\(topic)")) ?? [] {
            if let owner = await text(zk, "/consumers/\(group)/owners/\(topic)/\(p)"), let id = Int32(p) { out[id] = owner }
        }
        return out
    }

    private func committed(_ zk: ZooKeeperClient, group: String, topic: String, partitions: Int) async -> [String?] {
        var out: [String?] = []
        for p in 0..<partitions { out.append(await text(zk, "/consumers/\(group)/offsets/\(topic)/\(p)")) }
        return out
    }

    /// Polls an async condition every 100 ms.
    @discardableResult
    private func eventually<T>(_ what: String, timeout: Double = 30, _ condition: () async throws -> T?) async throws -> T {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let v = try await condition() { return v }
            if Date() >= deadline { throw WireError("timed out after \(timeout)s waiting for \(what)") }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
    }

    /// Produces `count` messages `<prefix>-p<p>-<i>` to each partition.
    private func produce(_ c: TestCluster, topic: String, partitions: Int, prefix: String, count: Int) throws -> Set<String> {
        let conn = try c.broker.connect()
        defer { conn.close() }
        var all = Set<String>()
        for p in 0..<partitions {
            let values = (0..<count).map { "\(prefix)-p\(p)-\($0)" }
            let r = try conn.produce(topic: topic, partition: Int32(p), messages: values.map { (nil, $0) })
            XCTAssertEqual(r.error, 0, "produce to \(topic)/\(p)")
            all.formUnion(values)
        }
        return all
    }

    private func writeConfig(_ c: TestCluster, _ name: String, _ props: [String: String]) throws -> String {
        let path = "\(c.directory)/\(name).properties"
        try props.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: "\n").appending("\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func startConsole(_ c: TestCluster, _ name: String, _ args: [String]) throws -> BackgroundProcess {
        let p = try BackgroundProcess.launch(Project.script("kafka-console-consumer.sh"), ["--zookeeper", c.zkConnect] + args,
                                             environment: nil, currentDirectory: Project.root,
                                             outputFile: "\(c.directory)/\(name).out")
        processes.append(p)
        return p
    }

    /// The message lines a background consumer printed (its log lines do not match `pattern`).
    private func messages(_ p: BackgroundProcess, prefix: String) -> [String] {
        p.output().split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix + "-p") }
    }

    private func partitionOf(_ value: String) -> Int32 {
        let afterP = value[value.range(of: "-p")!.upperBound...]
        return Int32(afterP.prefix { $0.isNumber })!
    }

    private func assertNoDuplicates(_ lines: [String], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let dups = Dictionary(grouping: lines, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted()
        XCTAssertEqual(dups, [], "\(what): delivered more than once", file: file, line: line)
    }

    // MARK: Tests

    /// Two console consumers in one group split a 4-partition topic (range: 2 + 2, owners in
    /// ZooKeeper, nothing printed twice); when one exits, the other takes over every partition
    /// from the committed offsets; offsets are the next offset to consume; --from-beginning on a
    /// group with offsets is refused.
    func testConsoleConsumersShareAGroup() async throws {
        let c = try await startCluster()
        let topic = "shared", group = "split-group"
        try c.createTopic(topic, partitions: 4)
        try c.waitForLeaders(topic: topic, partitions: 4)
        let zk = try await zkClient(c)
        let config = try writeConfig(c, "split", ["group.id": group, "rebalance.backoff.ms": "300", "rebalance.max.retries": "10"])

        // A alone takes every partition and prints the first batch.
        let b1 = try produce(c, topic: topic, partitions: 4, prefix: "b1", count: 10)
        let a = try startConsole(c, "a", ["--topic", topic, "--consumer.config", config, "--from-beginning"])
        try await eventually("consumer A to print the first batch") { messages(a, prefix: "b1").count >= 40 ? true : nil }
        XCTAssertEqual(Set(messages(a, prefix: "b1")), b1)
        let aId = try await eventually("A's registration") { try await zk.children("/consumers/\(group)/ids").first }
        let reg = await text(zk, "/consumers/\(group)/ids/\(aId)") ?? ""
        XCTAssertTrue(reg.hasPrefix(#"{"version":1,"subscription":{"shared":1},"pattern":"white_list","timestamp":""#), reg)
        let aOwners = await owners(zk, group: group, topic: topic)
        XCTAssertEqual(aOwners, [0: "\(aId)-0", 1: "\(aId)-0", 2: "\(aId)-0", 3: "\(aId)-0"])

        // B joins: both rebalance to 2 + 2 (range over the sorted consumer ids).
        let b = try startConsole(c, "b", ["--topic", topic, "--consumer.config", config])
        let split = try await eventually("the group to split the partitions 2 + 2") { () -> [Int32: String]? in
            let o = await owners(zk, group: group, topic: topic)
            let counts = Dictionary(grouping: o.values, by: { $0 }).mapValues(\.count)
            return o.count == 4 && counts.count == 2 && counts.values.allSatisfy({ $0 == 2 }) ? o : nil
        }
        let ids = try await zk.children("/consumers/\(group)/ids").sorted()
        XCTAssertEqual(ids.count, 2)
        let bId = ids.first { $0 != aId }!
        let first = ids[0], second = ids[1]
        XCTAssertEqual(split, [0: "\(first)-0", 1: "\(first)-0", 2: "\(second)-0", 3: "\(second)-0"], "range split over \(ids)")
        // A committed what it had consumed before giving partitions away: the next offset, 10.
        let afterSplit = await committed(zk, group: group, topic: topic, partitions: 4)
        XCTAssertEqual(afterSplit, ["10", "10", "10", "10"])

        // Messages produced now go to each partition's owner, once.
        let b2 = try produce(c, topic: topic, partitions: 4, prefix: "b2", count: 10)
        try await eventually("the second batch across A and B") {
            messages(a, prefix: "b2").count + messages(b, prefix: "b2").count >= 40 ? true : nil
        }
        try await Task.sleep(nanoseconds: 500_000_000)   // anything delivered twice would show up now
        let aB2 = messages(a, prefix: "b2"), bB2 = messages(b, prefix: "b2")
        assertNoDuplicates(aB2 + bB2, "second batch")
        XCTAssertEqual(Set(aB2 + bB2), b2)
        XCTAssertTrue(aB2.allSatisfy { split[partitionOf($0)] == "\(aId)-0" }, "A printed a partition it does not own: \(aB2)")
        XCTAssertTrue(bB2.allSatisfy { split[partitionOf($0)] == "\(bId)-0" }, "B printed a partition it does not own: \(bB2)")
        XCTAssertEqual(messages(b, prefix: "b1"), [], "B started from A's committed offsets")

        // B exits (SIGTERM): it commits, releases, and its registration goes away.
        XCTAssertEqual(b.stop(grace: 15), 0, b.output())
        XCTAssertTrue(b.output().contains("Consumed 20 messages"), b.output())
        // Produced before A can have taken over: A must start B's partitions at B's committed
        // offsets (not at the log end, auto.offset.reset=largest).
        let b3 = try produce(c, topic: topic, partitions: 4, prefix: "b3", count: 10)
        let takeover = try await eventually("A to own every partition") { () -> [Int32: String]? in
            let o = await owners(zk, group: group, topic: topic)
            return o.count == 4 && Set(o.values) == ["\(aId)-0"] ? o : nil
        }
        XCTAssertEqual(takeover.count, 4)
        try await eventually("A to print the third batch") { messages(a, prefix: "b3").count >= 40 ? true : nil }
        try await Task.sleep(nanoseconds: 500_000_000)
        XCTAssertEqual(Set(messages(a, prefix: "b3")), b3)
        let allA = messages(a, prefix: "b1") + messages(a, prefix: "b2") + messages(a, prefix: "b3")
        assertNoDuplicates(allA + messages(b, prefix: "b2"), "the whole run")
        XCTAssertEqual(allA.count, 40 + aB2.count + 40)

        // A exits: every committed offset is the log end, as a decimal string.
        XCTAssertEqual(a.stop(grace: 15), 0, a.output())
        let final = await committed(zk, group: group, topic: topic, partitions: 4)
        XCTAssertEqual(final, ["30", "30", "30", "30"])
        let idsAfter = try await zk.children("/consumers/\(group)/ids")
        XCTAssertEqual(idsAfter, [])
        let ownersAfter = await owners(zk, group: group, topic: topic)
        XCTAssertEqual(ownersAfter, [:])

        // A new member resumes at the committed offsets: exactly what was produced meanwhile.
        let b4 = try produce(c, topic: topic, partitions: 4, prefix: "b4", count: 5)
        let resumed = try Project.run("kafka-console-consumer.sh", ["--zookeeper", c.zkConnect, "--topic", topic,
                                                                    "--consumer.config", config, "--max-messages", "20"], timeout: 60)
        XCTAssertEqual(resumed.exitCode, 0, resumed.summary)
        XCTAssertEqual(Set(resumed.stdout.split(separator: "\n").map(String.init)), b4, resumed.summary)
        XCTAssertTrue(resumed.stderr.contains("Consumed 20 messages"), resumed.summary)
        let resumedOffsets = await committed(zk, group: group, topic: topic, partitions: 4)
        XCTAssertEqual(resumedOffsets, ["35", "35", "35", "35"])

        // --from-beginning on a named group that has offsets: Kafka's refusal, exit 1.
        let refused = try Project.run("kafka-console-consumer.sh", ["--zookeeper", c.zkConnect, "--topic", topic,
                                                                    "--consumer.config", config, "--from-beginning"], timeout: 60)
        XCTAssertEqual(refused.exitCode, 1, refused.summary)
        XCTAssertEqual(refused.stdout, "", refused.summary)
        XCTAssertTrue(refused.stderr.contains("Found previous offset information for this group \(group). Please use --delete-consumer-offsets to delete previous offsets metadata"), refused.summary)
        let offsetsKept = await committed(zk, group: group, topic: topic, partitions: 4)
        XCTAssertEqual(offsetsKept, ["35", "35", "35", "35"])
    }

    /// partition.assignment.strategy=roundrobin from --consumer.config: two console consumers
    /// deal the partitions in "[topic,partition]" hash order (here p0 < p1 < …, so they
    /// alternate, unlike range's halves); partitions added with kafka-topics.sh --alter reach
    /// both through the topic's data watch.
    func testRoundRobinAndAddedPartitions() async throws {
        let c = try await startCluster()
        let topic = "rr", group = "rr-group"
        try c.createTopic(topic, partitions: 4)
        try c.waitForLeaders(topic: topic, partitions: 4)
        let zk = try await zkClient(c)
        let config = try writeConfig(c, "rr", ["group.id": group, "partition.assignment.strategy": "roundrobin",
                                               "auto.commit.interval.ms": "200", "rebalance.backoff.ms": "300",
                                               "rebalance.max.retries": "10"])
        let x = try startConsole(c, "x", ["--topic", topic, "--consumer.config", config])
        try await eventually("X to own every partition") { await owners(zk, group: group, topic: topic).count == 4 ? true : nil }
        let y = try startConsole(c, "y", ["--topic", topic, "--consumer.config", config])
        func dealt(_ n: Int) async throws -> [String] {
            try await eventually("a round-robin deal of \(n) partitions") { () -> [String]? in
                let ids = try await zk.children("/consumers/\(group)/ids").sorted()
                guard ids.count == 2 else { return nil }
                let want = Dictionary(uniqueKeysWithValues: (0..<Int32(n)).map { ($0, "\(ids[Int($0) % 2])-0") })
                return await owners(zk, group: group, topic: topic) == want ? ids : nil
            }
        }
        /// Waits until every partition has a committed start (the reset position, committed
        /// every 200 ms), so that what is produced next is consumed.
        func started(_ n: Int) async throws {
            try await eventually("committed positions for \(n) partitions") { () -> Bool? in
                let offs = await committed(zk, group: group, topic: topic, partitions: n)
                return offs.allSatisfy { $0 != nil } ? true : nil
            }
        }
        func consumeOnce(_ prefix: String, partitions n: Int, ids: [String]) async throws {
            let sent = try produce(c, topic: topic, partitions: n, prefix: prefix, count: 5)
            try await eventually("\(prefix) across X and Y") {
                messages(x, prefix: prefix).count + messages(y, prefix: prefix).count >= sent.count ? true : nil
            }
            try await Task.sleep(nanoseconds: 300_000_000)
            let xs = messages(x, prefix: prefix), ys = messages(y, prefix: prefix)
            assertNoDuplicates(xs + ys, prefix)
            XCTAssertEqual(Set(xs + ys), sent)
            // X registered first, so it is ids[0] and owns the even partitions.
            XCTAssertTrue(xs.allSatisfy { partitionOf($0) % 2 == 0 }, "X: \(xs)")
            XCTAssertTrue(ys.allSatisfy { partitionOf($0) % 2 == 1 }, "Y: \(ys)")
        }

        let ids = try await dealt(4)
        let firstOwner = await owners(zk, group: group, topic: topic)[0]
        XCTAssertEqual(firstOwner, "\(ids[0])-0")
        try await started(4)
        try await consumeOnce("r1", partitions: 4, ids: ids)

        let alter = try Project.run("kafka-topics.sh", ["--zookeeper", c.zkConnect, "--alter", "--topic", topic, "--partitions", "6"])
        XCTAssertEqual(alter.exitCode, 0, alter.summary)
        try c.waitForLeaders(topic: topic, partitions: 6)
        _ = try await dealt(6)
        try await started(6)
        try await consumeOnce("r2", partitions: 6, ids: ids)

        XCTAssertEqual(x.stop(grace: 15), 0, x.output())
        XCTAssertEqual(y.stop(grace: 15), 0, y.output())
    }

    /// A console consumer whose ZooKeeper session expires (its link cut for longer than
    /// zookeeper.session.timeout.ms) registers again in the new session, owns its partitions
    /// again and goes on from the committed offsets.
    func testSessionExpiryReRegisters() async throws {
        let c = try await startCluster()
        let topic = "expiry", group = "expiry-group"
        try c.createTopic(topic, partitions: 2)
        try c.waitForLeaders(topic: topic, partitions: 2)
        let zk = try await zkClient(c)
        let proxy = try TCPProxy.start(to: c.zooKeeper.port)
        defer { proxy.stop() }
        let config = try writeConfig(c, "expiry", ["group.id": group, "zookeeper.session.timeout.ms": "2000",
                                                   "auto.commit.interval.ms": "200", "rebalance.backoff.ms": "300"])
        let s = try BackgroundProcess.launch(Project.script("kafka-console-consumer.sh"),
                                             ["--zookeeper", proxy.connectString, "--topic", topic, "--consumer.config", config],
                                             environment: ["KAFKA_LOG_LEVEL": "info"], currentDirectory: Project.root,
                                             outputFile: "\(c.directory)/expiry.out")
        processes.append(s)
        let id = try await eventually("the consumer to own both partitions") { () -> String? in
            let o = await owners(zk, group: group, topic: topic)
            return o.count == 2 ? o[0] : nil
        }
        try await eventually("committed start positions") {
            await committed(zk, group: group, topic: topic, partitions: 2).allSatisfy { $0 != nil } ? true : nil
        }
        let e1 = try produce(c, topic: topic, partitions: 2, prefix: "e1", count: 5)
        try await eventually("the first batch") { messages(s, prefix: "e1").count >= 10 ? true : nil }
        try await eventually("offsets 5 committed") {
            await committed(zk, group: group, topic: topic, partitions: 2) == ["5", "5"] ? true : nil
        }
        let regPath = "/consumers/\(group)/ids/\(id.dropLast(2))"
        guard let before = try await zk.exists(regPath) else { return XCTFail("no registration at \(regPath)") }

        proxy.cut()
        try await eventually("the server to expire the consumer's session", timeout: 20) {
            try await zk.exists(regPath) == nil ? true : nil
        }
        proxy.heal()
        let after = try await eventually("the registration in a new session", timeout: 30) { () -> ZNodeStat? in
            guard let st = try await zk.exists(regPath), st.ephemeralOwner != before.ephemeralOwner else { return nil }
            return st
        }
        XCTAssertNotEqual(after.ephemeralOwner, 0)
        try await eventually("both partitions owned again") {
            await owners(zk, group: group, topic: topic) == [0: id, 1: id] ? true : nil
        }
        let e2 = try produce(c, topic: topic, partitions: 2, prefix: "e2", count: 5)
        try await eventually("the second batch") { messages(s, prefix: "e2").count >= 10 ? true : nil }
        try await Task.sleep(nanoseconds: 300_000_000)
        let all = messages(s, prefix: "e1") + messages(s, prefix: "e2")
        assertNoDuplicates(all, "across the session expiry")
        XCTAssertEqual(Set(all), e1.union(e2))
        XCTAssertTrue(s.output().contains("re-registered in a new ZooKeeper session"), s.output())
        XCTAssertEqual(s.stop(grace: 15), 0, s.output())
        let final = await committed(zk, group: group, topic: topic, partitions: 2)
        XCTAssertEqual(final, ["10", "10"])
    }

    /// kafka-consumer-offset-checker.sh after a group consumed part of a topic: Kafka's exact
    /// columns; offsets from ZooKeeper, logSize from the leader, lag, owner `none`; then with a
    /// live member (owner = its thread id, lag 0), --broker-info, and its error paths.
    func testOffsetChecker() async throws {
        let c = try await startCluster()
        let topic = "checked", group = "checker-group"
        try c.createTopic(topic, partitions: 4)
        try c.waitForLeaders(topic: topic, partitions: 4)
        let zk = try await zkClient(c)
        _ = try produce(c, topic: topic, partitions: 4, prefix: "c", count: 10)
        let config = try writeConfig(c, "checker", ["group.id": group, "auto.commit.interval.ms": "200"])
        func line(_ cols: [String]) -> String {
            func pad(_ s: String, _ n: Int) -> String { s.padding(toLength: max(n, s.count), withPad: " ", startingAt: 0) }
            return [pad(cols[0], 15), pad(cols[1], 30), pad(cols[2], 3), pad(cols[3], 15), pad(cols[4], 15), pad(cols[5], 15), cols[6]].joined(separator: " ")
        }
        let header = line(["Group", "Topic", "Pid", "Offset", "logSize", "Lag", "Owner"])

        // Consume 15 of the 40 messages and exit.
        let part = try Project.run("kafka-console-consumer.sh", ["--zookeeper", c.zkConnect, "--topic", topic, "--consumer.config", config,
                                                                 "--from-beginning", "--max-messages", "15"], timeout: 60)
        XCTAssertEqual(part.exitCode, 0, part.summary)
        let consumed = part.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(consumed.count, 15, part.summary)
        var perPartition = [Int](repeating: 0, count: 4)
        for v in consumed { perPartition[Int(partitionOf(v))] += 1 }
        let offsets = await committed(zk, group: group, topic: topic, partitions: 4)
        XCTAssertEqual(offsets, perPartition.map { String($0) }, "committed = next offset to consume of each partition")

        let r = try Project.run("kafka-consumer-offset-checker.sh", ["--zookeeper", c.zkConnect, "--group", group])
        XCTAssertEqual(r.exitCode, 0, r.summary)
        var expected = [header] + (0..<4).map { p in
            line([group, topic, "\(p)", "\(perPartition[p])", "10", "\(10 - perPartition[p])", "none"])
        }
        XCTAssertEqual(r.stdout, expected.joined(separator: "\n") + "\n", r.summary)

        // A live member consumes the rest: lag 0, owner = its thread id.
        let live = try startConsole(c, "live", ["--topic", topic, "--consumer.config", config])
        try await eventually("the live member to print the other 25") { messages(live, prefix: "c").count >= 25 ? true : nil }
        let liveId = try await eventually("the live member's registration") { try await zk.children("/consumers/\(group)/ids").first }
        expected = [header] + (0..<4).map { p in line([group, topic, "\(p)", "10", "10", "0", "\(liveId)-0"]) }
        let broker = "BROKER INFO\n0 -> 127.0.0.1:\(c.broker.port)"
        let withInfo = try await eventually("offsets 10 and lag 0 in the checker", timeout: 20) { () -> ProcessResult? in
            let r = try Project.run("kafka-consumer-offset-checker.sh", ["--zookeeper", c.zkConnect, "--group", group, "--topic", topic, "--broker-info"])
            return r.stdout == expected.joined(separator: "\n") + "\n" + broker + "\n" ? r : nil
        }
        XCTAssertEqual(withInfo.exitCode, 0, withInfo.summary)
        print("kafka-consumer-offset-checker.sh after a partial consume:\n\(r.stdout)with a live member and --broker-info:\n\(withInfo.stdout)")
        XCTAssertEqual(live.stop(grace: 15), 0, live.output())

        // A topic the group never committed for: an existing offsets directory counts as -1
        // ("unknown" lag); a missing one aborts. A group without owners aborts.
        try c.createTopic("other", partitions: 1)
        try c.waitForLeaders(topic: "other", partitions: 1)
        let missingDir = try Project.run("kafka-consumer-offset-checker.sh", ["--zookeeper", c.zkConnect, "--group", group, "--topic", "other"])
        XCTAssertEqual(missingDir.stdout, "Exiting due to: org.apache.zookeeper.KeeperException$NoNodeException: KeeperErrorCode = NoNode for /consumers/\(group)/offsets/other/0.\n", missingDir.summary)
        try await zk.createRecursive("/consumers/\(group)/offsets/other", data: nil)
        let unknown = try Project.run("kafka-consumer-offset-checker.sh", ["--zookeeper", c.zkConnect, "--group", group, "--topic", "other,\(topic)"])
        // Topics print in name order: "checked" before "other".
        XCTAssertEqual(unknown.stdout, ([header] + (0..<4).map { p in line([group, topic, "\(p)", "10", "10", "0", "none"]) }
                                        + [line([group, "other", "0", "-1", "0", "unknown", "none"])]).joined(separator: "\n") + "\n", unknown.summary)
        let noGroup = try Project.run("kafka-consumer-offset-checker.sh", ["--zookeeper", c.zkConnect, "--group", "nosuchgroup"])
        XCTAssertEqual(noGroup.exitCode, 0, noGroup.summary)
        XCTAssertEqual(noGroup.stdout, "Exiting due to: org.apache.zookeeper.KeeperException$NoNodeException: KeeperErrorCode = NoNode for /consumers/nosuchgroup/owners.\n", noGroup.summary)
        let usage = try Project.run("kafka-consumer-offset-checker.sh", ["--zookeeper", c.zkConnect])
        XCTAssertEqual(usage.exitCode, 1, usage.summary)
        XCTAssertTrue(usage.stderr.contains("Missing required argument \"[group]\""), usage.summary)
    }

    /// pykafka's BalancedConsumer (ZooKeeper-balanced, no rdkafka): resumes from offsets our
    /// console consumer committed, consumes the rest, commits (OffsetCommit → ZooKeeper); two of
    /// them split a topic. pykafka's ZooKeeper layout differs from Kafka's (its ids node holds the
    /// bare topic name, its owner nodes are named `<leader>-<partition>`), so it cannot share a
    /// group with Kafka's high-level consumer; the test records that layout.
    func testPykafkaBalancedConsumer() async throws {
        let python = try Project.requireVenvPython()
        let c = try await startCluster()
        let topic = "balanced"
        try c.createTopic(topic, partitions: 4)
        try c.waitForLeaders(topic: topic, partitions: 4)
        let zk = try await zkClient(c)
        let all = try produce(c, topic: topic, partitions: 4, prefix: "y", count: 10)
        let hosts = "127.0.0.1:\(c.broker.port)"

        // Our console consumer takes 12 messages for the group and commits.
        let config = try writeConfig(c, "pyk", ["group.id": "pyk-group"])
        let console = try Project.run("kafka-console-consumer.sh", ["--zookeeper", c.zkConnect, "--topic", topic, "--consumer.config", config,
                                                                    "--from-beginning", "--max-messages", "12"], timeout: 60)
        XCTAssertEqual(console.exitCode, 0, console.summary)
        let first = Set(console.stdout.split(separator: "\n").map(String.init))
        XCTAssertEqual(first.count, 12)

        // pykafka in the same group continues from those offsets: exactly the other 28.
        let r = try ProcessRunner.run(python, [Project.interopScript("pykafka_balanced_check.py"), "consume", "--hosts", hosts,
                                               "--zookeeper", c.zkConnect, "--topic", topic, "--group", "pyk-group", "--count", "28",
                                               "--timeout", "40"], timeout: 90)
        XCTAssertEqual(r.exitCode, 0, r.summary)
        let objects = r.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let values = objects.compactMap { $0["value"] as? String }
        XCTAssertEqual(values.count, 28, r.summary)
        XCTAssertEqual(Set(values), all.subtracting(first), r.summary)
        XCTAssertEqual((objects.last?["held"] as? [Int])?.sorted(), [0, 1, 2, 3], r.summary)
        let pykOffsets = await committed(zk, group: "pyk-group", topic: topic, partitions: 4)
        XCTAssertEqual(pykOffsets, ["10", "10", "10", "10"], "pykafka's commits land in ZooKeeper as next offsets")

        // Two pykafka balanced consumers split the topic and read every message once.
        let s = try ProcessRunner.run(python, [Project.interopScript("pykafka_balanced_check.py"), "split", "--hosts", hosts,
                                               "--zookeeper", c.zkConnect, "--topic", topic, "--group", "pyk-split", "--count", "40",
                                               "--timeout", "60"], timeout: 100)
        XCTAssertEqual(s.exitCode, 0, s.summary)
        let lines = s.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let msgs = lines.filter { $0["value"] != nil }
        let got = msgs.compactMap { $0["value"] as? String }
        assertNoDuplicates(got, "pykafka split")
        XCTAssertEqual(Set(got), all, s.summary)
        guard let summary = lines.last, let held = summary["held"] as? [[Int]], held.count == 2 else {
            return XCTFail("no summary line: \(s.summary)")
        }
        XCTAssertEqual(held.map(\.count), [2, 2], s.summary)
        XCTAssertEqual(Set(held[0]).intersection(held[1]), [], s.summary)
        for m in msgs {
            let i = m["consumer"] as! Int, p = m["partition"] as! Int
            XCTAssertTrue(held[i].contains(p), "consumer \(i) read partition \(p) it does not hold: \(s.summary)")
        }
        // pykafka's layout: ids data = the topic name (not Kafka's registration JSON); owners
        // `<leader>-<partition>` (Kafka: `<partition>`) holding the consumer id, under a topic
        // directory that pykafka 2.8 on Python 3 names `b'<topic>'` (it formats the bytes name).
        let ids = summary["ids"] as? [String: String] ?? [:]
        XCTAssertEqual(ids.count, 2, s.summary)
        XCTAssertTrue(ids.values.allSatisfy { $0 == topic }, s.summary)
        let ownerNodes = (summary["owners"] as? [String: String] ?? [:]).keys.sorted()
        XCTAssertEqual(ownerNodes, (0..<4).map { "b'\(topic)'/0-\($0)" }, s.summary)
        let splitOffsets = await committed(zk, group: "pyk-split", topic: topic, partitions: 4)
        XCTAssertEqual(splitOffsets, ["10", "10", "10", "10"])
    }
}
