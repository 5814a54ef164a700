import ArgumentParser
import Foundation
import KafkaClient
import KafkaCluster
import KafkaProtocol
import NIOCore

func perfDate(_ d: Date) -> String {
    let f = DateFormatter()
    f.dateFormat = "yyyy-MM-dd HH:mm:ss:SSS"
    return f.string(from: d)
}

/// kafka-producer-perf-test.sh: fixed-size messages in batches, several requests in flight
/// on one connection per partition leader; prints Kafka 0.8.2's result columns.
public struct ProducerPerfCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "kafka-producer-perf-test.sh",
        abstract: "Measure produce throughput.",
        discussion: "Example: bin/kafka-producer-perf-test.sh --broker-list localhost:9092 --topics perf --messages 1000000")
    @Option(name: .customLong("broker-list"), help: "REQUIRED: broker info the list of broker host and port for bootstrap.") var brokerList: String?
    @Option(name: .customLong("topics"), help: "REQUIRED: The comma separated list of topics to produce to.") var topics: String?
    @Option(name: .customLong("messages"), help: "REQUIRED: The number of messages to send.") var messages: Int?
    @Option(name: .customLong("message-size"), help: "The size of each message.") var messageSize = 100
    @Option(name: .customLong("batch-size"), help: "Number of messages to write in a single batch.") var batchSize = 200
    @Option(name: .customLong("compression-codec"), help: "If set, messages are sent compressed: 0 none, 1 gzip, 2 snappy, 3 lz4.") var compressionCodec: Int8 = 0
    @Option(name: .customLong("request-num-acks"), parsing: .unconditional, help: "Number of acks required for producer request to complete.") var acks: Int16 = -1
    @Option(name: .customLong("request-timeout-ms"), help: "The produce request timeout in ms.") var requestTimeoutMs: Int32 = 3000
    @Option(name: .customLong("in-flight"), help: "Produce requests in flight per connection (pipelining).") var inFlight = 8
    @Flag(name: .customLong("hide-header"), help: "If set, skips printing the header for the stats.") var hideHeader = false
    @Flag(name: .customLong("text-payload"), help: "Fill messages with text-like bytes instead of random bytes (for compression).") var textPayload = false
    public init() {}

    public func run() async throws {
        guard let brokerList else { throw ValidationError("Missing required argument \"[broker-list]\"") }
        guard let topics else { throw ValidationError("Missing required argument \"[topics]\"") }
        guard let messages, messages > 0 else { throw ValidationError("Missing required argument \"[messages]\"") }
        guard let codec = CompressionCodec(rawValue: compressionCodec) else { throw ValidationError("Invalid --compression-codec \(compressionCodec): expected 0, 1, 2 or 3") }
        let topic = topics.split(separator: ",").map(String.init).first!
        let broker = try BrokerList.parse(brokerList)[0]
        // Find the leader of partition 0 (auto-creating the topic if needed).
        let leader = try await BrokerConnection.findLeader(bootstrap: broker, topic: topic, clientId: "producer-performance", attempts: 100)
        guard let leader else { throw ToolError("no leader for \(topic) partition 0") }
        let conn = try await BrokerConnection.connect(host: leader.0, port: leader.1, clientId: "producer-performance")

        var payload = [UInt8](repeating: 0, count: messageSize)
        if textPayload {
            let words = Array("the quick brown fox jumps over the lazy dog kafka broker message log segment offset ".utf8)
            for i in 0..<messageSize { payload[i] = words[(i * 7 + i / 13) % words.count] }
        } else {
            for i in 0..<messageSize { payload[i] = UInt8.random(in: 32...126) }
        }
        let batch = try MessageSetBuilder.build(Array(repeating: (key: nil as [UInt8]?, value: payload as [UInt8]?), count: batchSize), codec: codec)
        var setBuf = ByteBufferAllocator().buffer(capacity: batch.count)
        setBuf.writeBytes(batch)
        let req = ProduceRequest(requiredAcks: acks, timeoutMs: requestTimeoutMs, topics: [.init(topic: topic, partitions: [.init(partition: 0, messageSet: setBuf)])])
        let batches = (messages + batchSize - 1) / batchSize
        let start = Date()
        try await withThrowingTaskGroup(of: Void.self) { group in
            var sent = 0
            var inflight = 0
            while sent < batches || inflight > 0 {
                while sent < batches && inflight < max(1, inFlight) {
                    group.addTask {
                        if let resp = try await conn.produce(req), let e = resp.topics.first?.partitions.first?.error, e != .none {
                            throw ToolError("produce failed: \(e)")
                        }
                    }
                    sent += 1
                    inflight += 1
                }
                try await group.next()
                inflight -= 1
            }
        }
        let end = Date()
        await conn.close()
        let total = batches * batchSize
        let secs = max(end.timeIntervalSince(start), 1e-9)
        let mb = Double(total * messageSize) / 1048576.0
        if !hideHeader { print("start.time, end.time, compression, message.size, batch.size, total.data.sent.in.MB, MB.sec, total.data.sent.in.nMsg, nMsg.sec") }
        print(String(format: "%@, %@, %d, %d, %d, %.2f, %.4f, %d, %.4f", perfDate(start), perfDate(end), Int(compressionCodec), messageSize, batchSize, mb, mb / secs, total, Double(total) / secs))
    }
}

