import ArgumentParser
import Foundation
import KafkaClient
import KafkaCluster
import KafkaProtocol
import Synchronization

/// kafka-console-consumer.sh: a ZooKeeper group consumer printing each message's value.
public struct ConsoleConsumerCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "kafka-console-consumer.sh",
        abstract: "Consume messages from Kafka topics and print them to standard output.",
        discussion: """
        Example:
          bin/kafka-console-consumer.sh --zookeeper localhost:2181 --topic test --from-beginning
        It follows new messages until interrupted (Ctrl-C) or until --max-messages were printed.
        A topic that does not exist yet is waited for, as Kafka 0.8.2 does: a line
        on stderr says so, and consuming starts once the topic is created
        (--consumer-timeout-ms bounds the wait).
        The group comes from group.id in --consumer.config (default: console-consumer-<random>).
        """)

    @Option(name: .customLong("zookeeper"), help: "REQUIRED: The connection string for the zookeeper connection in the form host:port. Multiple URLS can be given to allow fail-over.") var zookeeper: String?
    @Option(name: .customLong("topic"), help: "The topic id to consume on.") var topic: String?
    @Option(name: .customLong("whitelist"), help: "Whitelist of topics to include for consumption (a regular expression).") var whitelist: String?
    @Option(name: .customLong("blacklist"), help: "Blacklist of topics to exclude from consumption.") var blacklist: String?
    @Flag(name: .customLong("from-beginning"), help: "If the consumer does not already have an established offset to consume from, start with the earliest message present in the log rather than the latest message.") var fromBeginning = false
    @Option(name: .customLong("max-messages"), help: "The maximum number of messages to consume before exiting. If not set, consumption is continual.") var maxMessages: Int?
    @Flag(name: .customLong("delete-consumer-offsets"), help: "If specified, the consumer path in zookeeper is deleted when starting up.") var deleteConsumerOffsets = false
    @Flag(name: .customLong("skip-message-on-error"), help: "If there is an error when processing a message, skip it instead of halting.") var skipOnError = false
    @Option(name: .customLong("consumer.config"), help: "Consumer config properties file (group.id, auto.commit.interval.ms, fetch.message.max.bytes, ...).") var consumerConfig: String?
    @Option(name: .customLong("property"), help: "Properties of the message formatter: print.key=true, key.separator=<sep>.") var property: [String] = []
    @Option(name: .customLong("consumer-timeout-ms"), help: "Exit when no message arrived for this long (default: wait forever).") var consumerTimeoutMs: Int?

    public init() {}

    /// The `--consumer.config` file's properties, read through `PropertiesFile` (java.util.Properties
    /// syntax, as Kafka's `Utils.loadProps`); an unreadable file is an error naming it.
    public static func loadConsumerConfig(path: String) throws -> [String: String] {
        do { return PropertiesFile.dictionary(try PropertiesFile.load(path: path, what: "--consumer.config file")) } catch let e as PropertiesFileError {
            throw ToolError(e.description)
        }
    }

    public func run() async throws {
        var usage = UsageCheck()
        usage.require("zookeeper", zookeeper != nil)
        if [topic, whitelist, blacklist].compactMap({ $0 }).count != 1 { usage.problem("Exactly one of whitelist/blacklist/topic is required.") }
        try usage.check()
        let zookeeper = zookeeper!
        let props = try parseKeyValues(property, flag: "--property")
        let printKey = props["print.key"]?.lowercased() == "true"
        let keySep = props["key.separator"] ?? "\t"

        // Every consumer property of the file applies (group.id, partition.assignment.strategy,
        // auto.commit.interval.ms, ...); auto.offset.reset and zookeeper.connect are overridden.
        var fileProps = try consumerConfig.map(Self.loadConsumerConfig) ?? [:]
        let generated = fileProps["group.id"] == nil
        let group = fileProps["group.id"] ?? "console-consumer-\(Int.random(in: 0...99999))"
        fileProps["group.id"] = group
        fileProps["auto.offset.reset"] = fromBeginning ? "smallest" : "largest"
        fileProps["zookeeper.connect"] = zookeeper
        let cfg: ZookeeperConsumerConfig
        do { cfg = try ZookeeperConsumerConfig(properties: fileProps) } catch { throw ToolError("\(error)") }

        let consumer: ZookeeperConsumer
        consumer = try await ToolZooKeeper.connectConsumer(cfg, properties: fileProps)
        if deleteConsumerOffsets {
            try? await consumer.zooKeeper.deleteConsumerGroup(group)
        } else if fromBeginning, await ZookeeperConsumer.groupHasOffsets(zk: consumer.zooKeeper, group: group) {
            await consumer.shutdown()
            throw ToolError("Found previous offset information for this group \(group). Please use --delete-consumer-offsets to delete previous offsets metadata")
        }
        let stop = StopSignal()
        var count = 0
        do {
            if let blacklist {
                try await consumer.subscribe(blacklist: blacklist)
            } else {
                try await consumer.subscribe(whitelist: topic ?? whitelist!)
            }
            await Self.noteMissingTopics(consumer, topic: topic, whitelist: whitelist, blacklist: blacklist)
            let out = FileHandle.standardOutput
            while !stop.requested {
                if let max = maxMessages, count >= max { break }
                guard let m = try await consumer.next(timeoutMs: consumerTimeoutMs ?? 500) else {
                    if consumerTimeoutMs != nil { break }
                    continue
                }
                var line = ""
                if printKey { line += (m.key.map { String(decoding: $0, as: UTF8.self) } ?? "null") + keySep }
                line += m.value.map { String(decoding: $0, as: UTF8.self) } ?? "null"
                line += "\n"
                out.write(line.data(using: .utf8)!)
                count += 1
            }
        } catch {
            await consumer.shutdown(deleteGroup: generated)
            Console.err("Consumed \(count) messages")
            throw error
        }
        await consumer.shutdown(deleteGroup: generated)
        Console.err("Consumed \(count) messages")
    }
}

extension ConsoleConsumerCommand {
    /// 0.8.2's consumer waits silently for a topic that does not exist; say so on stderr.
    static func noteMissingTopics(_ consumer: ZookeeperConsumer, topic: String?, whitelist: String?, blacklist: String?) async {
        guard let existing = try? await consumer.zooKeeper.topics() else { return }
        let filter: KafkaClient.TopicFilter
        do {
            if let blacklist { filter = try KafkaClient.TopicFilter(.blacklist, blacklist) } else { filter = try KafkaClient.TopicFilter(.whitelist, topic ?? whitelist ?? "") }
        } catch { return }
        guard !existing.contains(where: { filter.isTopicAllowed($0) }) else { return }
        if let topic {
            Console.err("Topic \"\(topic)\" does not exist yet; waiting for it to be created (Ctrl-C to stop).")
        } else if let whitelist {
            Console.err("No topic matches --whitelist \"\(whitelist)\" yet; waiting for one to be created (Ctrl-C to stop).")
        } else if let blacklist {
            Console.err("No topic outside --blacklist \"\(blacklist)\" exists yet; waiting for one to be created (Ctrl-C to stop).")
        }
    }
}

/// SIGINT/SIGTERM ask the consumer loop to stop (it then commits and cleans up).
final class StopSignal: @unchecked Sendable {
    private let flag = Mutex(false)
    private var sources: [DispatchSourceSignal] = []
    var requested: Bool { flag.withLock { $0 } }

    init() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { [weak self] in self?.flag.withLock { $0 = true } }
            s.resume()
            sources.append(s)
        }
    }
}
