import ArgumentParser
import Foundation
import KafkaClient
import KafkaProtocol

/// kafka-simple-consumer-shell.sh: reads one partition from its leader (or a chosen replica)
/// with a simple consumer, printing each message.
public struct SimpleConsumerShellCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "kafka-simple-consumer-shell.sh",
        abstract: "Print the messages of one partition, read directly from a broker.",
        discussion: """
        Example:
          bin/kafka-simple-consumer-shell.sh --broker-list localhost:9092 --topic test --partition 0 --offset -2 --no-wait-at-logend
        --offset -2 starts at the earliest message, -1 at the end; --replica picks a follower to read from.
        """)

    @Option(name: .customLong("broker-list"), help: "REQUIRED: The list of hostname and port of the server to connect to.") var brokerList: String?
    @Option(name: .customLong("topic"), help: "REQUIRED: The topic id to consume on.") var topic: String?
    @Option(name: .customLong("partition"), help: "The partition to consume from.") var partition: Int32 = 0
    @Option(name: .customLong("replica"), parsing: .unconditional, help: "The replica id to consume from, default -1 means leader broker.") var replica: Int32 = -1
    @Option(name: .customLong("offset"), parsing: .unconditional, help: "The offset id to consume from, default to -2 which means from beginning; while value -1 means from end.") var offset: Int64 = -2
    @Option(name: .customLong("clientId"), help: "The ID of this client.") var clientId = "SimpleConsumerShell"
    @Option(name: .customLong("fetchsize"), help: "The fetch size of each request.") var fetchSize: Int32 = 1048576
    @Option(name: .customLong("max-wait-ms"), help: "The max amount of time each fetch request waits.") var maxWaitMs: Int32 = 1000
    @Option(name: .customLong("max-messages"), help: "The number of messages to consume.") var maxMessages: Int = Int(Int32.max)
    @Flag(name: .customLong("print-offsets"), help: "Print the offsets returned by the iterator.") var printOffsets = false
    @Flag(name: .customLong("no-wait-at-logend"), help: "If set, when the simple consumer reaches the end of the Log, it will stop, not waiting for new produced messages.") var noWait = false
    @Option(name: .customLong("property"), help: "Formatter properties: print.key=true, key.separator=<sep>.") var property: [String] = []

    public init() {}

    public func run() async throws {
        let (brokerList, topic) = try UsageCheck.requireBrokerListAndTopic(brokerList, topic)
        let props = try parseKeyValues(property, flag: "--property")
        let printKey = props["print.key"]?.lowercased() == "true"
        let keySep = props["key.separator"] ?? "\t"
        let tp = TopicPartition(topic, partition)

        // Find the leader, or the requested replica, from metadata.
        var endpoint: BrokerEndpoint?
        var failures: [String] = []
        for b in try BrokerList.parse(brokerList) {
            let conn: BrokerConnection
            do { conn = try await BrokerConnection.connect(host: b.host, port: b.port, clientId: clientId) } catch {
                failures.append("\(error)")
                continue
            }
            defer { Task { await conn.close() } }
            guard let md = try? await conn.metadata([topic]) else {
                failures.append("broker \(b.host):\(b.port) did not answer a Metadata request")
                continue
            }
            guard let t = md.topics.first(where: { $0.topic == topic }), t.error == .none || t.error == .replicaNotAvailable,
                  let p = t.partitions.first(where: { $0.partition == partition }) else {
                throw ToolError("Error: partition \(partition) does not exist for topic \(topic)")
            }
            let wanted = replica == -1 ? p.leader : replica
            guard wanted >= 0, p.replicas.contains(wanted) || wanted == p.leader, let ep = md.brokers.first(where: { $0.id == wanted }) else {
                throw ToolError("Error: replica \(replica) does not exist (or is not live) for partition \(tp)")
            }
            endpoint = ep
            break
        }
        guard let endpoint else {
            throw ToolError("Error: cannot get metadata for topic \(topic) from \(brokerList)" + (failures.isEmpty ? "" : " (\(failures.joined(separator: "; ")))"))
        }
        let consumer = try await SimpleConsumer.connect(host: endpoint.host, port: Int(endpoint.port), clientId: clientId)
        var next = offset
        if offset < 0 {
            // replica id -2 reads from any replica (Kafka's debugging consumer).
            let r = try await consumer.connection.offsets(OffsetsRequest(replicaId: -2, topics: [(topic, [.init(partition: partition, time: offset, maxNumOffsets: 1)])]))
            guard let po = r.topics.first?.partitions.first, po.error == .none, let o = po.offsets.first else {
                throw ToolError("Error: cannot find offset \(offset) of \(tp)")
            }
            next = o
        }
        let stop = StopSignal()
        var count = 0
        let out = FileHandle.standardOutput
        while count < maxMessages && !stop.requested {
            let r = try await consumer.fetch(tp, offset: next, maxBytes: fetchSize, maxWaitMs: maxWaitMs, minBytes: 1, replicaId: -2)
            guard r.error == .none else { throw ToolError("Error fetching \(tp) at offset \(next): \(r.error) (code \(r.error.rawValue))") }
            if r.messages.isEmpty {
                if r.messageTooLarge { throw ToolError("Error: a message at offset \(next) of \(tp) is larger than --fetchsize \(fetchSize)") }
                if noWait {
                    Console.err("Terminating. Reached the end of partition (\(topic), \(partition)) at offset \(next)")
                    break
                }
                continue
            }
            for m in r.messages where count < maxMessages {
                var line = ""
                if printKey { line += (m.key.map { String(decoding: $0, as: UTF8.self) } ?? "null") + keySep }
                line += (m.value.map { String(decoding: $0, as: UTF8.self) } ?? "null") + "\n"
                if printOffsets { line += "next offset = \(m.offset + 1)\n" }
                out.write(line.data(using: .utf8)!)
                count += 1
            }
            next = r.nextOffset
        }
        await consumer.close()
    }
}
