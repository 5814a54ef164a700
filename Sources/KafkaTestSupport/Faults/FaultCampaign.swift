import Foundation
import KafkaClient
import KafkaProtocol
import ZooKeeper

#if canImport(Glibc)
import Glibc
#endif

public enum FaultKind: String, CaseIterable, Sendable {
    /// kill -9, down for the hold time, restarted (the heal).
    case kill
    /// SIGSTOP for longer than zookeeper.session.timeout.ms, then SIGCONT.
    case pause
    /// Every packet in and out of the broker's host dropped (nftables in its namespace).
    case partition
    /// The broker's Kafka port blocked from and to the other brokers; ZooKeeper and clients still reach it.
    case portBlock = "port-block"
    /// ZooKeeper killed, restarted after the hold time.
    case zkStop = "zk-stop"
    /// The broker's log tmpfs filled up.
    case diskFull = "disk-full"
    /// fsync / fdatasync / msync fail with EIO (LD_PRELOAD shim).
    case fsyncFail = "fsync-fail"
    /// pwrite / write to the log dir fail with EIO (LD_PRELOAD shim).
    case writeFail = "write-fail"
    /// Jepsen 2013: the leader's Kafka port cut until the ISR shrinks to the leader, then the leader
    /// isolated entirely for longer than the session timeout, then everything healed.
    case leaderIsolation = "leader-isolation"

    public static let defaultKinds: [FaultKind] = allCases
}

/// One planned fault: drawn from the seed before the cluster state is looked at.
public struct PlannedFault: Sendable {
    public var kind: FaultKind
    /// nil: the leader of `partition` (of the acks=-1 topic) when the fault starts; else a broker id.
    public var broker: Int?
    public var partition: Int32
    public var hold: Double
    public var gap: Double
}

/// What happened to one fault.
public struct FaultRecord: Sendable {
    public var index: Int
    public var kind: FaultKind
    public var target: String
    public var startedAt: Double
    public var hold: Double
    /// Seconds from the heal until every partition of the acks=-1 topic accepted a write again (nil: not within the limit).
    public var availability: Double?
    /// Seconds from the heal until every partition had its full ISR again (nil: not within the limit).
    public var fullIsr: Double?
    /// Brokers that exited on their own during the fault, with their exit codes.
    public var exits: [String] = []
}

public struct CampaignOptions: Sendable {
    public var seed: UInt64 = UInt64(Date().timeIntervalSince1970)
    public var durationSeconds: Double = 120
    public var minFaults = 0
    public var maxFaults: Int?
    public var kinds: [FaultKind] = FaultKind.defaultKinds
    /// unclean.leader.election.enable=true and min.insync.replicas=1.
    public var unsafe = false
    public var partitions = 3
    public var writesPerSecondPerPartition: Double = 20
    public var sessionTimeoutMs = 4000
    public var replicaLagTimeMaxMs = 5000
    public var zkStopSeconds: Double = 8
    public var diskMB = 64
    /// Give up waiting for writes (or the full ISR) after a heal after this many seconds.
    public var recoveryLimit: Double = 60
    public var extraBrokerProperties: [String: String] = [:]
    public var keepDirectory = false
    /// A different broker to run on each host (see `FaultCluster.Options.brokerCommand`); nil: this project's kafka-server.
    public var brokerCommand: String?
    public init() {}

    /// The kafka-tools command line that runs this campaign again.
    public var replayCommand: String {
        var a = ["kafka-tools fault-campaign", "--seed \(seed)", "--duration-seconds \(Int(durationSeconds))",
                 "--min-faults \(minFaults)", "--faults \(kinds.map(\.rawValue).joined(separator: ","))",
                 "--zk-stop-seconds \(Int(zkStopSeconds))", "--session-timeout-ms \(sessionTimeoutMs)",
                 "--replica-lag-time-max-ms \(replicaLagTimeMaxMs)", "--partitions \(partitions)",
                 "--rate \(Int(writesPerSecondPerPartition))", "--disk-mb \(diskMB)",
                 "--recovery-limit-seconds \(Int(recoveryLimit))"]
        if let maxFaults { a.append("--max-faults \(maxFaults)") }
        if unsafe { a.append("--unsafe") }
        if let brokerCommand { a.append("--broker-command '\(brokerCommand)'") }
        for (k, v) in extraBrokerProperties.sorted(by: { $0.key < $1.key }) { a.append("--broker-property \(k)=\(v)") }
        return a.joined(separator: " ")
    }

