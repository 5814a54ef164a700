import ArgumentParser
import Foundation
import KafkaClient
import KafkaCluster
import KafkaProtocol
import NIOCore
import Synchronization

/// Formats `d` with a java.text.SimpleDateFormat-style pattern (0.8.2's `--date-format`; the common
/// letters y M d H m s S E a z mean the same in Foundation's DateFormatter).
func perfDate(_ d: Date, format: String = "yyyy-MM-dd HH:mm:ss:SSS") -> String {
    let f = DateFormatter()
    f.dateFormat = format
    return f.string(from: d)
}

/// Totals shared by the perf tools' threads (0.8.2's AtomicLongs).
final class PerfTotals: Sendable {
    private let state = Mutex<(messages: Int, bytes: Int)>((0, 0))
    func add(messages: Int, bytes: Int) { state.withLock { $0.messages += messages; $0.bytes += bytes } }
    /// Claims up to `n` messages of a shared budget `limit`; returns how many were granted.
    func claim(_ n: Int, limit: Int) -> Int {
        state.withLock { s in
            let granted = max(0, min(n, limit - s.messages))
            s.messages += granted
            return granted
        }
    }
    func addBytes(_ b: Int) { state.withLock { $0.bytes += b } }
    var totals: (messages: Int, bytes: Int) { state.withLock { $0 } }
}

/// The options 0.8.2's PerfConfig gives both perf tools.
struct PerfConfigOptions: ParsableArguments {
    @Option(name: .customLong("messages"), help: ArgumentHelp("The number of messages to send or consume, in total over all threads (0.8.2's consumer applies it to each thread). The consumer without it reads up to the log end seen at start; with it, it stops after 5 s without new messages (0.8.2's consumer.timeout.ms).", valueName: "count")) var messages: Int?
    @Option(name: .customLong("reporting-interval"), help: ArgumentHelp("Interval at which to print progress info (in messages; consumer with --show-detailed-stats).", valueName: "size")) var reportingInterval = 5000
    @Option(name: .customLong("date-format"), help: ArgumentHelp("The date format to use for formatting the time field. See java.text.SimpleDateFormat for options.", valueName: "date format")) var dateFormat = "yyyy-MM-dd HH:mm:ss:SSS"
    @Flag(name: .customLong("show-detailed-stats"), help: "If set, stats are reported for each reporting interval as configured by reporting-interval (consumer only; the 0.8.2 producer accepts it and prints nothing extra, as here).") var showDetailedStats = false
    @Flag(name: .customLong("hide-header"), help: "If set, skips printing the header for the stats.") var hideHeader = false
    @Option(name: .customLong("message-size"), help: ArgumentHelp("The size of each message (producer; accepted and unused by the consumer, as in 0.8.2).", valueName: "size")) var messageSize = 100
    @Option(name: .customLong("batch-size"), help: ArgumentHelp("Number of messages to write in a single batch (producer; accepted and unused by the consumer, as in 0.8.2).", valueName: "size")) var batchSize = 200
    @Option(name: .customLong("compression-codec"), help: ArgumentHelp("If set, messages are sent compressed: NoCompressionCodec as 0, GZIPCompressionCodec as 1, SnappyCompressionCodec as 2, LZ4CompressionCodec as 3 (producer; accepted and unused by the consumer, as in 0.8.2).", valueName: "supported codec")) var compressionCodec: Int8 = 0
}

