import Foundation
import KafkaClient
import KafkaProtocol
import KafkaTestSupport
import XCTest

/// End-to-end compression (issue 4): the matrix
///   {kcat, kafka-python, this project's console producer} × {gzip, snappy, lz4} producers
///   × {kcat, kafka-python, this project's console consumer} consumers,
/// 10,000 keyed messages per producer and codec. Every consumer must see the same keys, values and
/// order, and (kcat, kafka-python) the same offsets 0..9999. The stored bytes are checked on the
/// wire as well: every top-level entry is a wrapper of the producer's codec whose offset is its
/// last inner offset, and a fetch from inside a wrapper starts at the requested offset.
///
/// One ZooKeeper and one broker serve the whole class (started by the first test, stopped in the
/// class tear-down); each test uses its own topic.
final class CompressionInteropTests: SharedClusterTestCase {
    static let messageCount = 10_000

    enum Source: String { case kcat, python = "kafka-python", console = "console-producer" }

    override func setUp() async throws {
        _ = try Project.requireTool("kcat", install: "apt-get install kcat")
        _ = try Project.requireVenvPython()
        try await super.setUp()
    }

    // MARK: the matrix, one test per producer and codec

    func testKcatGzip() async throws { try await matrixRow(.kcat, .gzip) }
    func testKcatSnappy() async throws { try await matrixRow(.kcat, .snappy) }
    func testKafkaPythonGzip() async throws { try await matrixRow(.python, .gzip) }
    func testKafkaPythonSnappy() async throws { try await matrixRow(.python, .snappy) }
    func testConsoleProducerGzip() async throws { try await matrixRow(.console, .gzip) }
    func testConsoleProducerSnappy() async throws { try await matrixRow(.console, .snappy) }
    // LZ4 (Kafka 0.8.2's frame, whose header checksum covers the magic too): kafka-python (lz4 +
    // xxhash in the venv) and librdkafka both write and read that frame for 0.8.x brokers.
    func testKcatLZ4() async throws { try await matrixRow(.kcat, .lz4) }
    func testKafkaPythonLZ4() async throws { try await matrixRow(.python, .lz4) }
    func testConsoleProducerLZ4() async throws { try await matrixRow(.console, .lz4) }

    /// kafka-producer-perf-test.sh --compression-codec 3 (0.8.2's `CompressionCodec.getCompressionCodec(3)`
    /// is LZ4): the broker stores LZ4 wrappers, and kafka-python and kcat read every message.
    func testProducerPerfLZ4() async throws {
        let c = cluster
        let topic = "perf-lz4"
        try c.createTopic(topic)
        try c.waitForLeaders(topic: topic)
        let r = try Project.run("kafka-producer-perf-test.sh",
                                ["--broker-list", "127.0.0.1:\(c.broker.port)", "--topics", topic, "--messages", "2000",
                                 "--compression-codec", "3", "--text-payload", "--hide-header"], timeout: 120)
        XCTAssertEqual(r.exitCode, 0, r.summary)
        let stored = try storedWrappers(c, topic: topic)
        XCTAssertEqual(stored.highWatermark, 2000, "high watermark of \(topic)")
        XCTAssertFalse(stored.wrappers.isEmpty)
        XCTAssertTrue(stored.wrappers.allSatisfy { $0.codec == .lz4 }, "codecs: \(Set(stored.wrappers.map(\.codec)))")
        XCTAssertEqual(stored.wrappers.flatMap(\.inner).map(\.offset), (0..<2000).map(Int64.init))
        let p = try python(["consume", "--bootstrap", "127.0.0.1:\(c.broker.port)", "--topic", topic, "--offset", "0", "--count", "2000"])
        XCTAssertEqual(p.exitCode, 0, "kafka-python consume: exit \(p.exitCode)\n\(p.stderr)")
        XCTAssertEqual(try jsonLines(p.stdout).compactMap(\.offset), (0..<2000).map(Int64.init))
        let k = try kcat(c, ["-C", "-t", topic, "-p", "0", "-e", "-o", "beginning", "-f", "%o\\n"], timeout: 120)
        XCTAssertEqual(k.exitCode, 0, "kcat consume: exit \(k.exitCode)\n\(k.stderr)")
        XCTAssertEqual(k.stdout.split(separator: "\n").compactMap { Int64($0) }, (0..<2000).map(Int64.init))
    }