    public var brokerProperties: [String: String] {
        var p: [String: String] = [
            "zookeeper.session.timeout.ms": "\(sessionTimeoutMs)",
            "zookeeper.connection.timeout.ms": "10000",
            "replica.lag.time.max.ms": "\(replicaLagTimeMaxMs)",
            "min.insync.replicas": unsafe ? "1" : "2",
            "unclean.leader.election.enable": unsafe ? "true" : "false",
            "log.segment.bytes": "1048576",
            "log.flush.interval.ms": "2000",
            "log.flush.scheduler.interval.ms": "1000",
            "controlled.shutdown.enable": "true",
        ]
        p.merge(extraBrokerProperties) { _, new in new }
        return p
    }
}

public struct CampaignReport: Sendable {
    public var seed: UInt64
    public var unsafe: Bool
    public var faults: [FaultRecord] = []
    public var checks: [QueueCheck] = []
    public var replicas: [ReplicaCheck] = []
    public var wallSeconds: Double = 0
    public var problems: [String] = []

    public var replicasIdentical: Bool { !replicas.isEmpty && replicas.allSatisfy(\.identical) }
    public var acksAllCheck: QueueCheck? { checks.first { $0.acks == -1 } }

    /// The safe-settings verdict: nothing acknowledged with acks=-1 lost or moved, no duplicates,
    /// replicas identical up to the high watermark, no harness problems.
    public var passed: Bool {
        guard let all = acksAllCheck else { return false }
        return all.ok && replicasIdentical && problems.isEmpty
    }

