import ArgumentParser
import Foundation
import KafkaCluster
import KafkaProtocol

/// kafka-reassign-partitions.sh (0.8.2 `kafka.admin.ReassignPartitionsCommand`): proposes a
/// new replica placement (`--generate`), starts moving partitions by writing
/// `/admin/reassign_partitions` (`--execute`), and reports how far a move got (`--verify`).
/// The controller does the moving.
public struct ReassignPartitionsCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "kafka-reassign-partitions.sh",
        abstract: "This command moves topic partitions between replicas.",
        discussion: """
        Exactly one action: --generate, --execute or --verify.
        Examples:
          bin/kafka-reassign-partitions.sh --zookeeper localhost:2181 --generate \\
              --topics-to-move-json-file topics.json --broker-list 1,2
          bin/kafka-reassign-partitions.sh --zookeeper localhost:2181 --execute \\
              --reassignment-json-file plan.json
          bin/kafka-reassign-partitions.sh --zookeeper localhost:2181 --verify \\
              --reassignment-json-file plan.json
        topics.json: {"topics": [{"topic": "foo"}], "version": 1}
        plan.json:   {"partitions": [{"topic": "foo", "partition": 1,
                                      "replicas": [1,2,3]}], "version": 1}
        --verify exits 1 when a partition's reassignment failed, else 0
        (0.8.2 always exits 0).
        """)

    @Option(name: .customLong("zookeeper"), help: ArgumentHelp("REQUIRED: The connection string for the zookeeper connection in the form host:port. Multiple URLS can be given to allow fail-over.", valueName: "urls"))
    var zookeeper: String?
    @Flag(name: .customLong("generate"), help: "Generate a candidate partition reassignment configuration. Note that this only generates a candidate assignment, it does not execute it.")
    var generate = false
    @Flag(name: .customLong("execute"), help: "Kick off the reassignment as specified by the --reassignment-json-file option.")
    var execute = false
    @Flag(name: .customLong("verify"), help: "Verify if the reassignment completed as specified by the --reassignment-json-file option.")
    var verify = false
    @Option(name: .customLong("reassignment-json-file"), help: ArgumentHelp("The JSON file with the partition reassignment configuration. The format to use is - {\"partitions\": [{\"topic\": \"foo\", \"partition\": 1, \"replicas\": [1,2,3] }], \"version\":1}", valueName: "manual assignment json file path"))
    var reassignmentJsonFile: String?
    @Option(name: .customLong("topics-to-move-json-file"), help: ArgumentHelp("Generate a reassignment configuration to move the partitions of the specified topics to the list of brokers specified by the --broker-list option. The format to use is - {\"topics\": [{\"topic\": \"foo\"},{\"topic\": \"foo1\"}], \"version\":1}", valueName: "topics to reassign json file path"))
    var topicsToMoveJsonFile: String?
    @Option(name: .customLong("broker-list"), help: ArgumentHelp("The list of brokers to which the partitions need to be reassigned in the form \"0,1,2\". This is required if --topics-to-move-json-file is used to generate reassignment configuration", valueName: "brokerlist"))
    var brokerList: String?

    public init() {}

    public func run() async throws {
        guard [generate, execute, verify].filter({ $0 }).count == 1 else {
            throw ValidationError("Command must include exactly one action: --generate, --execute or --verify")
        }
        guard let zookeeper else { throw ValidationError("Missing required argument \"[zookeeper]\"") }
        if verify && reassignmentJsonFile == nil {
            throw ValidationError("If --verify option is used, command must include --reassignment-json-file that was used during the --execute option")
        }
        if generate && (topicsToMoveJsonFile == nil || brokerList == nil) {
            throw ValidationError("If --generate option is used, command must include both --topics-to-move-json-file and --broker-list options")
        }
        if execute && reassignmentJsonFile == nil {
            throw ValidationError("If --execute option is used, command must include --reassignment-json-file that was output during the --generate option")
        }
        let kzk: KafkaZooKeeper
        do { kzk = try await ToolZooKeeper.connect(zookeeper) } catch {
            throw ToolError("Partitions reassignment failed due to: \(error)")
        }
        var failed: [TopicPartition] = []
        do {
            if verify { failed = try await verifyAssignment(kzk) } else if generate { try await generateAssignment(kzk) } else { try await executeAssignment(kzk) }
        } catch {
            await kzk.close()
            throw ToolError("Partitions reassignment failed due to \((error as? ToolError)?.description ?? "\(error)")")
        }
        await kzk.close()
        if !failed.isEmpty { throw ToolError("Reassignment failed for partitions \(failed.map(\.description).joined(separator: ","))") }
    }

    // MARK: Files

    static func readFile(_ path: String, flag: String) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else { throw ToolError("\(flag) \(path) does not exist") }
        guard let data = FileManager.default.contents(atPath: path) else { throw ToolError("\(flag) \(path) cannot be read") }
        return [UInt8](data)
    }

    static func reassignmentFile(_ path: String) throws -> [(TopicPartition, [Int32])] {
        let bytes = try readFile(path, flag: "--reassignment-json-file")
        do { return try ReassignmentData.parseList(bytes, path: path) } catch let e as ZkDataError {
            throw ToolError("--reassignment-json-file \(path) is not a partition reassignment: \(e.reason)")
        }
    }

    static func duplicates<T: Hashable>(_ xs: [T]) -> [T] {
        var seen = Set<T>(), dup: [T] = []
        for x in xs { if !seen.insert(x).inserted, !dup.contains(x) { dup.append(x) } }
        return dup
    }

    /// Every partition's assignment of `topics` (0.8.2 `getReplicaAssignmentForTopics`).
    static func currentAssignment(_ kzk: KafkaZooKeeper, topics: Set<String>) async throws -> [TopicPartition: [Int32]] {
        var out: [TopicPartition: [Int32]] = [:]
        for t in topics.sorted() {
            guard let a = try await kzk.assignment(t) else { continue }
            for (p, r) in a { out[TopicPartition(t, p)] = r }
        }
        return out
    }

    // MARK: Actions

    func generateAssignment(_ kzk: KafkaZooKeeper) async throws {
        let brokers = try brokerList!.split(separator: ",", omittingEmptySubsequences: false).map { s -> Int32 in
            guard let id = Int32(s.trimmingCharacters(in: .whitespaces)) else {
                throw ToolError("--broker-list \"\(brokerList!)\" is not a comma-separated list of broker ids (\"\(s)\")")
            }
            return id
        }
        let dupBrokers = Self.duplicates(brokers)
        if !dupBrokers.isEmpty { throw ToolError("Broker list contains duplicate entries: \(dupBrokers.map(String.init).joined(separator: ","))") }
        let file = topicsToMoveJsonFile!
        let topics: [String]
        do { topics = try TopicsToMoveData.parse(try Self.readFile(file, flag: "--topics-to-move-json-file"), path: file) } catch let e as ZkDataError {
            throw ToolError("--topics-to-move-json-file \(file) is not a list of topics: \(e.reason)")
        }
        let dupTopics = Self.duplicates(topics)
        if !dupTopics.isEmpty { throw ToolError("List of topics to reassign contains duplicate entries: \(dupTopics.joined(separator: ","))") }
        var proposed: [TopicPartition: [Int32]] = [:]
        for topic in topics {
            guard let current = try await kzk.assignment(topic), let first = current.keys.min() else {
                throw ToolError("Topic \(topic) named in --topics-to-move-json-file \(file) does not exist")
            }
            let assigned: [Int32: [Int32]]
            do { assigned = try ReplicaAssignment.assign(brokers: brokers, partitions: current.count, replicationFactor: current[first]!.count) } catch {
                throw ToolError("\(error)")
            }
            for (p, r) in assigned { proposed[TopicPartition(topic, p)] = r }
        }
        let current = try await Self.currentAssignment(kzk, topics: Set(proposed.keys.map(\.topic)))
        Console.out("Current partition replica assignment\n\n\(ReassignmentData.json(current))")
        Console.out("Proposed partition reassignment configuration\n\n\(ReassignmentData.json(proposed))")
    }

    func executeAssignment(_ kzk: KafkaZooKeeper) async throws {
        let file = reassignmentJsonFile!
        let entries = try Self.reassignmentFile(file)
        if entries.isEmpty { throw ToolError("Partition reassignment data file \(file) is empty") }
        let dupPartitions = Self.duplicates(entries.map(\.0))
        if !dupPartitions.isEmpty {
            throw ToolError("Partition reassignment contains duplicate topic partitions: \(dupPartitions.map(\.description).joined(separator: ","))")
        }
        let dupReplicas = entries.compactMap { tp, r -> String? in
            let d = Self.duplicates(r)
            return d.isEmpty ? nil : "\(tp) contains multiple entries for \(d.map(String.init).joined(separator: ","))"
        }
        if !dupReplicas.isEmpty { throw ToolError("Partition replica lists may not contain duplicate entries: \(dupReplicas.joined(separator: ". "))") }
        let wanted = Dictionary(entries, uniquingKeysWith: { a, _ in a })
        // Before starting, the current assignment, to roll back with.
        let current = try await Self.currentAssignment(kzk, topics: Set(wanted.keys.map(\.topic)))
        Console.out("Current partition replica assignment\n\n\(ReassignmentData.json(current))\n\nSave this to use as the --reassignment-json-file option during rollback")
        // Partitions that do not exist are skipped, as 0.8.2 does (with an error line).
        var valid: [TopicPartition: [Int32]] = [:]
        for (tp, r) in wanted.sorted(by: { $0.key < $1.key }) {
            if current[tp] != nil {
                valid[tp] = r
            } else if try await kzk.assignment(tp.topic) == nil {
                Console.err("Skipping reassignment of partition \(tp) since topic \(tp.topic) doesn't exist")
            } else {
                Console.err("Skipping reassignment of partition \(tp) since it doesn't exist")
            }
        }
        // Nothing left to move: writing an empty list would only block the next reassignment.
        if valid.isEmpty { throw ToolError("None of the partitions in --reassignment-json-file \(file) exists; nothing to reassign") }
        if try await kzk.startReassignment(valid) {
            Console.out("Successfully started reassignment of partitions \(ReassignmentData.json(wanted))")
        } else {
            let running = (try? await kzk.reassignment()) ?? nil
            let text = running.map { ReassignmentData.json($0) } ?? "?"
            throw ToolError("Partition reassignment currently in progress for \(text). Aborting operation")
        }
    }

    /// Prints each partition's status; returns the partitions whose reassignment failed.
    func verifyAssignment(_ kzk: KafkaZooKeeper) async throws -> [TopicPartition] {
        let wanted = Dictionary(try Self.reassignmentFile(reassignmentJsonFile!), uniquingKeysWith: { _, b in b })
        Console.out("Status of partition reassignment:")
        let inProgress = try await kzk.reassignment() ?? [:]
        var failed: [TopicPartition] = []
        for (tp, replicas) in wanted.sorted(by: { $0.key < $1.key }) {
            if inProgress[tp] != nil {
                Console.out("Reassignment of partition \(tp) is still in progress")
                continue
            }
            let assigned = try await kzk.assignment(tp.topic)?[tp.partition] ?? []
            if assigned == replicas {
                Console.out("Reassignment of partition \(tp) completed successfully")
            } else {
                Console.out("ERROR: Assigned replicas (\(assigned.map(String.init).joined(separator: ","))) don't match the list of replicas for reassignment (\(replicas.map(String.init).joined(separator: ","))) for partition \(tp)")
                Console.out("Reassignment of partition \(tp) failed")
                failed.append(tp)
            }
        }
        return failed
    }
}