    private func matrixRow(_ producer: Source, _ codec: CompressionCodec) async throws {
        let c = cluster
        let topic = "\(producer.rawValue)-\(codec.name)"
        try c.createTopic(topic)
        try c.waitForLeaders(topic: topic)
        let messages = Self.messages(tag: "\(producer.rawValue)/\(codec.name)")
        let expected = messages.enumerated().map { Seen(offset: Int64($0.offset), key: $0.element.key, value: $0.element.value) }
        let input = messages.map { "\($0.key):\($0.value)\n" }.joined()

        // Produce, compressed, with keys.
        switch producer {
        case .kcat:
            let r = try kcat(c, ["-P", "-t", topic, "-p", "0", "-K:", "-z", codec.name], stdin: input, timeout: 120)
            XCTAssertEqual(r.exitCode, 0, r.summary)
        case .python:
            let r = try python(["produce", "--bootstrap", "127.0.0.1:\(c.broker.port)", "--topic", topic,
                                "--compression", codec.name], stdin: input)
            XCTAssertEqual(r.exitCode, 0, "kafka-python produce: exit \(r.exitCode)\n\(r.stderr)")
            // The offsets kafka-python was acknowledged are 0..9999, in input order.
            try assertSame(try jsonLines(r.stdout), expected, "kafka-python producer acknowledgements")
        case .console:
            let r = try Project.run("kafka-console-producer.sh",
                                    ["--broker-list", "127.0.0.1:\(c.broker.port)", "--topic", topic,
                                     "--compression-codec", codec.name,
                                     "--property", "parse.key=true", "--property", "key.separator=:"],
                                    stdin: input, timeout: 120)
            XCTAssertEqual(r.exitCode, 0, r.summary)
        }

        // The broker stored wrappers of this codec, with 0.8 offsets, holding exactly these messages.
        let stored = try storedWrappers(c, topic: topic)
        XCTAssertEqual(stored.highWatermark, Int64(Self.messageCount), "high watermark of \(topic)")
        XCTAssertFalse(stored.wrappers.isEmpty, "no compressed wrapper stored")
        for (i, w) in stored.wrappers.enumerated() {
            XCTAssertEqual(w.codec, codec, "top-level entry \(i) at offset \(w.offset) of \(topic)")
            XCTAssertEqual(w.offset, w.inner.last?.offset, "wrapper \(i): its offset must be its last inner offset")
            if codec == .snappy {
                // Whatever the producer wrote (librdkafka: raw snappy), the broker recompresses as xerial.
                XCTAssertTrue(w.value.withUnsafeBytes { Compression.isXerialFramed($0) }, "wrapper \(i) is not xerial-framed")
            } else if codec == .lz4 {
                XCTAssertEqual(Array(w.value.prefix(4)), [0x04, 0x22, 0x4D, 0x18], "wrapper \(i) is not an LZ4 frame")
            } else {
                XCTAssertEqual(Array(w.value.prefix(2)), [0x1f, 0x8b], "wrapper \(i) is not a gzip stream")
            }
        }
        let inner = stored.wrappers.flatMap(\.inner)
        try assertSame(inner.map { Seen(offset: $0.offset, key: text($0.key), value: text($0.value)) }, expected,
                       "inner messages on the wire")
        XCTAssertTrue(inner.allSatisfy(\.crcValid), "an inner message has a bad CRC")

        // kcat reads keys, values and offsets.
        let k = try kcat(c, ["-C", "-t", topic, "-p", "0", "-e", "-o", "beginning", "-f", "%k:%s:%o\\n"], timeout: 120)
        XCTAssertEqual(k.exitCode, 0, "kcat consume: exit \(k.exitCode)\n\(k.stderr)")
        try assertSame(Self.parseKcat(k.stdout), expected, "kcat consumer")

        // kafka-python reads keys, values and offsets (checking CRCs).
        let p = try python(["consume", "--bootstrap", "127.0.0.1:\(c.broker.port)", "--topic", topic,
                            "--offset", "0", "--count", "\(Self.messageCount)"])
        XCTAssertEqual(p.exitCode, 0, "kafka-python consume: exit \(p.exitCode)\n\(p.stderr)")
        try assertSame(try jsonLines(p.stdout), expected, "kafka-python consumer")

        // The project's console consumer prints key TAB value, in order.
        let console = try Project.run("kafka-console-consumer.sh",
                                      ["--zookeeper", c.zkConnect, "--topic", topic, "--from-beginning",
                                       "--max-messages", "\(Self.messageCount)", "--property", "print.key=true"],
                                      timeout: 120)
        XCTAssertEqual(console.exitCode, 0, "console consumer: exit \(console.exitCode)\n\(console.stderr)")
        let lines = console.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map { line -> Seen in
            let parts = line.split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            return Seen(offset: nil, key: parts[0], value: parts.count > 1 ? parts[1] : nil)
        }
        try assertSame(Array(lines), expected.map { Seen(offset: nil, key: $0.key, value: $0.value) }, "console consumer")

        // Fetching from inside a compressed wrapper starts at the requested offset, for every consumer.
        if stored.wrappers.count > 1, let mid = stored.wrappers[1].inner.dropFirst().first?.offset {
            let tail = Array(expected[Int(mid)...].prefix(3))
            let km = try kcat(c, ["-C", "-t", topic, "-p", "0", "-o", "\(mid)", "-c", "3", "-f", "%k:%s:%o\\n"])
            try assertSame(Self.parseKcat(km.stdout), tail, "kcat from offset \(mid)")
            let pm = try python(["consume", "--bootstrap", "127.0.0.1:\(c.broker.port)", "--topic", topic,
                                 "--offset", "\(mid)", "--count", "3"])
            try assertSame(Array(try jsonLines(pm.stdout).prefix(3)), tail, "kafka-python from offset \(mid)")
            let sc = try await SimpleConsumer.connect(host: "127.0.0.1", port: c.broker.port, clientId: "compression-it")
            let f = try await sc.fetch(TopicPartition(topic, 0), offset: mid)
            await sc.close()
            XCTAssertEqual(f.error, ErrorCode.none)
            try assertSame(f.messages.prefix(3).map { Seen(offset: $0.offset, key: text($0.key), value: text($0.value)) },
                           tail, "SimpleConsumer from offset \(mid)")
        } else {
            XCTFail("expected several wrappers in \(topic), found \(stored.wrappers.count)")
        }
        let raw = messages.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
        print("\(topic): \(stored.wrappers.count) wrappers, \(stored.bytes) bytes stored for \(raw) bytes of keys and values")
    }