    static func percentile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let i = min(sorted.count - 1, max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1))
        return sorted[i]
    }

    static func distribution(_ values: [Double?]) -> String {
        let ok = values.compactMap { $0 }.sorted()
        let missing = values.count - ok.count
        if values.isEmpty { return "n=0" }
        guard !ok.isEmpty else { return "n=\(values.count), none recovered" }
        let f = { (x: Double) in String(format: "%.2f", x) }
        var s = "n=\(values.count) min \(f(ok.first!)) p50 \(f(percentile(ok, 0.5))) p90 \(f(percentile(ok, 0.9))) max \(f(ok.last!)) s"
        if missing > 0 { s += "; \(missing) not recovered within the limit" }
        return s
    }

    public var table: String {
        var lines: [String] = []
        lines.append("Fault campaign: seed \(seed), \(unsafe ? "UNSAFE (unclean.leader.election.enable=true, min.insync.replicas=1)" : "safe (unclean.leader.election.enable=false, min.insync.replicas=2)"), \(faults.count) faults in \(Int(wallSeconds)) s")
        let kinds = Dictionary(grouping: faults, by: \.kind)
        lines.append("faults: " + kinds.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue) \($0.value.count)" }.joined(separator: ", "))
        let hdr = ["topic", "acks", "attempts", "acknowledged", "failed", "indeterminate", "lost", "duplicated", "reordered", "offset-conflicts", "unacked-present", "in-log"]
        var rows = [hdr]
        for c in checks {
            rows.append([c.topic, "\(c.acks)", "\(c.attempts)", "\(c.acknowledged)", "\(c.failed)", "\(c.indeterminate)",
                         "\(c.lost.count)", "\(c.duplicated.count)", "\(c.reordered)", "\(c.offsetConflicts.count)",
                         "\(c.unacknowledgedPresent)", "\(c.messagesInLog)"])
        }
        let widths = (0..<hdr.count).map { i in rows.map { $0[i].count }.max()! }
        for r in rows {
            lines.append(r.enumerated().map { i, s in i == 0 ? s.padding(toLength: widths[i], withPad: " ", startingAt: 0) : String(repeating: " ", count: widths[i] - s.count) + s }.joined(separator: "  "))
        }
        let same = replicas.filter(\.identical).count
        lines.append("replicas identical up to the high watermark: \(same)/\(replicas.count) partitions" + (replicasIdentical ? " (yes)" : " (NO)"))
        for r in replicas where !r.identical {
            lines.append("  \(r.topic)-\(r.partition) hw \(r.highWatermark) LEO \(r.logEndOffsets.sorted { $0.key < $1.key }.map { "b\($0.key)=\($0.value)" }.joined(separator: " ")): \(r.problem ?? "a replica is missing")")
        }
        lines.append("availability (s from heal until acks=-1 writes accepted on every partition): \(Self.distribution(faults.map(\.availability)))")
        for (k, fs) in kinds.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            lines.append("  \(k.rawValue.padding(toLength: 16, withPad: " ", startingAt: 0)) \(Self.distribution(fs.map(\.availability)))")
        }
        lines.append("full ISR again after heal: \(Self.distribution(faults.map(\.fullIsr)))")
        let exits = faults.filter { !$0.exits.isEmpty }
        if !exits.isEmpty {
            lines.append("brokers that exited by themselves during a fault:")
            for f in exits { lines.append("  fault #\(f.index) \(f.kind.rawValue) on \(f.target): \(f.exits.joined(separator: ", "))") }
        }
        for c in checks {
            // acks=1 may lose what a leader acknowledged before its followers had it: Kafka's contract.
            let note = c.acks == -1 ? "" : " [acks=\(c.acks): allowed]"
            for l in c.lost.prefix(10) { lines.append("  LOST\(note) \(l)") }
            for l in c.offsetConflicts.prefix(10) { lines.append("  CONFLICT\(note) \(l)") }
            for l in c.duplicated.prefix(5) { lines.append("  DUPLICATE \(l)") }
            for l in c.unexpected.prefix(5) { lines.append("  UNEXPECTED \(l)") }
        }
        for p in problems { lines.append("PROBLEM: \(p)") }
        lines.append("verdict: " + (passed ? "PASS (acks=-1: 0 lost, 0 offset conflicts, 0 duplicates; replicas identical)" : "FAIL"))
        return lines.joined(separator: "\n")
    }
}

/// A fault campaign: a cluster on namespace hosts, the queue workload on an acks=-1 and an acks=1
/// topic (RF = brokers, min.insync.replicas 2, unclean election off; or the unsafe settings), faults
/// drawn from the seed one after the other, then a heal, a drain and the checks.
public final class FaultCampaign: @unchecked Sendable {
    public let options: CampaignOptions
    let log: @Sendable (String) -> Void
    var rng: SeededRandom
    var bag: [FaultKind] = []
    var cluster: FaultCluster!
    var workload: QueueWorkload!
    var zk: ZooKeeperClient?
    var t0 = faultClock()
    public let topicAll = "queue-acks-all"
    public let topicOne = "queue-acks-one"

    public init(options: CampaignOptions, log: @escaping @Sendable (String) -> Void = { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }) {
        self.options = options
        self.log = log
        self.rng = SeededRandom(seed: options.seed)
    }

    func say(_ s: String) { log(String(format: "[%7.1f] ", faultClock() - t0) + s) }

