import ArgumentParser
import Foundation
import KafkaClient
import KafkaProtocol
import Synchronization

/// kafka-mirror-maker.sh (0.8.2 `kafka.tools.MirrorMaker`): consumes the topics matching
/// `--whitelist` (or not matching `--blacklist`) from one or more source clusters through the
/// ZooKeeper group consumer (one per `--consumer.config`) and produces every message, key and
/// value unchanged, to the cluster of `--producer.config`. Messages pass through
/// `--num.producers` bounded queues of `--queue.size` messages: a keyed message always goes
/// through the queue its key hashes to (so one key keeps its order), unkeyed ones round-robin.
/// Runs until SIGINT/SIGTERM: it then stops consuming, sends what is queued, commits the
/// consumed offsets and exits 0. A producer that cannot send ends the whole mirror maker with
/// status 1, as 0.8.2's does.
public struct MirrorMakerCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "kafka-mirror-maker.sh",
        abstract: "Continuously copy data between two Kafka clusters.",
        discussion: """
        Example:
          bin/kafka-mirror-maker.sh --consumer.config source.properties \\
              --producer.config target.properties --whitelist 'orders.*,payments'
        source.properties: zookeeper.connect, group.id and any other consumer setting
          (auto.offset.reset=smallest copies what is already there).
        target.properties: metadata.broker.list (or bootstrap.servers), and optionally
          request.required.acks, compression.codec, message.send.max.retries,
          retry.backoff.ms, request.timeout.ms, client.id, batch.num.messages.
        """)

    @Option(name: .customLong("consumer.config"), help: ArgumentHelp("Consumer config to consume from a source cluster. You may specify multiple of these.", valueName: "config file"))
    var consumerConfigs: [String] = []
    @Option(name: .customLong("producer.config"), help: ArgumentHelp("Embedded producer config.", valueName: "config file"))
    var producerConfig: String?
    @Flag(name: .customLong("new.producer"), help: "Use the new producer implementation. (Accepted; this project has one producer.)")
    var newProducer = false
    @Option(name: .customLong("num.producers"), help: ArgumentHelp("Number of producer instances", valueName: "Number of producers"))
    var numProducers: Int = 1
    @Option(name: .customLong("num.streams"), help: ArgumentHelp("Number of consumption streams.", valueName: "Number of threads"))
    var numStreams: Int = 1
    @Option(name: .customLong("queue.size"), help: ArgumentHelp("Number of messages that are buffered between the consumer and producer", valueName: "Queue size in terms of number of messages"))
    var queueSize: Int = 10000
    @Option(name: .customLong("whitelist"), help: ArgumentHelp("Whitelist of topics to mirror.", valueName: "Java regex (String)"))
    var whitelist: String?
    @Option(name: .customLong("blacklist"), help: ArgumentHelp("Blacklist of topics to mirror.", valueName: "Java regex (String)"))
    var blacklist: String?

    public init() {}

    /// What the mirror maker reads from `--producer.config`.
    struct TargetConfig {
        var producer: ProducerConfig
        var batchSize: Int

        init(path: String) throws {
            let props: [String: String]
            do { props = PropertiesFile.dictionary(try PropertiesFile.load(path: path, what: "--producer.config file")) } catch let e as PropertiesFileError {
                throw ToolError(e.description)
            }
            guard let brokers = props["metadata.broker.list"] ?? props["bootstrap.servers"], !brokers.isEmpty else {
                throw ToolError("--producer.config \(path) has no metadata.broker.list (or bootstrap.servers): the target cluster's brokers")
            }
            do { _ = try BrokerList.parse(brokers) } catch { throw ToolError("Invalid metadata.broker.list \"\(brokers)\" in \(path): \(error)") }
            func number<T: FixedWidthInteger>(_ key: String, _: T.Type) throws -> T? {
                guard let raw = props[key] else { return nil }
                guard let v = T(raw.trimmingCharacters(in: .whitespaces)) else { throw ToolError("Invalid value \"\(raw)\" for \(key) in \(path): expected an integer") }
                return v
            }
            var cfg = ProducerConfig(brokerList: brokers)
            cfg.clientId = props["client.id"] ?? ""
            cfg.requiredAcks = try number("request.required.acks", Int16.self) ?? number("acks", Int16.self) ?? 0
            if let v = try number("message.send.max.retries", Int.self) ?? number("retries", Int.self) { cfg.retries = v }
            if let v = try number("retry.backoff.ms", Int.self) { cfg.retryBackoffMs = v }
            if let v = try number("request.timeout.ms", Int32.self) { cfg.requestTimeoutMs = v }
            if let raw = props["compression.codec"] ?? props["compression.type"] {
                let names = ["0": "none", "1": "gzip", "2": "snappy", "3": "lz4"]
                guard let codec = CompressionCodec(name: names[raw] ?? raw) else {
                    throw ToolError("Invalid value \"\(raw)\" for compression.codec in \(path): expected none, gzip, snappy or lz4")
                }
                cfg.codec = codec
            }
            producer = cfg
            batchSize = try number("batch.num.messages", Int.self) ?? 200
            guard batchSize > 0 else { throw ToolError("Invalid value \(batchSize) for batch.num.messages in \(path): must be positive") }
        }
    }

    static func consumerProperties(_ path: String) throws -> [String: String] {
        let props: [String: String]
        do { props = PropertiesFile.dictionary(try PropertiesFile.load(path: path, what: "--consumer.config file")) } catch let e as PropertiesFileError {
            throw ToolError(e.description)
        }
        guard props["zookeeper.connect"] != nil else { throw ToolError("--consumer.config \(path) has no zookeeper.connect: the source cluster's ZooKeeper") }
        guard props["group.id"] != nil else { throw ToolError("--consumer.config \(path) has no group.id") }
        return props
    }

    public func run() async throws {
        var usage = UsageCheck()
        usage.require("consumer.config", !consumerConfigs.isEmpty)
        usage.require("producer.config", producerConfig != nil)
        try usage.check()
        let producerConfig = producerConfig!
        guard [whitelist, blacklist].compactMap({ $0 }).count == 1 else { throw ToolError("Exactly one of whitelist or blacklist is required.") }
        for (name, v) in [("--num.producers", numProducers), ("--num.streams", numStreams), ("--queue.size", queueSize)] where v < 1 {
            throw ToolError("\(name) must be at least 1, got \(v)")
        }
        do { _ = try whitelist.map(TopicFilter.init(whitelist:)) } catch { throw ToolError("--whitelist \(whitelist!) is an invalid regex.") }
        do { _ = try blacklist.map(TopicFilter.init(blacklist:)) } catch { throw ToolError("--blacklist \(blacklist!) is an invalid regex.") }
        let target = try TargetConfig(path: producerConfig)
        let sources = try consumerConfigs.map { path in
            do { return (path, try ZookeeperConsumerConfig(properties: try Self.consumerProperties(path))) } catch let e as ToolError { throw e } catch {
                throw ToolError("Invalid --consumer.config \(path): \(error)")
            }
        }

        // Producers first (0.8.2 starts them before the consumer streams).
        let queues = (0..<numProducers).map { _ in MirrorQueue(capacity: queueSize) }
        var producers: [Producer] = []
        for i in 0..<numProducers {
            var cfg = target.producer
            cfg.clientId = target.producer.clientId + "-\(i)"
            producers.append(try Producer(config: cfg))
        }
        var connectors: [ZookeeperConsumer] = []
        for (path, cfg) in sources {
            do { connectors.append(try await ToolZooKeeper.connectConsumer(cfg, properties: try Self.consumerProperties(path))) } catch {
                for c in connectors { await c.shutdown() }
                throw ToolError("Unable to create stream from --consumer.config \(path) (ZooKeeper \(cfg.zookeeperConnect)): \(error)")
            }
        }
        for (i, c) in connectors.enumerated() {
            do {
                if let whitelist { try await c.subscribe(whitelist: whitelist, streams: numStreams) } else { try await c.subscribe(blacklist: blacklist!, streams: numStreams) }
            } catch {
                for c in connectors { await c.shutdown() }
                throw ToolError("Unable to create stream from --consumer.config \(sources[i].0) - shutting down mirror maker: \(error)")
            }
        }

        let stop = StopSignal()
        let shared = MirrorShared(start: Int.random(in: 0..<numProducers))
        let failure = shared.failure
        let roundRobin = shared.roundRobin
        let producerCount = numProducers
        let batch = target.batchSize
        await withTaskGroup(of: Void.self) { producing in
            // Producer tasks: take up to batch.num.messages, send them topic by topic, in order.
            for (i, producer) in producers.enumerated() {
                let queue = queues[i]
                producing.addTask {
                    while let records = await queue.take(max: batch) {
                        var start = records.startIndex
                        while start < records.endIndex {
                            let topic = records[start].topic
                            var end = start
                            while end < records.endIndex && records[end].topic == topic { end += 1 }
                            do {
                                _ = try await producer.send(topic: topic, messages: records[start..<end].map { (key: $0.key, value: $0.value) })
                            } catch {
                                failure.withLock { $0 = $0 ?? "Producer thread failure due to \(error)" }
                                for q in queues { await q.close() }
                                return
                            }
                            start = end
                        }
                    }
                }
            }
            // One pull loop per source connector (keeps each partition's order); they end on
            // SIGINT/SIGTERM or a failure.
            await withTaskGroup(of: Void.self) { consuming in
                for c in connectors {
                    consuming.addTask {
                        while !stop.requested && failure.withLock({ $0 == nil }) {
                            let m: ConsumedMessage?
                            do { m = try await c.next(timeoutMs: 200) } catch {
                                failure.withLock { $0 = $0 ?? "Stream unexpectedly exited: \(error)" }
                                break
                            }
                            guard let m else { continue }
                            let q: Int
                            if let key = m.key {
                                q = Int(Self.hash(key)) % producerCount
                            } else {
                                q = roundRobin.withLock { n in n = (n + 1) % producerCount; return n }
                            }
                            await queues[q].put(MirrorRecord(topic: m.topic, key: m.key, value: m.value))
                        }
                    }
                }
            }
            // Producers send what is still queued, then end.
            for q in queues { await q.close() }
        }
        for c in connectors { await c.shutdown() }   // commits the consumed offsets
        for p in producers { await p.close() }
        if let msg = failure.withLock({ $0 }) {
            throw ToolError("\(msg); stopping the whole mirror maker.")
        }
    }

    /// Java's `Arrays.hashCode(byte[])` (0.8.2 picks the queue of a keyed message with it).
    static func hash(_ bytes: [UInt8]) -> Int32 {
        var h: Int32 = 1
        for b in bytes { h = 31 &* h &+ Int32(Int8(bitPattern: b)) }
        return h == Int32.min ? 0 : abs(h)
    }
}