    // MARK: test data

    /// 10,000 keyed, text-like messages: varying lengths (a few of several KB, so that xerial
    /// blocks of 32 KiB fill), ':' inside values (kcat's and the console producer's key separator
    /// is the first ':'), multi-byte UTF-8. No TAB or newline (the console formats).
    static func messages(tag: String) -> [(key: String, value: String)] {
        let words = ["kafka", "broker", "offset", "wrapper", "gzip", "snappy", "xerial", "segment", "ünïcødé",
                     "€uro", "partition", "leader", "replica", "fetch", "produce", "crc32", "a:b", "ZooKeeper"]
        var rng = SeededRandom(seed: 0x4B61_666B_6134)   // fixed: the same data every run
        return (0..<messageCount).map { i in
            let n = i % 500 == 499 ? 700 : Int(rng.next() % 40)
            var v = "\(tag) #\(i):"
            for _ in 0..<n { v += " " + words[Int(rng.next() % UInt64(words.count))] }
            return (key: String(format: "key-%05d", i), value: v)
        }
    }

    // MARK: clients

    private func kcat(_ c: TestCluster, _ args: [String], stdin: String? = nil, timeout: Double = 60) throws -> ProcessResult {
        try Project.kcat(port: c.broker.port, args, stdin: stdin, timeout: timeout)
    }

    private func python(_ args: [String], stdin: String? = nil, timeout: Double = 120) throws -> ProcessResult {
        try Project.runInteropScript("compression_check.py", args, stdin: stdin, timeout: timeout)
    }