    /// The next fault of the seed's schedule.
    func plan() -> PlannedFault {
        // Every kind once per round, in a seeded order: a short campaign still meets every kind.
        if bag.isEmpty { bag = options.kinds.shuffled(using: &rng) }
        let kind = bag.removeFirst()
        let byLeader = rng.next() % 10 < 6
        let broker = 1 + Int(rng.next() % 3)
        let partition = Int32(rng.next() % UInt64(options.partitions))
        let u = Double(rng.next() % 1000) / 1000   // 0..<1
        let session = Double(options.sessionTimeoutMs) / 1000, lag = Double(options.replicaLagTimeMaxMs) / 1000
        let hold: Double
        switch kind {
        case .kill: hold = 1 + 5 * u
        case .pause: hold = session + 1 + 3 * u
        case .partition: hold = 2 + 2 * session * u
        case .portBlock: hold = lag + 1 + 4 * u
        case .zkStop: hold = options.zkStopSeconds
        case .diskFull, .fsyncFail, .writeFail: hold = 3 + 5 * u
        case .leaderIsolation: hold = lag + 2 + session + 2
        }
        let gap = 0.5 + Double(rng.next() % 1000) / 1000
        return PlannedFault(kind: kind, broker: (byLeader || kind == .leaderIsolation) ? nil : broker, partition: partition, hold: hold, gap: gap)
    }