/// kafka-producer-perf-test.sh: fixed-size messages in batches, several requests in flight
/// on one connection per sending thread to partition 0's leader; prints Kafka 0.8.2's result columns.
public struct ProducerPerfCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "kafka-producer-perf-test.sh",
        abstract: "Measure produce throughput.",
        discussion: "Example:\n  bin/kafka-producer-perf-test.sh --broker-list localhost:9092 --topics perf --messages 1000000")
    @Option(name: .customLong("broker-list"), help: ArgumentHelp("REQUIRED: broker info (the list of broker host and port for bootstrap.", valueName: "hostname:port,..,hostname:port")) var brokerList: String?
    @Option(name: .customLong("topics"), help: ArgumentHelp("REQUIRED: The comma separated list of topics to produce to (this tool writes to partition 0 of the first one).", valueName: "topic1,topic2..")) var topics: String?
    @OptionGroup var perf: PerfConfigOptions
    @Option(name: .customLong("request-timeout-ms"), help: "The produce request timeout in ms.") var requestTimeoutMs: Int32 = 3000
    @Option(name: .customLong("producer-num-retries"), help: "The producer retries number (a produce answered with an error is resent this many times).") var numRetries = 3
    @Option(name: .customLong("producer-retry-backoff-ms"), help: "The producer retry backoff time in milliseconds.") var retryBackoffMs = 100
    @Option(name: .customLong("request-num-acks"), parsing: .unconditional, help: "Number of acks required for producer request to complete.") var acks: Int16 = -1
    @Flag(name: .customLong("vary-message-size"), help: "If set, message size will vary up to the given maximum.") var varyMessageSize = false
    @Flag(name: .customLong("sync"), help: "If set, messages are sent synchronously (one request in flight per thread).") var sync = false
    @Option(name: .customLong("threads"), help: ArgumentHelp("Number of sending threads (each with its own connection; --messages is split between them).", valueName: "number of threads")) var threads = 1
    @Option(name: .customLong("initial-message-id"), help: ArgumentHelp("The is used for generating test data, If set, messages will be tagged with an ID and sent by producer starting from this ID sequentially. Message content will be String type and in the form of 'Message:000...1:xxx...'", valueName: "initial message id")) var initialMessageId: Int?
    @Option(name: .customLong("message-send-gap-ms"), help: ArgumentHelp("If set, the send thread will wait for specified time between two sends.", valueName: "message send time gap")) var messageSendGapMs = 0
    @Flag(name: .customLong("csv-reporter-enabled"), help: "If set, the CSV metrics reporter will be enabled. Accepted for 0.8.2 compatibility; this tool has no Yammer/CSV metrics reporter, so it does nothing.") var csvReporterEnabled = false
    @Option(name: .customLong("metrics-dir"), help: ArgumentHelp("If csv-reporter-enable is set, and this parameter is set, the csv metrics will be outputed here. Accepted for 0.8.2 compatibility; does nothing here.", valueName: "metrics directory")) var metricsDir: String?
    @Flag(name: .customLong("new-producer"), help: "Use the new producer implementation. Accepted for 0.8.2 compatibility; this tool has one producer path, so it does nothing.") var newProducer = false
    @Option(name: .customLong("in-flight"), help: "Produce requests in flight per connection (pipelining; not in 0.8.2).") var inFlight = 8
    @Flag(name: .customLong("text-payload"), help: "Fill messages with text-like bytes instead of random bytes (for compression; not in 0.8.2).") var textPayload = false
    public init() {}

    public func validate() throws {
        var usage = UsageCheck()
        usage.require("broker-list", brokerList != nil)
        usage.require("topics", topics != nil)
        usage.require("messages", perf.messages != nil)
        try usage.check()
        if threads < 1 { throw ValidationError("--threads must be at least 1") }
        if perf.messageSize < 1 || perf.batchSize < 1 { throw ValidationError("--message-size and --batch-size must be at least 1") }
        if CompressionCodec(rawValue: perf.compressionCodec) == nil { throw ValidationError("Invalid --compression-codec \(perf.compressionCodec): expected 0, 1, 2 or 3") }
    }

    static func payload(size: Int, seqId: Int?, textPayload: Bool) -> [UInt8] {
        if let seqId {
            // 0.8.2: "Message:" + 10-digit zero-padded id + ":" left-justified to the size and padded with 'x'.
            let head = Array("Message:\(String(format: "%010d", seqId)):".utf8)
            return size <= head.count ? Array(head) : head + [UInt8](repeating: UInt8(ascii: "x"), count: size - head.count)
        }
        var p = [UInt8](repeating: 0, count: size)
        if textPayload {
            let words = Array("the quick brown fox jumps over the lazy dog kafka broker message log segment offset ".utf8)
            for i in 0..<size { p[i] = words[(i * 7 + i / 13) % words.count] }
        } else {
            for i in 0..<size { p[i] = UInt8.random(in: 32...126) }
        }
        return p
    }

    public func run() async throws {
        let codec = CompressionCodec(rawValue: perf.compressionCodec)!
        let messages = perf.messages!, batchSize = perf.batchSize, messageSize = perf.messageSize
        let topic = topics!.split(separator: ",").map(String.init).first!
        let broker = try BrokerList.parse(brokerList!)[0]
        // Find the leader of partition 0 (auto-creating the topic if needed).
        let leader = try await BrokerConnection.findLeader(bootstrap: broker, topic: topic, clientId: "producer-performance", attempts: 100)
        guard let leader else { throw ToolError("no leader for \(topic) partition 0") }
        let initialMessageId = initialMessageId, varyMessageSize = varyMessageSize, textPayload = textPayload
        let acks = acks, requestTimeoutMs = requestTimeoutMs, numRetries = numRetries, retryBackoffMs = retryBackoffMs
        let messageSendGapMs = messageSendGapMs
        let fixed = Self.payload(size: messageSize, seqId: nil, textPayload: textPayload)
        let fixedSet = try MessageSetBuilder.build(Array(repeating: (key: nil as [UInt8]?, value: fixed as [UInt8]?), count: batchSize), codec: codec)
        let perBatchBuild = varyMessageSize || initialMessageId != nil
        let depth = (sync || messageSendGapMs > 0) ? 1 : max(1, inFlight)
        let totals = PerfTotals()
        if !perf.hideHeader { print("start.time, end.time, compression, message.size, batch.size, total.data.sent.in.MB, MB.sec, total.data.sent.in.nMsg, nMsg.sec") }
        let start = Date()
        try await withThrowingTaskGroup(of: Void.self) { threadsGroup in
            for t in 0..<threads {
                let share = messages / threads + (t < messages % threads ? 1 : 0)
                let firstId = (initialMessageId ?? 0) + (messages / threads) * t + min(t, messages % threads)
                threadsGroup.addTask {
                    if share == 0 { return }
                    let conn = try await BrokerConnection.connect(host: leader.0, port: leader.1, clientId: "producer-performance")
                    var nextId = firstId
                    var remaining = share
                    do { try await withThrowingTaskGroup(of: Void.self) { group in
                        var inflight = 0
                        while remaining > 0 || inflight > 0 {
                            while remaining > 0 && inflight < depth {
                                let n = min(batchSize, remaining)
                                var set = fixedSet
                                var bytes = n * messageSize
                                if perBatchBuild || n != batchSize {
                                    var msgs: [(key: [UInt8]?, value: [UInt8]?)] = []
                                    bytes = 0
                                    for i in 0..<n {
                                        let size = varyMessageSize ? Int.random(in: 1...messageSize) : messageSize
                                        let p = initialMessageId != nil ? Self.payload(size: size, seqId: nextId + i, textPayload: textPayload)
                                            : (size == messageSize ? fixed : Array(fixed.prefix(size)))
                                        bytes += p.count
                                        msgs.append((key: nil, value: p))
                                    }
                                    set = try MessageSetBuilder.build(msgs, codec: codec)
                                }
                                nextId += n
                                remaining -= n
                                var buf = ByteBufferAllocator().buffer(capacity: set.count)
                                buf.writeBytes(set)
                                let req = ProduceRequest(requiredAcks: acks, timeoutMs: requestTimeoutMs, topics: [.init(topic: topic, partitions: [.init(partition: 0, messageSet: buf)])])
                                let retries = numRetries, backoff = retryBackoffMs
                                group.addTask {
                                    var attempt = 0
                                    while true {
                                        let resp = try await conn.produce(req)
                                        let e = resp?.topics.first?.partitions.first?.error ?? .none
                                        if e == .none { break }
                                        attempt += 1
                                        if attempt > retries { throw ToolError("produce failed after \(retries) retries: \(e)") }
                                        try await Task.sleep(nanoseconds: UInt64(max(0, backoff)) * 1_000_000)
                                    }
                                    totals.add(messages: n, bytes: bytes)
                                }
                                inflight += 1
                                if messageSendGapMs > 0 { try await Task.sleep(nanoseconds: UInt64(messageSendGapMs) * 1_000_000) }
                            }
                            try await group.next()
                            inflight -= 1
                        }
                    } } catch { await conn.close(); throw error }
                    await conn.close()
                }
            }
            try await threadsGroup.waitForAll()
        }
        let end = Date()
        let (total, totalBytes) = totals.totals
        let secs = max(end.timeIntervalSince(start), 1e-9)
        let mb = Double(totalBytes) / 1048576.0
        print(String(format: "%@, %@, %d, %d, %d, %.2f, %.4f, %d, %.4f", perfDate(start, format: perf.dateFormat), perfDate(end, format: perf.dateFormat), Int(perf.compressionCodec), messageSize, batchSize, mb, mb / secs, total, Double(total) / secs))
    }
}

