import ArgumentParser
import Foundation
import KafkaClient
import KafkaProtocol

/// Lines read on a thread (stdin blocks) and handed to the async sender in batches.
final class LineQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    private var eof = false
    private let signal: AsyncStream<Void>.Continuation
    let signals: AsyncStream<Void>

    init() {
        (signals, signal) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    func startReading(_ handle: FileHandle = .standardInput) {
        let t = Thread {
            while let line = readLine(strippingNewline: true) {
                self.lock.withLock { self.lines.append(line) }
                self.signal.yield()
            }
            self.lock.withLock { self.eof = true }
            self.signal.yield()
            self.signal.finish()
        }
        t.start()
    }

    /// Up to `max` lines, or empty with `finished` once stdin ended and everything was taken.
    func take(max: Int) -> (lines: [String], finished: Bool) {
        lock.withLock {
            let n = min(max, lines.count)
            let out = Array(lines.prefix(n))
            lines.removeFirst(n)
            return (out, eof && lines.isEmpty)
        }
    }
}

/// kafka-console-producer.sh: every stdin line becomes a message.
public struct ConsoleProducerCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "kafka-console-producer.sh",
        abstract: "Read data from standard input and publish it to Kafka.",
        discussion: """
        Example:
          echo hello | bin/kafka-console-producer.sh --broker-list localhost:9092 --topic test
        Keys: --property parse.key=true --property key.separator=: (default separator is a TAB).
        """)

    @Option(name: .customLong("broker-list"), help: "REQUIRED: The broker list string in the form HOST1:PORT1,HOST2:PORT2.") var brokerList: String?
    @Option(name: .customLong("topic"), help: "REQUIRED: The topic id to produce messages to.") var topic: String?
    @Option(name: .customLong("compression-codec"), help: "The compression codec: either 'none', 'gzip' or 'snappy'.") var compressionCodec: String = "none"
    @Flag(name: .customLong("sync"), help: "If set message send requests to the brokers are synchronously, one at a time as they arrive.") var sync = false
    @Option(name: .customLong("batch-size"), help: "Number of messages to send in a single batch if they are not being sent synchronously.") var batchSize: Int = 200
    @Option(name: .customLong("request-required-acks"), parsing: .unconditional, help: "The required acks of the producer requests (default 1 here; Kafka 0.8.2 used 0, which never reports a failed write).") var acks: Int16 = 1
    @Option(name: .customLong("request-timeout-ms"), help: "The ack timeout of the producer requests. Value must be non-negative and non-zero.") var requestTimeoutMs: Int32 = 1500
    @Option(name: .customLong("message-send-max-retries"), help: "How many times a send is retried after a leader move or an unknown topic.") var retries: Int = 3
    @Option(name: .customLong("retry-backoff-ms"), help: "Wait before each retry, during which metadata is refreshed.") var retryBackoffMs: Int = 100
    @Option(name: .customLong("timeout"), help: "Accepted for compatibility (queue.buffering.max.ms).") var timeout: Int = 1000
    @Option(name: .customLong("queue-size"), help: "Accepted for compatibility.") var queueSize: Int = 10000
    @Option(name: .customLong("producer.config"), help: "Producer config properties file (compression.codec, request.required.acks, message.send.max.retries, retry.backoff.ms).") var producerConfig: String?
    @Option(name: .customLong("property"), help: "A mechanism to pass user-defined properties to the message reader: parse.key, key.separator, ignore.error.") var property: [String] = []

    public init() {}

    public func run() async throws {
        guard let brokerList else { throw ValidationError("Missing required argument \"[broker-list]\"") }
        guard let topic else { throw ValidationError("Missing required argument \"[topic]\"") }
        let props = try parseKeyValues(property, flag: "--property")
        let parseKey = props["parse.key"]?.lowercased() == "true"
        let separator = props["key.separator"] ?? "\t"
        let ignoreError = props["ignore.error"]?.lowercased() == "true"
        var cfg = ProducerConfig(brokerList: brokerList)
        cfg.clientId = "console-producer"
        cfg.requiredAcks = acks
        cfg.requestTimeoutMs = requestTimeoutMs
        cfg.retries = retries
        cfg.retryBackoffMs = retryBackoffMs
        var codecName = compressionCodec
        if let path = producerConfig {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ToolError("cannot read --producer.config file \(path)") }
            for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                let kv = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard kv.count == 2 else { continue }
                switch kv[0] {
                case "compression.codec": codecName = kv[1]
                case "request.required.acks": guard let v = Int16(kv[1]) else { throw ToolError("Invalid value \(kv[1]) for request.required.acks in \(path)") }; cfg.requiredAcks = v
                case "message.send.max.retries": cfg.retries = Int(kv[1]) ?? cfg.retries
                case "retry.backoff.ms": cfg.retryBackoffMs = Int(kv[1]) ?? cfg.retryBackoffMs
                default: break
                }
            }
        }
        guard let codec = CompressionCodec(name: codecName), codec != .lz4 else {
            throw ValidationError("Invalid --compression-codec \"\(codecName)\": expected none, gzip or snappy")
        }
        cfg.codec = codec
        let producer = try Producer(config: cfg)
        let queue = LineQueue()
        queue.startReading()
        var lineNo = 0
        let max = sync ? 1 : Swift.max(1, batchSize)
        do {
            var signals = queue.signals.makeAsyncIterator()
            while true {
                let (lines, finished) = queue.take(max: max)
                if lines.isEmpty {
                    if finished { break }
                    _ = await signals.next()
                    continue
                }
                var batch: [(key: [UInt8]?, value: [UInt8]?)] = []
                for line in lines {
                    lineNo += 1
                    if parseKey {
                        if let r = line.range(of: separator) {
                            batch.append((Array(line[..<r.lowerBound].utf8), Array(line[r.upperBound...].utf8)))
                        } else if ignoreError {
                            batch.append((nil, Array(line.utf8)))
                        } else {
                            throw ToolError("No key found on line \(lineNo): \(line)")
                        }
                    } else {
                        batch.append((nil, Array(line.utf8)))
                    }
                }
                try await producer.send(topic: topic, messages: batch)
            }
        } catch {
            await producer.close()
            throw error
        }
        await producer.close()
    }
}
