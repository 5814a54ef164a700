import Foundation
import KafkaTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Issue 10 item 3: ZooKeeper and three brokers on separate hosts (network namespaces with their
/// own addresses, FaultCluster), each broker with `host.name` / `advertised.host.name` set to its
/// address and `zookeeper.connect` under a chroot. The 3-broker walkthrough runs there with kcat and
/// the bin/ tools from the root namespace (another machine, as far as the cluster can tell); then one
/// broker's link is cut (not killed) and the controller and ISR react; then the link heals.
final class MultiHostTests: XCTestCase {
    private var cluster: FaultCluster?

    override func tearDown() async throws {
        if let c = cluster {
            if (testRun?.failureCount ?? 0) + (testRun?.unexpectedExceptionCount ?? 0) > 0 { print(c.diagnostics()) }
            c.shutdown()
            cluster = nil
        }
        try await super.tearDown()
    }

    /// Skips (with the reason printed) only where the kernel refuses network namespaces.
    static func requireNamespaces() throws {
        let ns = "kfprobe-\(getpid())"
        let r = try ProcessRunner.run("/usr/bin/env", ["ip", "netns", "add", ns], timeout: 10)
        _ = try? ProcessRunner.run("/usr/bin/env", ["ip", "netns", "del", ns], timeout: 10)
        if r.exitCode != 0 {
            let reason = "network namespaces are refused here (`ip netns add` exit \(r.exitCode): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))); the multi-host test needs root and netns"
            print("MultiHostTests skipped: \(reason)")
            throw XCTSkip(reason)
        }
    }

    private func kcat(_ c: FaultCluster, brokers: [FaultCluster.Broker], _ args: [String], stdin: String? = nil) throws -> ProcessResult {
        let kcat = try Project.requireTool("kcat", install: "apt-get install kcat")
        let list = brokers.map { "\($0.address):\(c.kafkaPort)" }.joined(separator: ",")
        return try ProcessRunner.run(kcat, ["-b", list, "-X", "api.version.request=false", "-X", "broker.version.fallback=0.8.2"] + args,
                                     stdin: stdin, timeout: 60)
    }

    private func produce(_ c: FaultCluster, brokers: [FaultCluster.Broker], _ values: [String]) throws {
        let r = try kcat(c, brokers: brokers, ["-P", "-t", "walk", "-p", "0", "-X", "request.required.acks=-1"],
                         stdin: values.joined(separator: "\n") + "\n")
        XCTAssertEqual(r.exitCode, 0, "kcat -P: \(r.summary)")
    }

    private func consumeAll(_ c: FaultCluster, brokers: [FaultCluster.Broker]) throws -> [String] {
        let r = try kcat(c, brokers: brokers, ["-C", "-t", "walk", "-p", "0", "-o", "beginning", "-e", "-f", "%s\\n"])
        XCTAssertEqual(r.exitCode, 0, "kcat -C: \(r.summary)")
        return r.stdout.split(separator: "\n").map(String.init)
    }

    private func describe(_ c: FaultCluster) throws -> DescribedPartition? {
        let r = try Project.run("kafka-topics.sh", ["--zookeeper", c.brokerZkConnect, "--describe", "--topic", "walk"])
        return DescribedPartition.parse(r.stdout, topic: "walk").first
    }

    func testWalkthroughAcrossHostsAndALinkCut() async throws {
        try Project.requireReleaseBuild()
        try Self.requireNamespaces()
        var o = FaultCluster.Options()
        o.brokerCount = 3
        o.diskMB = 0
        o.useShim = false
        o.chroot = "/kafka-hosts"
        o.brokerProperties = ["zookeeper.session.timeout.ms": "4000"]
        let started = Date()
        let c = try await FaultCluster(options: o) { print("multi-host: \($0)") }
        cluster = c
        print("multi-host: cluster up in \(String(format: "%.1f", Date().timeIntervalSince(started))) s; zookeeper.connect=\(c.brokerZkConnect)")
        let zk = try await ZkInspector.connect(c.brokerZkConnect)
        defer { Task { await zk.close() } }

        // Each broker advertises its own host's address.
        let listing = try kcat(c, brokers: c.brokers, ["-L"])
        XCTAssertEqual(listing.exitCode, 0, listing.summary)
        for b in c.brokers {
            XCTAssertTrue(listing.stdout.contains("broker \(b.id) at \(b.address):\(c.kafkaPort)"), listing.summary)
        }

        // The walkthrough: an RF 3 topic, produce and consume with kcat.
        let created = try Project.run("kafka-topics.sh", ["--zookeeper", c.brokerZkConnect, "--create", "--topic", "walk",
                                                          "--partitions", "1", "--replication-factor", "3"])
        XCTAssertEqual(created.exitCode, 0, created.summary)
        let initial = try await zk.waitForState("walk", 0, timeout: 30, "a leader and an ISR of 3") { $0.leader > 0 && $0.isr.count == 3 }
        let first = (0..<100).map { "walk-\($0)" }
        try produce(c, brokers: c.brokers, first)
        XCTAssertEqual(try consumeAll(c, brokers: c.brokers), first)

        // kill -9 the leader: a new leader from the ISR; everything still there.
        let killed = c.broker(Int(initial.leader))
        c.kill9(killed)
        let afterKill = try await zk.waitForState("walk", 0, timeout: 30, "a leader other than \(killed.id)") {
            $0.leader > 0 && $0.leader != initial.leader
        }
        let d = try XCTUnwrap(try describe(c))
        XCTAssertEqual(d.leader, afterKill.leader, "kafka-topics --describe through the chroot")
        let live = c.brokers.filter { $0.id != killed.id }
        let second = (100..<150).map { "walk-\($0)" }
        try produce(c, brokers: live, second)
        XCTAssertEqual(try consumeAll(c, brokers: live), first + second)

        // The killed broker returns and catches up.
        try c.startBroker(killed)
        try await c.waitRegistered(killed, timeout: 60)
        try await zk.waitForState("walk", 0, timeout: 60, "broker \(killed.id) back in the ISR") { $0.isr.count == 3 }

        // Cut the link of the current leader (the process keeps running): its session expires, it
        // leaves /brokers/ids, the controller moves leadership and shrinks the ISR.
        let cutState = try await zk.waitForState("walk", 0, timeout: 5, "a leader") { $0.leader > 0 }
        let cut = c.broker(Int(cutState.leader))
        let controllerBefore = try await zk.controllerId()
        let cutAt = Date()
        try c.network.setLink(cut.host, up: false)
        _ = try await pollAsync(timeout: 30, "broker \(cut.id) to leave /brokers/ids") { () -> Bool? in
            try await zk.liveBrokerIds().contains(Int32(cut.id)) ? nil : true
        }
        let gone = Date().timeIntervalSince(cutAt)
        let moved = try await zk.waitForState("walk", 0, timeout: 30, "leadership to move off broker \(cut.id) and the ISR to shrink") {
            $0.leader > 0 && $0.leader != Int32(cut.id) && !$0.isr.contains(Int32(cut.id))
        }
        let controllerAfter = try await pollAsync(timeout: 30, "a live controller") { () -> Int32? in
            guard let id = try await zk.controllerId(), id != Int32(cut.id) else { return nil }
            return id
        }
        print("multi-host: link of broker \(cut.id) cut: out of /brokers/ids after \(String(format: "%.1f", gone)) s, "
              + "state \(moved) after \(String(format: "%.1f", Date().timeIntervalSince(cutAt))) s; controller \(controllerBefore.map(String.init) ?? "-") -> \(controllerAfter)")
        XCTAssertTrue(cut.isRunning, "the cut broker's process was not killed")
        let others = c.brokers.filter { $0.id != cut.id }
        let third = (150..<200).map { "walk-\($0)" }
        try produce(c, brokers: others, third)

        // Heal: the broker registers again and rejoins the ISR; nothing acknowledged is missing.
        try c.network.setLink(cut.host, up: true)
        try await c.waitRegistered(cut, timeout: 60)
        try await zk.waitForState("walk", 0, timeout: 60, "broker \(cut.id) back in the ISR") { $0.isr.count == 3 }
        XCTAssertEqual(try consumeAll(c, brokers: c.brokers), first + second + third)
    }
}