/// kafka-consumer-perf-test.sh: reads a topic from the beginning as fast as possible.
public struct ConsumerPerfCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "kafka-consumer-perf-test.sh",
        abstract: "Measure fetch throughput.",
        discussion: "Example: bin/kafka-consumer-perf-test.sh --zookeeper localhost:2181 --topic perf --messages 1000000")
    @Option(name: .customLong("zookeeper"), help: "REQUIRED: The connection string for the zookeeper connection in the form host:port.") var zookeeper: String?
    @Option(name: .customLong("topic"), help: "REQUIRED: The topic to consume from.") var topic: String?
    @Option(name: .customLong("messages"), help: "The number of messages to consume (default: everything up to the log end at start).") var messages: Int?
    @Option(name: .customLong("fetch-size"), help: "The amount of data to fetch in a single request.") var fetchSize: Int32 = 1048576
    @Flag(name: .customLong("hide-header"), help: "If set, skips printing the header for the stats.") var hideHeader = false
    public init() {}

    public func run() async throws {
        guard let zookeeper else { throw ValidationError("Missing required argument \"[zookeeper]\"") }
        guard let topic else { throw ValidationError("Missing required argument \"[topic]\"") }
        let kzk = try await KafkaZooKeeper.connect(zookeeper, sessionTimeoutMs: 30000, connectionTimeoutMs: 30000)
        guard let assignment = try await kzk.assignment(topic) else { await kzk.close(); throw ToolError("Topic \(topic) does not exist") }
        var consumers: [(TopicPartition, SimpleConsumer, Int64, Int64)] = []
        for p in assignment.keys.sorted() {
            let tp = TopicPartition(topic, p)
            guard let st = try await kzk.partitionState(tp), st.state.leader >= 0 else { throw ToolError("no leader for \(tp)") }
            guard let reg = try await kzk.broker(st.state.leader) else { throw ToolError("leader \(st.state.leader) of \(tp) is not registered") }
            let c = try await SimpleConsumer.connect(host: reg.host, port: Int(reg.port), clientId: "consumer-performance")
            let start = try await c.offsetBefore(tp, time: OffsetsRequest.earliestTime)
            let end = try await c.offsetBefore(tp, time: OffsetsRequest.latestTime)
            consumers.append((tp, c, start, end))
        }
        await kzk.close()
        let target = messages ?? consumers.reduce(0) { $0 + Int($1.3 - $1.2) }
        var count = 0
        var bytes = 0
        let start = Date()
        for (tp, c, from, end) in consumers {
            var offset = from
            while offset < end && count < target {
                let r = try await c.fetch(tp, offset: offset, maxBytes: fetchSize, maxWaitMs: 100)
                guard r.error == .none else { throw ToolError("fetch of \(tp) failed: \(r.error)") }
                for m in r.messages {
                    count += 1
                    bytes += m.value?.count ?? 0
                }
                if r.nextOffset <= offset { break }
                offset = r.nextOffset
            }
            await c.close()
        }
        let endT = Date()
        let secs = max(endT.timeIntervalSince(start), 1e-9)
        let mb = Double(bytes) / 1048576.0
        if !hideHeader { print("start.time, end.time, fetch.size, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec") }
        print(String(format: "%@, %@, %d, %.4f, %.4f, %d, %.4f", perfDate(start), perfDate(endT), Int(fetchSize), mb, mb / secs, count, Double(count) / secs))
    }
}