/// kafka-consumer-perf-test.sh: reads a topic through the ZooKeeper group consumer with `--threads`
/// streams (ConsumerPerfGroup.swift), or with `--direct` by `--threads` concurrent tasks (the
/// partitions dealt round-robin over them, each fetching from its partitions' leaders), and prints
/// 0.8.2's columns.
public struct ConsumerPerfCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "kafka-consumer-perf-test.sh",
        abstract: "Measure fetch throughput.",
        discussion: "Example:\n  bin/kafka-consumer-perf-test.sh --zookeeper localhost:2181 --topic perf --messages 1000000")
    @Option(name: .customLong("zookeeper"), help: ArgumentHelp("REQUIRED: The connection string for the zookeeper connection in the form host:port. Multiple URLS can be given to allow fail-over.", valueName: "urls")) var zookeeper: String?
    @Option(name: .customLong("topic"), help: ArgumentHelp("REQUIRED: The topic to consume from.", valueName: "topic")) var topic: String?
    @Option(name: .customLong("group"), help: ArgumentHelp("The group id to consume on (default perf-consumer-<random>); its old offsets are deleted first unless --from-latest. Unused with --direct.", valueName: "gid")) var group: String?
    @Option(name: .customLong("fetch-size"), help: ArgumentHelp("The amount of data to fetch in a single request.", valueName: "size")) var fetchSize: Int32 = 1048576
    @Flag(name: .customLong("from-latest"), help: "If the consumer does not already have an established offset to consume from, start with the latest message present in the log rather than the earliest message. (Without --messages nothing is then read, since reading stops at the log end seen at start.)") var fromLatest = false
    @Option(name: .customLong("socket-buffer-size"), help: ArgumentHelp("The size of the tcp RECV size. Accepted for 0.8.2 compatibility; the connections use the system's default receive buffer.", valueName: "size")) var socketBufferSize = 2 * 1024 * 1024
    @Option(name: .customLong("threads"), help: ArgumentHelp("Number of processing threads: the group consumer's streams (its thread ids in the group; the stats per thread with --show-detailed-stats), or with --direct concurrent tasks, each reading its share of the partitions.", valueName: "count")) var threads = 10
    @Option(name: .customLong("num-fetch-threads"), help: ArgumentHelp("Number of fetcher threads. Accepted for 0.8.2 compatibility; here each processing thread does its own fetching.", valueName: "count")) var numFetchThreads = 1
    @Flag(name: .customLong("direct"), help: "Fetch straight from the partitions' leaders, without the group consumer (this project's addition; --threads tasks, each reading its share of the partitions). Without it the tool reads through the ZooKeeper group consumer, as 0.8.2 does.") var direct = false
    @OptionGroup var perf: PerfConfigOptions
    public init() {}

    public func validate() throws {
        var usage = UsageCheck()
        usage.require("zookeeper", zookeeper != nil)
        usage.require("topic", topic != nil)
        try usage.check()
        if threads < 1 { throw ValidationError("--threads must be at least 1") }
        if perf.reportingInterval < 1 { throw ValidationError("--reporting-interval must be at least 1") }
    }

    struct Part { let tp: TopicPartition; let consumer: SimpleConsumer; var offset: Int64; let end: Int64 }

    public func run() async throws {
        if !direct { return try await runThroughGroup() }
        let topic = topic!
        let kzk = try await ToolZooKeeper.connect(zookeeper!)
        guard let assignment = try await kzk.assignment(topic) else { await kzk.close(); throw ToolError("Topic \(topic) does not exist") }
        var parts: [Part] = []
        for p in assignment.keys.sorted() {
            let tp = TopicPartition(topic, p)
            guard let st = try await kzk.partitionState(tp), st.state.leader >= 0 else { throw ToolError("no leader for \(tp)") }
            guard let reg = try await kzk.broker(st.state.leader) else { throw ToolError("leader \(st.state.leader) of \(tp) is not registered") }
            let c = try await SimpleConsumer.connect(host: reg.host, port: Int(reg.port), clientId: "consumer-performance")
            let end = try await c.offsetBefore(tp, time: OffsetsRequest.latestTime)
            let start = fromLatest ? end : try await c.offsetBefore(tp, time: OffsetsRequest.earliestTime)
            parts.append(Part(tp: tp, consumer: c, offset: start, end: end))
        }
        await kzk.close()
        let untilEnd = perf.messages == nil
        let target = perf.messages ?? parts.reduce(0) { $0 + Int($1.end - $1.offset) }
        let dateFormat = perf.dateFormat, detailed = perf.showDetailedStats, interval = perf.reportingInterval
        let fetchSize = fetchSize
        if !perf.hideHeader {
            print(detailed ? "time, fetch.size, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec"
                           : "start.time, end.time, fetch.size, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec")
        }
        @Sendable func report(_ id: Int, _ bytes: Int, _ lastBytes: Int, _ msgs: Int, _ lastMsgs: Int, _ from: Date, _ to: Date) {
            let ms = max(to.timeIntervalSince(from) * 1000, 1e-6)
            Console.out(String(format: "%@, %d, %d, %.4f, %.4f, %d, %.4f", perfDate(to, format: dateFormat), id, Int(fetchSize),
                               Double(bytes) / 1048576.0, 1000.0 * (Double(bytes - lastBytes) / 1048576.0 / ms), msgs,
                               Double(msgs - lastMsgs) / ms * 1000.0))
        }
        let totals = PerfTotals()
        let start = Date()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<threads {
                let mine = parts.indices.filter { $0 % threads == t }.map { parts[$0] }
                group.addTask {
                    var mine = mine
                    let tStart = Date()
                    var msgs = 0, bytes = 0, lastMsgs = 0, lastBytes = 0, lastReport = tStart
                    var lastData = Date()
                    loop: while !mine.isEmpty {
                        var progressed = false
                        for i in mine.indices where !(untilEnd && mine[i].offset >= mine[i].end) {
                            if totals.totals.messages >= target { break loop }
                            let r = try await mine[i].consumer.fetch(mine[i].tp, offset: mine[i].offset, maxBytes: fetchSize, maxWaitMs: 100)
                            guard r.error == .none else { throw ToolError("fetch of \(mine[i].tp) failed: \(r.error)") }
                            let batch = untilEnd ? r.messages.filter { $0.offset < mine[i].end } : r.messages
                            let granted = totals.claim(batch.count, limit: target)
                            let b = batch.prefix(granted).reduce(0) { $0 + ($1.value?.count ?? 0) }
                            totals.addBytes(b)
                            if granted > 0 { progressed = true }
                            let before = msgs / interval
                            msgs += granted
                            bytes += b
                            if msgs / interval > before {
                                if detailed { report(t, bytes, lastBytes, msgs, lastMsgs, lastReport, Date()) }
                                lastReport = Date(); lastMsgs = msgs; lastBytes = bytes
                            }
                            if r.nextOffset > mine[i].offset { mine[i].offset = r.nextOffset }
                        }
                        if untilEnd && mine.allSatisfy({ $0.offset >= $0.end }) { break }
                        if progressed { lastData = Date() } else if Date().timeIntervalSince(lastData) >= 5 { break } // 0.8.2's consumer.timeout.ms
                    }
                    for p in mine { await p.consumer.close() }
                    if detailed { report(t, bytes, lastBytes, msgs, lastMsgs, tStart, Date()) }
                }
            }
            try await group.waitForAll()
        }
        let endT = Date()
        if !detailed {
            let (count, bytes) = totals.totals
            let secs = max(endT.timeIntervalSince(start), 1e-9)
            let mb = Double(bytes) / 1048576.0
            print(String(format: "%@, %@, %d, %.4f, %.4f, %d, %.4f", perfDate(start, format: dateFormat), perfDate(endT, format: dateFormat), Int(fetchSize), mb, mb / secs, count, Double(count) / secs))
        }
    }
}