/// State the producer and consumer tasks share: the first failure, the round-robin counter.
final class MirrorShared: Sendable {
    let failure = MutexBox<String?>(nil)
    let roundRobin: MutexBox<Int>
    init(start: Int) { roundRobin = MutexBox(start) }
}

final class MutexBox<T: Sendable>: Sendable {
    private let m: Mutex<T>
    init(_ v: T) { m = Mutex(v) }
    func withLock<R>(_ body: (inout T) -> R) -> R { m.withLock { body(&$0) } }
}

struct MirrorRecord: Sendable {
    var topic: String
    var key: [UInt8]?
    var value: [UInt8]?
}

/// A bounded FIFO between the consumer loops and one producer (0.8.2's `DataChannel` queue).
actor MirrorQueue {
    private var items: [MirrorRecord] = []
    private var head = 0
    private let capacity: Int
    private var closed = false
    private var putWaiters: [CheckedContinuation<Void, Never>] = []
    private var takeWaiters: [CheckedContinuation<Void, Never>] = []

    init(capacity: Int) { self.capacity = capacity }

    private var count: Int { items.count - head }

    func put(_ r: MirrorRecord) async {
        while count >= capacity && !closed { await withCheckedContinuation { putWaiters.append($0) } }
        if closed { return }
        items.append(r)
        if !takeWaiters.isEmpty { takeWaiters.removeFirst().resume() }
    }

    /// Up to `max` records in order; nil once closed and empty.
    func take(max: Int) async -> ArraySlice<MirrorRecord>? {
        while count == 0 {
            if closed { return nil }
            await withCheckedContinuation { takeWaiters.append($0) }
        }
        let n = Swift.min(max, count)
        let out = items[head..<(head + n)]
        head += n
        if head > 4096 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        let waiters = putWaiters
        putWaiters.removeAll()
        for w in waiters { w.resume() }
        return out
    }

    func close() {
        closed = true
        for w in putWaiters + takeWaiters { w.resume() }
        putWaiters.removeAll()
        takeWaiters.removeAll()
    }
}