    /// `%k:%s:%o` lines: the key ends at the first ':', the offset follows the last one.
    static func parseKcat(_ text: String) -> [Seen] {
        text.split(separator: "\n").map { line in
            guard let first = line.firstIndex(of: ":"), let last = line.lastIndex(of: ":"), first < last else {
                return Seen(offset: -1, key: nil, value: String(line))
            }
            return Seen(offset: Int64(line[line.index(after: last)...]) ?? -1, key: String(line[..<first]),
                        value: String(line[line.index(after: first)..<last]))
        }
    }

    private func jsonLines(_ text: String) throws -> [Seen] {
        try Project.jsonLines(text, everyLine: true).map { o in
            Seen(offset: (o["offset"] as? NSNumber)?.int64Value, key: o["key"] as? String, value: o["value"] as? String)
        }
    }

    private func text(_ b: [UInt8]?) -> String? { b.map { String(decoding: $0, as: UTF8.self) } }

    /// Compares two runs of messages, reporting the count and the first difference only
    /// (10,000-element dumps help nobody).
    private func assertSame(_ got: [Seen], _ want: [Seen], _ what: String,
                            file: StaticString = #filePath, line: UInt = #line) throws {
        if let i = zip(got, want).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
            XCTFail("\(what): message \(i) differs: got \(got[i]), expected \(want[i])", file: file, line: line)
        }
        XCTAssertEqual(got.count, want.count, "\(what): message count", file: file, line: line)
    }

    // MARK: the wire

    struct Wrapper {
        var offset: Int64
        var codec: CompressionCodec?
        var value: [UInt8]
        var inner: [DecodedMessage]
    }

    /// Every top-level entry of partition 0 (raw v0 fetches), each decoded on its own.
    private func storedWrappers(_ c: TestCluster, topic: String) throws -> (wrappers: [Wrapper], highWatermark: Int64, bytes: Int) {
        let conn = try c.broker.connect()
        var out: [Wrapper] = []
        var next: Int64 = 0
        var hw: Int64 = -1
        var bytes = 0
        for _ in 0..<10_000 {
            let (error, h, set) = try Self.rawFetch(conn, topic: topic, offset: next)
            guard error == 0 else { throw WireError("fetch \(topic) at \(next): error \(error)") }
            hw = h
            let entries = try MessageSetDecoder.shallowEntries(set)
            for e in entries {
                let entry = Array(set[e.position..<(e.position + 12 + e.size)])
                bytes += entry.count
                let top = try MessageSetDecoder.decode(entry, deep: false)
                out.append(Wrapper(offset: e.offset, codec: top.first?.codec, value: top.first?.value ?? [],
                                   inner: try MessageSetDecoder.decode(entry, deep: true)))
            }
            guard let last = entries.last else { break }
            next = last.offset + 1
            if next >= hw { break }
        }
        return (out, hw, bytes)
    }

    /// One v0 Fetch of partition 0: (error, high watermark, message set bytes).
    static func rawFetch(_ conn: WireConnection, topic: String, offset: Int64,
                         maxBytes: Int32 = 1 << 20) throws -> (Int16, Int64, [UInt8]) {
        let cid = try conn.sendRequest(apiKey: 1, body: WireConnection.fetchBody(
            topic: topic, partition: 0, offset: offset, maxBytes: maxBytes, maxWaitMs: 0, minBytes: 0))
        let response = try conn.receiveResponse()
        var r = response.body
        let got = response.correlationId
        guard got == cid else { throw WireError("correlation id \(got) for request \(cid)") }
        guard try r.int32() == 1, try r.string() == topic, try r.int32() == 1, try r.int32() == 0 else {
            throw WireError("fetch response does not echo \(topic)/0")
        }
        let error = try r.int16()
        let hw = try r.int64()
        return (error, hw, try r.bytesField() ?? [])
    }
}

/// One consumed message; `offset` is nil for consumers that do not print it.
struct Seen: Equatable, CustomStringConvertible {
    var offset: Int64?
    var key: String?
    var value: String?

    var description: String {
        let v = value.map { $0.count > 80 ? String($0.prefix(80)) + "…(\($0.count) chars)" : $0 } ?? "null"
        return "\(offset.map(String.init) ?? "-"):\(key ?? "null"):\(v)"
    }
}
