import ArgumentParser
import Foundation
import KafkaTestSupport

/// `kafka-tools fault-campaign`: ZooKeeper and three brokers on network-namespace hosts, the
/// queue workload (acks=-1 and acks=1), faults drawn from a seed, then the checker's table.
public struct FaultCampaignCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "fault-campaign",
        abstract: "Run a fault campaign against three brokers on network namespaces and check for lost writes.",
        discussion: """
            Needs root (ip netns, veth, nftables, tmpfs). Faults: \(FaultKind.allCases.map(\.rawValue).joined(separator: ", ")).
            The campaign runs until --duration-seconds have passed and at least --min-faults faults were applied.
            Exit status 0 when nothing acknowledged with acks=-1 was lost or moved and the replicas are identical
            (with --unsafe: always 0 once the table is printed; losses are expected there).
            Example:
              kafka-tools fault-campaign --seed 42 --duration-seconds 900 --min-faults 100
            """)
    @Option(name: .customLong("seed"), help: "Seed of the fault schedule (default: the current time). Printed, so that a run replays.") var seed: UInt64?
    @Option(name: .customLong("duration-seconds"), help: "Keep applying faults for this long.") var duration: Double = 120
    @Option(name: .customLong("min-faults"), help: "Apply at least this many faults (even past the duration).") var minFaults = 0
    @Option(name: .customLong("max-faults"), help: "Stop after this many faults.") var maxFaults: Int?
    @Option(name: .customLong("faults"), help: "Comma-separated fault kinds (default: all).") var faults: String?
    @Flag(name: .customLong("unsafe"), help: "unclean.leader.election.enable=true and min.insync.replicas=1 (to show the checker sees loss).") var unsafe = false
    @Option(name: .customLong("partitions"), help: "Partitions per topic.") var partitions = 3
    @Option(name: .customLong("rate"), help: "Writes per second per partition (one message per request).") var rate: Double = 20
    @Option(name: .customLong("session-timeout-ms"), help: "zookeeper.session.timeout.ms of the brokers.") var sessionTimeoutMs = 4000
    @Option(name: .customLong("replica-lag-time-max-ms"), help: "replica.lag.time.max.ms of the brokers.") var replicaLagMs = 5000
    @Option(name: .customLong("zk-stop-seconds"), help: "How long a zk-stop fault keeps ZooKeeper down.") var zkStopSeconds: Double = 30
    @Option(name: .customLong("disk-mb"), help: "Size of each broker's log tmpfs.") var diskMB = 64
    @Option(name: .customLong("recovery-limit-seconds"), help: "After a heal, wait at most this long for writes and the full ISR to come back.") var recoveryLimit: Double = 60
    @Option(name: .customLong("broker-property"), help: "Extra broker property key=value (repeatable).") var brokerProperty: [String] = []
    @Option(name: .customLong("broker-command"), help: ArgumentHelp("Run another broker on each host instead of this project's kafka-server: a /bin/sh command, {} = the server.properties path (appended when absent).", discussion: "E.g. Kafka 0.8.2.2: --broker-command '/tmp/k822/kafka-run.sh {}' (a script ending in `exec java ... kafka.Kafka \"$1\"`). The command is run with exec, so kill -9 / SIGSTOP reach the broker process.")) var brokerCommand: String?
    @Flag(name: .customLong("keep"), help: "Keep the campaign directory (broker logs, log dirs).") var keep = false
    public init() {}

    public func run() async throws {
        var o = CampaignOptions()
        o.seed = seed ?? UInt64(Date().timeIntervalSince1970 * 1000) % 1_000_000_007
        o.durationSeconds = duration
        o.minFaults = minFaults
        o.maxFaults = maxFaults
        // `--duration-seconds 0 --max-faults N` means N faults.
        if duration <= 0, minFaults == 0, let maxFaults { o.minFaults = maxFaults }
        if let faults {
            o.kinds = try faults.split(separator: ",").map { name in
                guard let k = FaultKind(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("unknown fault kind \"\(name)\" (known: \(FaultKind.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                return k
            }
        }
        o.unsafe = unsafe
        o.partitions = partitions
        o.writesPerSecondPerPartition = rate
        o.sessionTimeoutMs = sessionTimeoutMs
        o.replicaLagTimeMaxMs = replicaLagMs
        o.zkStopSeconds = zkStopSeconds
        o.diskMB = diskMB
        o.keepDirectory = keep
        o.recoveryLimit = recoveryLimit
        o.brokerCommand = brokerCommand
        for kv in brokerProperty {
            guard let eq = kv.firstIndex(of: "=") else { throw ValidationError("--broker-property wants key=value, got \(kv)") }
            o.extraBrokerProperties[String(kv[..<eq])] = String(kv[kv.index(after: eq)...])
        }
        // Ctrl-C / SIGTERM: stop the brokers and ZooKeeper, remove the namespaces and the tmpfs mounts.
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                FileHandle.standardError.write(Data("fault-campaign: interrupted; cleaning up\n".utf8))
                FaultCluster.shutdownAll()
                Foundation.exit(130)
            }
            source.resume()
            sources.append(source)
        }
        defer { for s in sources { s.cancel() } }
        let report = try await FaultCampaign(options: o).run()
        print(report.table)
        if !report.passed && !unsafe { throw ToolError("fault campaign failed (seed \(o.seed))") }
    }
}
