import ArgumentParser
import Foundation
import KafkaClient
import KafkaProtocol
import Synchronization

/// Lines read on a thread (stdin blocks) and handed to the async sender in batches.
final class LineQueue: @unchecked Sendable {
    private struct State {
        var lines: [String] = []
        var eof = false
    }
    private let state = Mutex(State())
    private let signal: AsyncStream<Void>.Continuation
    let signals: AsyncStream<Void>

    init() {
        (signals, signal) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    func startReading(_ handle: FileHandle = .standardInput) {
        let t = Thread {
            while let line = readLine(strippingNewline: true) {
                self.state.withLock { st in st.lines.append(line) }
                self.signal.yield()
            }
            self.state.withLock { st in st.eof = true }
            self.signal.yield()
            self.signal.finish()
        }
        t.start()
    }

    /// Up to `max` lines, or empty with `finished` once stdin ended and everything was taken.
    func take(max: Int) -> (lines: [String], finished: Bool) {
        state.withLock { st in
            let n = min(max, st.lines.count)
            let out = Array(st.lines.prefix(n))
            st.lines.removeFirst(n)
            return (out, st.eof && st.lines.isEmpty)
        }
    }
}

/// The `--producer.config` keys the console producer acts on, read through `PropertiesFile`
/// (java.util.Properties syntax, as Kafka's `Utils.loadProps`); other keys are ignored.
public struct ConsoleProducerFileConfig: Equatable, Sendable {
    public var compressionCodec: String?
    public var requiredAcks: Int16?
    public var retries: Int?
    public var retryBackoffMs: Int?

    public init(compressionCodec: String? = nil, requiredAcks: Int16? = nil, retries: Int? = nil, retryBackoffMs: Int? = nil) {
        self.compressionCodec = compressionCodec
        self.requiredAcks = requiredAcks
        self.retries = retries
        self.retryBackoffMs = retryBackoffMs
    }

    /// The file's settings; an unreadable file or a malformed value is an error naming the file (and key).
    public static func load(path: String) throws -> ConsoleProducerFileConfig {
        let props: [String: String]
        do { props = PropertiesFile.dictionary(try PropertiesFile.load(path: path, what: "--producer.config file")) } catch let e as PropertiesFileError {
            throw ToolError(e.description)
        }
        return try ConsoleProducerFileConfig(properties: props, source: path)
    }

    /// `source` names the file in errors.
    public init(properties props: [String: String], source: String) throws {
        func number<T: FixedWidthInteger>(_ key: String, _: T.Type) throws -> T? {
            guard let raw = props[key] else { return nil }
            guard let v = T(raw) else { throw ToolError("Invalid value \"\(raw)\" for \(key) in \(source): expected an integer") }
            return v
        }
        compressionCodec = props["compression.codec"]
        requiredAcks = try number("request.required.acks", Int16.self)
        retries = try number("message.send.max.retries", Int.self)
        retryBackoffMs = try number("retry.backoff.ms", Int.self)
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
    @Option(name: .customLong("compression-codec"), help: "The compression codec: either 'none', 'gzip', 'snappy', or 'lz4'.") var compressionCodec: String = "none"
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
        let (brokerList, topic) = try UsageCheck.requireBrokerListAndTopic(brokerList, topic)
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
        var codecSource = "--compression-codec"
        if let path = producerConfig {
            let file = try ConsoleProducerFileConfig.load(path: path)
            if let c = file.compressionCodec { codecName = c; codecSource = "compression.codec in \(path)" }
            if let v = file.requiredAcks { cfg.requiredAcks = v }
            if let v = file.retries { cfg.retries = v }
            if let v = file.retryBackoffMs { cfg.retryBackoffMs = v }
        }
        // Kafka 0.8.2.2's console producer: "either 'none', 'gzip', 'snappy', or 'lz4'".
        guard let codec = CompressionCodec(name: codecName) else {
            throw ValidationError("Invalid \(codecSource) \"\(codecName)\": expected none, gzip, snappy or lz4")
        }
        cfg.codec = codec
        let producer = try Producer(config: cfg)
        // Connect before reading stdin, so a wrong --broker-list shows before anything is typed.
        do { try await producer.checkBrokers() } catch {
            await producer.close()
            throw ToolError("\(error)")
        }
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