    public func run() async throws -> CampaignReport {
        var report = CampaignReport(seed: options.seed, unsafe: options.unsafe)
        t0 = faultClock()
        say("seed \(options.seed); faults \(options.kinds.map(\.rawValue).joined(separator: ",")); duration \(Int(options.durationSeconds)) s, at least \(options.minFaults) faults\(options.maxFaults.map { ", at most \($0)" } ?? "")")
        say("replay: \(options.replayCommand)")
        var clusterOptions = FaultCluster.Options()
        clusterOptions.brokerProperties = options.brokerProperties
        clusterOptions.diskMB = options.diskMB
        clusterOptions.brokerCommand = options.brokerCommand
        clusterOptions.useShim = options.kinds.contains(.fsyncFail) || options.kinds.contains(.writeFail)
        let log = self.log
        cluster = try await FaultCluster(options: clusterOptions, log: { [t0] s in log(String(format: "[%7.1f] ", faultClock() - t0) + s) })
        defer { cluster.shutdown(keep: options.keepDirectory) }
        if (options.kinds.contains(.fsyncFail) || options.kinds.contains(.writeFail)) && !cluster.shimAvailable {
            throw TestSupportError("fsync-fail / write-fail need the LD_PRELOAD shim, which could not be built (gcc missing?)")
        }
        if let c = options.brokerCommand { say("broker command: \(c)") }
        say("broker properties: " + options.brokerProperties.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        try createTopics()
        workload = QueueWorkload(topics: [.init(name: topicAll, acks: -1), .init(name: topicOne, acks: 1)],
                                 partitions: options.partitions,
                                 endpoints: Dictionary(uniqueKeysWithValues: cluster.brokers.map { ($0.id, $0.address) }),
                                 port: cluster.kafkaPort, ratePerWriter: options.writesPerSecondPerPartition)
        guard try await waitHealthy(timeout: 60) != nil else {
            throw TestSupportError("the cluster did not get every partition a leader and a full ISR within 60 s\n\(cluster.diagnostics())")
        }
        workload.start()
        try await Task.sleep(nanoseconds: 3_000_000_000)
        let start = faultClock()
        var index = 0
        while true {
            let elapsed = faultClock() - start
            if let m = options.maxFaults, index >= m { break }
            if elapsed >= options.durationSeconds && index >= options.minFaults { break }
            index += 1
            let f = plan()
            let record = try await execute(f, index: index)
            report.faults.append(record)
            try await Task.sleep(nanoseconds: UInt64(f.gap * 1e9))
        }
        say("faults done; final heal")
        try await healEverything()
        lastSupervisedRestart = faultClock()
        if try await waitHealthy(timeout: 120, supervise: true) == nil {
            report.problems.append("the cluster did not regain a leader and a full ISR on every partition within 120 s after the final heal")
        }
        try await Task.sleep(nanoseconds: 2_000_000_000)
        await workload.stop()
        say("writers stopped; draining and comparing replicas")
        // Followers may still be fetching the last writes: compare until identical or 60 s pass.
        let deadline = faultClock() + 60
        var drained: [String: [Int32: (highWatermark: Int64, messages: [(offset: Int64, value: String)])]] = [:]
        var replicas: [ReplicaCheck] = []
        repeat {
            drained = [:]
            replicas = []
            for t in [topicAll, topicOne] {
                let d = try await workload.drain(topic: t)
                drained[t] = d
                for (p, v) in d.sorted(by: { $0.key < $1.key }) {
                    replicas.append(QueueChecker.compareReplicas(topic: t, partition: p, highWatermark: v.highWatermark,
                        logDirs: Dictionary(uniqueKeysWithValues: cluster.brokers.map { ($0.id, $0.logDir) })))
                }
            }
            if replicas.allSatisfy(\.identical) { break }
            try await Task.sleep(nanoseconds: 1_000_000_000)
        } while faultClock() < deadline
        let attempts = workload.attempts()
        report.checks = [
            QueueChecker.check(topic: topicAll, acks: -1, attempts: attempts, drained: drained[topicAll]!),
            QueueChecker.check(topic: topicOne, acks: 1, attempts: attempts, drained: drained[topicOne]!),
        ]
        report.replicas = replicas
        for b in cluster.brokers where !b.isRunning {
            report.problems.append("broker \(b.id) is not running at the end (exit \(b.process?.exitStatus.map { "\($0)" } ?? "?"))")
        }
        report.wallSeconds = faultClock() - t0
        if let zk { await zk.close() }
        if !report.passed && !options.unsafe {
            say("campaign failed; broker output tails:\n\(cluster.diagnostics(lines: 30))")
        }
        return report
    }

    func createTopics() throws {
        let tools = ProjectPaths.releaseBinDir + "/kafka-tools"
        for t in [topicAll, topicOne] {
            let r = try ProcessRunner.run(tools, ["topics", "--zookeeper", cluster.zkConnect, "--create", "--topic", t,
                                                  "--partitions", "\(options.partitions)", "--replication-factor", "\(cluster.brokers.count)",
                                                  "--config", "min.insync.replicas=\(options.unsafe ? 1 : 2)",
                                                  "--config", "unclean.leader.election.enable=\(options.unsafe)"], timeout: 60)
            guard r.exitCode == 0 else { throw TestSupportError("creating topic \(t) failed: \(r.stderr)\(r.stdout)") }
        }
    }

    // MARK: Cluster state from ZooKeeper

    func zooKeeper() async throws -> ZooKeeperClient {
        if let zk { return zk }
        let c = try await withFaultTimeout(5, "ZooKeeper connect") { [cluster] in
            try await ZooKeeperClient.connect(cluster!.zkConnect, sessionTimeoutMs: 30000)
        }
        zk = c
        return c
    }

    /// Leader and ISR of every partition as stored in ZooKeeper; nil when ZooKeeper does not answer.
    func partitionStates() async -> [String: (leader: Int, isr: [Int])]? {
        do {
            let zk = try await zooKeeper()
            return try await withFaultTimeout(5, "ZooKeeper reads") { [topicAll, topicOne, options] in
                var out: [String: (leader: Int, isr: [Int])] = [:]
                for t in [topicAll, topicOne] {
                    for p in 0..<options.partitions {
                        let (data, _) = try await zk.get("/brokers/topics/\(t)/partitions/\(p)/state")
                        guard let data, let o = try JSONSerialization.jsonObject(with: Data(data)) as? [String: Any] else { continue }
                        let leader = (o["leader"] as? NSNumber)?.intValue ?? -1
                        let isr = ((o["isr"] as? [Any]) ?? []).compactMap { ($0 as? NSNumber)?.intValue }
                        out[LeaderView.key(t, Int32(p))] = (leader, isr)
                    }
                }
                return out
            }
        } catch {
            if let z = zk { zk = nil; Task { await z.close() } }
            return nil
        }
    }

    /// Waits until every partition has a leader and the full ISR in ZooKeeper, every broker runs
    /// and is registered; the seconds waited, or nil after `timeout`.
    ///
    /// With `supervise`, a broker that exited by itself meanwhile is started again (see `superviseTick`).
    func waitHealthy(timeout: Double, supervise: Bool = false) async throws -> Double? {
        let begin = faultClock()
        while faultClock() - begin < timeout {
            if supervise { try await superviseTick() }
            if cluster.brokers.allSatisfy(\.isRunning), cluster.zooKeeperRunning,
               let states = await partitionStates(), states.count == 2 * options.partitions,
               states.values.allSatisfy({ $0.leader >= 0 && $0.isr.count == cluster.brokers.count }),
               let ids = try? await withFaultTimeout(5, "broker ids", { [zk] in try await zk!.children("/brokers/ids") }),
               ids.count == cluster.brokers.count {
                return faultClock() - begin
            }
            try await Task.sleep(nanoseconds: 200_000_000)
        }
        return nil
    }

    func leader(of partition: Int32) async -> Int? {
        if let s = await partitionStates()?[LeaderView.key(topicAll, partition)], s.leader > 0 { return s.leader }
        await workload.view.refresh(minInterval: 0)
        return workload.view.leader(topicAll, partition)
    }

    // MARK: Faults

    func execute(_ f: PlannedFault, index: Int) async throws -> FaultRecord {
        var brokerId = f.broker
        var targetText = f.broker.map { "broker \($0)" } ?? ""
        if brokerId == nil {
            let l = await leader(of: f.partition)
            brokerId = l ?? 1
            targetText = l.map { "broker \($0) (leader of \(topicAll)-\(f.partition))" } ?? "broker 1 (no leader known for partition \(f.partition))"
        }
        if f.kind == .zkStop { targetText = "ZooKeeper" }
        let b = cluster.broker(brokerId!)
        let wasRunning = Dictionary(uniqueKeysWithValues: cluster.brokers.map { ($0.id, $0.isRunning) })
        var record = FaultRecord(index: index, kind: f.kind, target: targetText, startedAt: faultClock() - t0, hold: f.hold)
        say(String(format: "fault #%d %@ on %@ for %.1f s", index, f.kind.rawValue, targetText, f.hold))
        let sleep = { (s: Double) in try await Task.sleep(nanoseconds: UInt64(s * 1e9)) }
        switch f.kind {
        case .kill:
            cluster.kill9(b)
            try await sleep(f.hold)
        case .pause:
            cluster.pause(b)
            try await sleep(f.hold)
        case .partition:
            try cluster.isolate(b)
            try await sleep(f.hold)
        case .portBlock:
            try cluster.blockKafkaPort(b)
            try await sleep(f.hold)
        case .zkStop:
            cluster.stopZooKeeper()
            try await sleep(f.hold)
        case .diskFull:
            try cluster.fillDisk(b)
            try await sleep(f.hold)
        case .fsyncFail:
            try cluster.setShimFaults(b, fsync: true, write: false)
            try await sleep(f.hold)
        case .writeFail:
            try cluster.setShimFaults(b, fsync: false, write: true)
            try await sleep(f.hold)
        case .leaderIsolation:
            try cluster.blockKafkaPort(b)
            try await sleep(Double(options.replicaLagTimeMaxMs) / 1000 + 2)
            try cluster.isolate(b)
            try await sleep(f.hold - Double(options.replicaLagTimeMaxMs) / 1000 - 2)
        }
        // Who died by itself while the fault was on?
        for br in cluster.brokers where wasRunning[br.id] == true && !br.isRunning && !(f.kind == .kill && br.id == b.id) {
            record.exits.append("broker \(br.id) exit \(br.process?.exitStatus.map { "\($0)" } ?? "?")")
        }
        let healTime = faultClock()
        supervisedRestarts = []
        lastSupervisedRestart = healTime
        try await heal(f.kind, b)
        let restarted = try await restartDead()
        if record.exits.isEmpty { record.exits = restarted } else if !restarted.isEmpty { record.exits = record.exits.map { $0 + " (restarted)" } }
        if !record.exits.isEmpty { say("  exited during the fault: \(record.exits.joined(separator: ", "))") }

        // Availability: until a write to every partition of the acks=-1 topic is acknowledged after the heal.
        while faultClock() - healTime < options.recoveryLimit {
            let acks = workload.firstAck(topic: topicAll, since: healTime)
            if acks.count == options.partitions {
                record.availability = max(0, acks.values.max()! - healTime)
                break
            }
            try await superviseTick()
            try await sleep(0.05)
        }
        let remaining = max(1, options.recoveryLimit - (faultClock() - healTime))
        if try await waitHealthy(timeout: remaining, supervise: true) != nil { record.fullIsr = faultClock() - healTime }
        record.exits += supervisedRestarts
        say(String(format: "  healed: writes accepted after %@, full ISR after %@",
                   record.availability.map { String(format: "%.2f s", $0) } ?? "NEVER (>\(Int(options.recoveryLimit)) s)",
                   record.fullIsr.map { String(format: "%.2f s", $0) } ?? "NEVER (>\(Int(options.recoveryLimit)) s)"))
        return record
    }

    func heal(_ kind: FaultKind, _ b: FaultCluster.Broker) async throws {
        switch kind {
        case .kill:
            try cluster.startBroker(b)
        case .pause:
            cluster.resume(b)
        case .partition, .portBlock, .leaderIsolation:
            try cluster.healNetwork()
        case .zkStop:
            try await cluster.restartZooKeeper()
        case .diskFull:
            cluster.freeDisk(b)
        case .fsyncFail, .writeFail:
            try cluster.setShimFaults(b, fsync: false, write: false)
        }
    }

    /// Restarts of brokers that exited by themselves after a heal, since the last fault began.
    var supervisedRestarts: [String] = []
    var lastSupervisedRestart = 0.0

    /// While waiting for recovery after a heal, a broker that exited by itself is started again (at
    /// most every 3 s), as a service manager would, and the exit is recorded in the fault's exits:
    /// a restart can fail for reasons outside the fault (the binary being relinked by a concurrent
    /// build: "Text file busy"), and a foreign broker (`--broker-command`) may refuse to start, e.g.
    /// Kafka 0.8.2.2 when it finds another broker's node at its /brokers/ids path.
    func superviseTick() async throws {
        guard faultClock() - lastSupervisedRestart >= 3,
              cluster.brokers.contains(where: { !$0.isRunning && $0.process != nil }) else { return }
        lastSupervisedRestart = faultClock()
        for b in cluster.brokers where !b.isRunning && b.process != nil {
            let code = b.process?.exitStatus.map { "\($0)" } ?? "?"
            supervisedRestarts.append("broker \(b.id) exited with \(code) after the heal; restarted")
            say("  broker \(b.id) exited with \(code) after the heal; restarting it. Its last lines:\n"
                + b.tail(6).split(separator: "\n").map { "    | " + $0 }.joined(separator: "\n"))
            try cluster.startBroker(b)
        }
    }

    /// Restarts every broker that is not running; returns "broker N exit X" for each.
    func restartDead() async throws -> [String] {
        var out: [String] = []
        for b in cluster.brokers where !b.isRunning && b.process != nil {
            let code = b.process?.exitStatus
            if code != nil && code != 137 {
                out.append("broker \(b.id) had exited with \(code!); restarted")
                say("  broker \(b.id) exited with \(code!); its last lines:\n" + b.tail(12).split(separator: "\n").map { "    | " + $0 }.joined(separator: "\n"))
            }
            try cluster.startBroker(b)
        }
        return out
    }

    func healEverything() async throws {
        try cluster.healNetwork()
        for b in cluster.brokers {
            cluster.resume(b)
            cluster.freeDisk(b)
            if cluster.shimAvailable { try cluster.setShimFaults(b, fsync: false, write: false) }
        }
        try await cluster.restartZooKeeper()
        _ = try await restartDead()
    }
}
