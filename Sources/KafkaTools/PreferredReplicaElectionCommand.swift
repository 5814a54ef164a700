import ArgumentParser
import Foundation
import KafkaCluster
import KafkaProtocol

/// kafka-preferred-replica-election.sh: asks the controller to move leadership back to each
/// partition's preferred replica (the first of its assigned replicas).
public struct PreferredReplicaElectionCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "kafka-preferred-replica-election.sh",
        abstract: "Move the leadership of partitions back to their preferred replicas.",
        discussion: """
        Without --path-to-json-file every partition of every topic is included. The file looks like
          {"partitions": [{"topic": "foo", "partition": 1}, {"topic": "foobar", "partition": 2}]}
        Example:
          bin/kafka-preferred-replica-election.sh --zookeeper localhost:2181
        """)

    @Option(name: .customLong("zookeeper"), help: "REQUIRED: The connection string for the zookeeper connection in the form host:port.") var zookeeper: String?
    @Option(name: .customLong("path-to-json-file"), help: "The JSON file with the list of partitions for which preferred replica leader election should be done.") var jsonFile: String?

    public init() {}

    public func run() async throws {
        guard let zookeeper else { throw ValidationError("Missing required argument \"[zookeeper]\"") }
        let kzk: KafkaZooKeeper
        do { kzk = try await ToolZooKeeper.connect(zookeeper) } catch {
            throw ToolError("Failed to start preferred replica election: \(error)")
        }
        do {
            var partitions: [TopicPartition]
            if let jsonFile {
                guard let data = FileManager.default.contents(atPath: jsonFile) else { throw ToolError("Cannot read --path-to-json-file \(jsonFile)") }
                partitions = try PreferredReplicaElectionData.parse([UInt8](data), path: jsonFile)
                let dups = Dictionary(grouping: partitions, by: { $0 }).filter { $0.value.count > 1 }.keys
                if !dups.isEmpty { throw ToolError("Preferred replica election data contains duplicate partitions: \(dups.map(\.description).joined(separator: ","))") }
                // Partitions that do not exist are skipped, as Kafka does.
                var existing: [TopicPartition] = []
                for tp in partitions {
                    if let a = try await kzk.assignment(tp.topic), a[tp.partition] != nil { existing.append(tp) }
                }
                partitions = existing
            } else {
                partitions = try await kzk.allAssignments().flatMap { t, a in a.keys.map { TopicPartition(t, $0) } }.sorted()
            }
            let text = partitions.map(\.description).joined(separator: ", ")
            if let inProgress = try await kzk.startPreferredReplicaElection(partitions) {
                let running = inProgress?.map(\.description).joined(separator: ", ") ?? "?"
                throw ToolError("Preferred replica leader election currently in progress for Set(\(running)). Aborting operation")
            }
            Console.out("Successfully started preferred replica election for partitions Set(\(text))")
        } catch {
            await kzk.close()
            if let e = error as? ToolError { throw ToolError("Failed to start preferred replica election: \(e.description)") }
            throw ToolError("Failed to start preferred replica election: \(error)")
        }
        await kzk.close()
    }
}
