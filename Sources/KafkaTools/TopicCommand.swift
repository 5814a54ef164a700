import ArgumentParser
import Foundation
import KafkaCluster
import KafkaLog
import KafkaProtocol

/// kafka-topics.sh: create, list, describe and alter topics through ZooKeeper.
public struct TopicCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "kafka-topics.sh",
        abstract: "Create, delete, describe, or change a topic.",
        discussion: """
        Exactly one action: --list, --describe, --create, --alter or --delete.
        Examples:
          bin/kafka-topics.sh --zookeeper localhost:2181 --create --topic test --partitions 1 --replication-factor 1
          bin/kafka-topics.sh --zookeeper localhost:2181 --list
          bin/kafka-topics.sh --zookeeper localhost:2181 --describe --topic test
        """)

    @Option(name: .customLong("zookeeper"), help: "REQUIRED: The connection string for the zookeeper connection in the form host:port. Multiple URLS can be given to allow fail-over.")
    var zookeeper: String?
    @Flag(name: .customLong("create"), help: "Create a new topic.") var create = false
    @Flag(name: .customLong("list"), help: "List all available topics.") var list = false
    @Flag(name: .customLong("describe"), help: "List details for the given topics.") var describe = false
    @Flag(name: .customLong("alter"), help: "Alter the configuration for the topic.") var alter = false
    @Flag(name: .customLong("delete"), help: "Delete a topic.") var delete = false
    @Option(name: .customLong("topic"), help: "The topic to be create, alter or describe. Can also accept a regular expression except for --create option.") var topic: String?
    @Option(name: .customLong("partitions"), help: "The number of partitions for the topic being created or altered.") var partitions: Int?
    @Option(name: .customLong("replication-factor"), help: "The replication factor for each partition in the topic being created.") var replicationFactor: Int?
    @Option(name: .customLong("replica-assignment"), help: "A list of manual partition-to-broker assignments: broker_id_for_part1_replica1:broker_id_for_part1_replica2,...") var replicaAssignment: String?
    @Option(name: .customLong("config"), help: "A topic configuration override for the topic being created or altered (key=value, repeatable).") var config: [String] = []
    @Option(name: [.customLong("deleteConfig"), .customLong("delete-config")], help: "A topic configuration override to be removed for an existing topic (repeatable).") var deleteConfig: [String] = []
    @Flag(name: .customLong("under-replicated-partitions"), help: "If set when describing topics, only show under replicated partitions.") var underReplicated = false
    @Flag(name: .customLong("unavailable-partitions"), help: "If set when describing topics, only show partitions whose leader is not available.") var unavailable = false
    @Flag(name: .customLong("topics-with-overrides"), help: "If set when describing topics, only show topics that have overridden configs.") var withOverrides = false

    public init() {}

    public func run() async throws {
        let actions = [create, list, describe, alter, delete].filter { $0 }.count
        guard actions == 1 else {
            throw ValidationError("Command must include exactly one action: --list, --describe, --create, --alter or --delete")
        }
        var usage = UsageCheck()
        usage.require("zookeeper", zookeeper != nil)
        usage.require("topic", !((create || alter || delete) && topic == nil))
        if create && replicaAssignment == nil {
            usage.require("partitions", partitions != nil)
            usage.require("replication-factor", replicationFactor != nil)
        }
        try usage.check()
        let zookeeper = zookeeper!
        let kzk = try await ToolZooKeeper.connect(zookeeper)
        defer { Task { await kzk.close() } }
        do {
            if create { try await createTopic(kzk) } else if list { try await listTopics(kzk) } else if describe { try await describeTopics(kzk) } else if alter { try await alterTopic(kzk) } else { try await deleteTopic(kzk) }
        } catch let e as ValidationError {
            await kzk.close()
            throw e
        } catch {
            await kzk.close()
            throw ToolError("Error while executing topic command \(error)")
        }
        await kzk.close()
    }

    func validatedConfig() throws -> [String: String] {
        let cfg = try parseKeyValues(config, flag: "--config")
        for k in cfg.keys where !LogConfig.topicConfigNames.contains(k) { throw ToolError("Unknown configuration \"\(k)\".") }
        _ = try LogConfig().applying(cfg)
        return cfg
    }

    func createTopic(_ kzk: KafkaZooKeeper) async throws {
        let name = topic!
        if let err = TopicNames.validationError(name) { throw ToolError(err) }
        let cfg = try validatedConfig()
        let assignment: [Int32: [Int32]]
        if let manual = replicaAssignment {
            if partitions != nil || replicationFactor != nil {
                throw ValidationError("Option \"[replica-assignment]\" can't be used with option\"[partitions],[replication-factor]\"")
            }
            assignment = try parseManualAssignment(manual)
        } else {
            guard let partitions else { throw ValidationError("Missing required argument \"[partitions]\"") }
            guard let replicationFactor else { throw ValidationError("Missing required argument \"[replication-factor]\"") }
            let brokers = try await kzk.brokerIds()
            do {
                assignment = try ReplicaAssignment.assign(brokers: brokers, partitions: partitions, replicationFactor: replicationFactor)
            } catch let e as ReplicaAssignment.Error { throw ToolError(e.description) }
        }
        try await kzk.createTopic(name, assignment: assignment, config: cfg)
        Console.out("Created topic \"\(name)\".")
    }

    func parseManualAssignment(_ s: String) throws -> [Int32: [Int32]] {
        var out: [Int32: [Int32]] = [:]
        var width: Int?
        for (i, part) in s.split(separator: ",").enumerated() {
            let ids = try part.split(separator: ":").map { raw -> Int32 in
                guard let v = Int32(raw.trimmingCharacters(in: .whitespaces)) else { throw ToolError("Invalid broker id \"\(raw)\" in --replica-assignment") }
                return v
            }
            if Set(ids).count != ids.count { throw ToolError("Duplicate replica assignment found: \(ids)") }
            if let w = width, w != ids.count { throw ToolError("Partition \(i) has different replication factor: \(ids)") }
            width = ids.count
            out[Int32(i)] = ids
        }
        guard !out.isEmpty else { throw ToolError("empty --replica-assignment") }
        return out
    }

    func matchingTopics(_ kzk: KafkaZooKeeper) async throws -> [String] {
        let all = try await kzk.topics()
        guard let pattern = topic else { return all }
        let re = try NSRegularExpression(pattern: "^(?:\(pattern))$")
        return all.filter { re.firstMatch(in: $0, range: NSRange($0.startIndex..., in: $0)) != nil }
    }

    func listTopics(_ kzk: KafkaZooKeeper) async throws {
        let deleting = Set((try? await kzk.topicsMarkedForDeletion()) ?? [])
        for t in try await matchingTopics(kzk) {
            Console.out(deleting.contains(t) ? "\(t) - marked for deletion" : t)
        }
    }

    func describeTopics(_ kzk: KafkaZooKeeper) async throws {
        let live = Set(try await kzk.brokerIds())
        let topics = try await matchingTopics(kzk)
        if let t = topic, topics.isEmpty { throw ToolError("Topic \(t) does not exist") }
        for t in topics {
            guard let assignment = try await kzk.assignment(t) else { continue }
            let cfg = try await kzk.topicConfig(t)
            let rf = assignment.values.first?.count ?? 0
            let cfgText = cfg.keys.sorted().map { "\($0)=\(cfg[$0]!)" }.joined(separator: ",")
            let partitionsOnly = underReplicated || unavailable
            if withOverrides && cfg.isEmpty { continue }
            if !partitionsOnly {
                Console.out("Topic:\(t)\tPartitionCount:\(assignment.count)\tReplicationFactor:\(rf)\tConfigs:\(cfgText)")
            }
            if withOverrides { continue }
            for p in assignment.keys.sorted() {
                let replicas = assignment[p]!
                let state = try await kzk.partitionState(TopicPartition(t, p))
                let leaderText = state.map { $0.state.leader >= 0 ? String($0.state.leader) : "none" } ?? "none"
                let isr = state?.state.isr ?? []
                if underReplicated && !(isr.count < replicas.count) { continue }
                if unavailable && !(state == nil || state!.state.leader < 0 || !live.contains(state!.state.leader)) { continue }
                Console.out("\tTopic: \(t)\tPartition: \(p)\tLeader: \(leaderText)\tReplicas: \(replicas.map(String.init).joined(separator: ","))\tIsr: \(isr.map(String.init).joined(separator: ","))")
            }
        }
    }

    func alterTopic(_ kzk: KafkaZooKeeper) async throws {
        let topics = try await matchingTopics(kzk)
        if topics.isEmpty { throw ToolError("Topic \(topic!) does not exist") }
        for t in topics {
            if !config.isEmpty || !deleteConfig.isEmpty {
                var cfg = try await kzk.topicConfig(t)
                for (k, v) in try validatedConfig() { cfg[k] = v }
                for k in deleteConfig {
                    guard LogConfig.topicConfigNames.contains(k) else { throw ToolError("Unknown configuration \"\(k)\".") }
                    cfg[k] = nil
                }
                try await kzk.writeTopicConfig(t, cfg)
                try await kzk.notifyTopicConfigChange(t)
                Console.out("Updated config for topic \"\(t)\".")
            }
            if let partitions {
                if t == TopicNames.offsetsTopic { throw ToolError("The number of partitions for the offsets topic cannot be changed.") }
                guard var current = try await kzk.assignment(t) else { continue }
                guard partitions > current.count else { throw ToolError("The number of partitions for a topic can only be increased") }
                Console.out("WARNING: If partitions are increased for a topic that has a key, the partition logic or ordering of the messages will be affected")
                let rf = current[0]?.count ?? 1
                let brokers = try await kzk.brokerIds()
                let startIndex = Int(current[0]?.first ?? 0)
                let added = try ReplicaAssignment.assign(brokers: brokers, partitions: partitions - current.count, replicationFactor: rf,
                                                         fixedStartIndex: startIndex, startPartitionId: current.count)
                current.merge(added) { a, _ in a }
                try await kzk.writeAssignment(t, current)
                Console.out("Adding partitions succeeded!")
            }
        }
    }

    func deleteTopic(_ kzk: KafkaZooKeeper) async throws {
        let topics = try await matchingTopics(kzk)
        if topics.isEmpty { throw ToolError("Topic \(topic!) does not exist") }
        for t in topics {
            if try await kzk.markTopicForDeletion(t) {
                Console.out("Topic \(t) is marked for deletion.")
                Console.out("Note: This will have no impact if delete.topic.enable is not set to true.")
            } else {
                Console.out("Topic \(t) is already marked for deletion.")
            }
        }
    }
}
