import ArgumentParser
import Foundation
import KafkaClient
import KafkaCluster
import KafkaProtocol

/// kafka-consumer-offset-checker.sh (kafka.tools.ConsumerOffsetChecker): per partition of a
/// group's topics, the committed offset, the leader's log end (logSize), the lag and the owner.
public struct ConsumerOffsetCheckerCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "kafka-consumer-offset-checker.sh",
        abstract: "Check the offset of your consumers.",
        discussion: """
        Offsets come from the group's offset manager (OffsetFetch), or from ZooKeeper \
        (/consumers/<group>/offsets/<topic>/<partition>) where it has none. logSize is the \
        latest offset of each partition's leader; the owner comes from \
        /consumers/<group>/owners/<topic>/<partition>. Without --topic, the topics are the \
        children of /consumers/<group>/owners.

        Example:
          bin/kafka-consumer-offset-checker.sh --zookeeper localhost:2181 --group my-group
        """)

    @Option(name: .customLong("zookeeper"), help: "ZooKeeper connect string.") var zookeeper = "localhost:2181"
    @Option(name: .customLong("topic"), help: "Comma-separated list of consumer topics (all topics if absent).") var topic: String?
    @Option(name: .customLong("group"), help: "Consumer group.") var group: String?
    @Option(name: .customLong("socket.timeout.ms"), help: "Socket timeout to use when querying for offsets.") var socketTimeoutMs = 6000
    @Option(name: .customLong("retry.backoff.ms"), help: "Retry back-off to use for failed offset queries.") var retryBackoffMs = 3000
    @Flag(name: .customLong("broker-info"), help: "Print broker info") var brokerInfo = false

    public init() {}

    /// Kafka's `%-15s %-30s %-3s %-15s %-15s %-15s %s`.
    public static func line(_ group: String, _ topic: String, _ pid: String, _ offset: String, _ logSize: String, _ lag: String, _ owner: String) -> String {
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        return "\(pad(group, 15)) \(pad(topic, 30)) \(pad(pid, 3)) \(pad(offset, 15)) \(pad(logSize, 15)) \(pad(lag, 15)) \(owner)"
    }

    /// A failure reported as Kafka's tool does: `Exiting due to: <msg>.` on stdout.
    struct Abort: Error { var message: String }

    static func noNode(_ path: String) -> Abort {
        Abort(message: "org.apache.zookeeper.KeeperException$NoNodeException: KeeperErrorCode = NoNode for \(path)")
    }

    public func run() async throws {
        // Kafka's CommandLineUtils.checkRequiredArgs: the message (and here a one-line usage) on stderr, exit 1.
        var usage = UsageCheck()
        usage.require("group", group != nil)
        try usage.check()
        let group = group!
        let zk: KafkaZooKeeper
        do { zk = try await ToolZooKeeper.connect(zookeeper) } catch {
            // 0.8.2 reports a ZooKeeper it cannot reach on stdout and exits 0.
            Console.out("Exiting due to: \(error).")
            return
        }
        var connections: [Int32: BrokerConnection?] = [:]
        do {
            try await check(group: group, zk: zk, connections: &connections)
        } catch let e as Abort {
            Console.out("Exiting due to: \(e.message).")
        } catch {
            Console.out("Exiting due to: \(error).")
        }
        for case let c? in connections.values { await c.close() }
        await zk.close()
    }

    private func check(group: String, zk kzk: KafkaZooKeeper, connections: inout [Int32: BrokerConnection?]) async throws {
        let topics: [String]
        if let topic {
            topics = topic.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        } else {
            guard let owned = try await kzk.ownedTopics(group: group) else { throw Self.noNode(ZkPaths.consumerOwners(group)) }
            topics = owned
        }
        var pids: [String: [Int32]] = [:]
        for t in topics { pids[t] = (try await kzk.assignment(t)).map { $0.keys.sorted() } ?? [] }

        // Offsets: OffsetFetch (v1) from the group's offset manager, ZooKeeper where it has none.
        let manager = try await channelToOffsetManager(group: group, kzk: kzk)
        var fetchTopics: [(topic: String, partitions: [Int32])] = []
        for t in topics where !(pids[t] ?? []).isEmpty && !fetchTopics.contains(where: { $0.topic == t }) { fetchTopics.append((t, pids[t]!)) }
        let request = OffsetFetchRequest(version: 1, group: group, topics: fetchTopics)
        var buf = try await withSocketTimeout(ms: socketTimeoutMs) {
            try await manager.send(request)
        }
        await manager.close()
        let response = try OffsetFetchResponse.decode(from: &buf)
        var offsets: [TopicPartition: Int64] = [:]
        for t in response.topics {
            for p in t.partitions {
                let tp = TopicPartition(t.topic, p.partition)
                if p.offset == -1 && p.metadata.isEmpty && p.error == .none {
                    do {
                        if let v = try await kzk.consumerOffset(group: group, tp) {
                            offsets[tp] = v
                        } else if try await kzk.hasConsumerOffsets(group: group, topic: tp.topic) {
                            offsets[tp] = -1
                        } else {
                            throw Self.noNode(ZkPaths.consumerOffset(group, tp))
                        }
                    } catch let e as ConsumerOffsetData.Malformed {
                        throw Abort(message: e.description)
                    }
                } else if p.error == .none {
                    offsets[tp] = p.offset
                } else {
                    Console.out("Could not fetch offset for \(tp) due to kafka.common.\(p.error)Exception.")
                }
            }
        }

        Console.out(Self.line("Group", "Topic", "Pid", "Offset", "logSize", "Lag", "Owner"))
        for t in topics.sorted(by: JavaString.less) {
            for pid in pids[t] ?? [] {
                let tp = TopicPartition(t, pid)
                let owner = (try? await kzk.partitionOwner(group: group, tp)) ?? nil
                guard let state = try await kzk.partitionState(tp) else {
                    Console.out("No broker for partition \(t) - \(pid)")
                    continue
                }
                let bid = state.state.leader
                if connections[bid] == nil { connections[bid] = .some(await brokerConnection(bid, kzk: kzk)) }
                guard let conn = connections[bid] ?? nil else { continue }
                let logSize: Int64 = try await withSocketTimeout(ms: socketTimeoutMs) {
                    let r = try await conn.offsets(OffsetsRequest(replicaId: -1, topics: [(t, [.init(partition: pid, time: OffsetsRequest.latestTime, maxNumOffsets: 1)])]))
                    guard let o = r.topics.first(where: { $0.topic == t })?.partitions.first(where: { $0.partition == pid })?.offsets.first else {
                        throw Abort(message: "head of empty list")
                    }
                    return o
                }
                let offset = offsets[tp]
                let lag = offset.map { $0 == -1 ? "unknown" : String(logSize - $0) } ?? "unknown"
                Console.out(Self.line(group, t, String(pid), offset.map(String.init) ?? "unknown", String(logSize), lag, owner ?? "none"))
            }
        }
        if brokerInfo {
            Console.out("BROKER INFO")
            for (bid, c) in connections.sorted(by: { $0.key < $1.key }) {
                if let c { Console.out("\(bid) -> \(c.host):\(c.port)") }
            }
        }
    }

    /// A connection to the broker registered as `bid`, or nil (Kafka prints why and skips it).
    private func brokerConnection(_ bid: Int32, kzk: KafkaZooKeeper) async -> BrokerConnection? {
        do {
            guard let reg = try await kzk.broker(bid) else { throw Abort(message: "null") }
            return try await BrokerConnection.connect(host: reg.host, port: Int(reg.port), clientId: "ConsumerOffsetChecker")
        } catch let e as Abort {
            Console.out("Could not parse broker info due to \(e.message)")
        } catch {
            Console.out("Could not parse broker info due to \(error)")
        }
        return nil
    }

    /// Kafka's ClientUtils.channelToOffsetManager: ask any live broker for the group's
    /// coordinator (ConsumerMetadata), retrying after `retry.backoff.ms`, and connect to it.
    private func channelToOffsetManager(group: String, kzk: KafkaZooKeeper) async throws -> BrokerConnection {
        let deadline = Date().addingTimeInterval(Double(max(socketTimeoutMs, 1000)) * 5 / 1000)
        var lastError = "no broker is registered in ZooKeeper"
        while true {
            for b in (try await kzk.liveBrokers()).shuffled() {
                do {
                    let query = try await BrokerConnection.connect(host: b.host, port: Int(b.port), clientId: "ConsumerOffsetChecker")
                    var buf = try await withSocketTimeout(ms: socketTimeoutMs) { try await query.send(ConsumerMetadataRequest(group: group)) }
                    let r = try ConsumerMetadataResponse.decode(from: &buf)
                    guard r.error == .none else {
                        lastError = "the offset manager of \(group) is not available (\(r.error))"
                        await query.close()
                        continue
                    }
                    if r.coordinator.host == b.host && r.coordinator.port == b.port { return query }
                    await query.close()
                    return try await BrokerConnection.connect(host: r.coordinator.host, port: Int(r.coordinator.port), clientId: "ConsumerOffsetChecker")
                } catch {
                    lastError = "\(error)"
                }
            }
            guard Date() < deadline else { throw Abort(message: lastError) }
            try await Task.sleep(nanoseconds: UInt64(max(retryBackoffMs, 10)) * 1_000_000)
        }
    }
}

/// `withTimeout` with the error the Java tool prints when its socket times out.
func withSocketTimeout<T: Sendable>(ms: Int, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    do {
        return try await withTimeout(ms: ms, body)
    } catch is TimeoutError {
        throw ConsumerOffsetCheckerCommand.Abort(message: "java.net.SocketTimeoutException")
    }
}
