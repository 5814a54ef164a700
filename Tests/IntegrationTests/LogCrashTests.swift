import Foundation
import KafkaTestSupport
import XCTest
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Helpers shared by the log tests (LogCrashTests, LogRetentionCompactionTests, TopicConfigTests)

/// One segment of a partition directory, as found on disk.
struct SegmentFiles {
    var baseOffset: Int64
    var logPath: String
    var indexPath: String
    var logSize: Int64 { LogDirectory.fileSize(logPath) }
}

/// One entry of a `.log` file: offset, byte position, message size (without the 12-byte log overhead).
struct LogEntry {
    var offset: Int64
    var position: Int
    var size: Int
}

/// Reading a broker's partition directories directly.
enum LogDirectory {
    static func partitionDir(_ broker: TestBroker, _ topic: String, _ partition: Int = 0) -> String {
        "\(broker.logDir)/\(topic)-\(partition)"
    }

    static func fileSize(_ path: String) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
    }

    /// Live segments (`.log` files not renamed `.deleted`), oldest first.
    static func segments(_ dir: String) -> [SegmentFiles] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.compactMap { name -> SegmentFiles? in
            guard name.hasSuffix(".log"), let base = Int64(name.dropLast(4)) else { return nil }
            let stem = "\(dir)/\(name.dropLast(4))"
            return SegmentFiles(baseOffset: base, logPath: stem + ".log", indexPath: stem + ".index")
        }.sorted { $0.baseOffset < $1.baseOffset }
    }

    /// Bytes in the live `.log` files of a partition.
    static func size(_ dir: String) -> Int64 { segments(dir).reduce(0) { $0 + $1.logSize } }

    /// Files whose name ends in `.deleted`.
    static func deletedFiles(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".deleted") }
    }

    /// The entries of a `.log` file (stops at the first incomplete one).
    static func entries(_ path: String) throws -> [LogEntry] {
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var out: [LogEntry] = []
        var pos = 0
        while pos + 12 <= data.count {
            let offset = data[pos..<pos + 8].reduce(Int64(0)) { $0 << 8 | Int64($1) }
            let size = Int(data[pos + 8..<pos + 12].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            guard size >= 14, pos + 12 + size <= data.count else { break }
            out.append(LogEntry(offset: offset, position: pos, size: size))
            pos += 12 + size
        }
        return out
    }

    /// Overwrites bytes of a file in place.
    static func overwrite(_ path: String, at position: Int, with bytes: [UInt8]) throws {
        let fh = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? fh.close() }
        try fh.seek(toOffset: UInt64(position))
        try fh.write(contentsOf: Data(bytes))
    }

    static func append(_ path: String, _ bytes: [UInt8]) throws {
        let fh = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? fh.close() }
        try fh.seekToEnd()
        try fh.write(contentsOf: Data(bytes))
    }

    static func read(_ path: String, at position: Int, count: Int) throws -> [UInt8] {
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        return Array(data[position..<position + count])
    }
}

enum LogTools {
    /// bin/kafka-dump-log.sh --files <files> <flags>.
    static func dump(_ files: [String], _ flags: [String] = []) throws -> ProcessResult {
        try Project.run("kafka-dump-log.sh", ["--files", files.joined(separator: ",")] + flags, timeout: 120)
    }

    /// Problems DumpLogSegments reports in its output (invalid messages, trailing bytes, bad sizes,
    /// index mismatches, non-consecutive offsets); empty when the files are clean.
    static func problems(in dumpOutput: String) -> [String] {
        dumpOutput.split(separator: "\n").map(String.init).filter { line in
            line.contains("isvalid: false") || line.contains("invalid bytes") || line.contains("invalid size")
                || line.contains("Mismatches in") || line.contains("Non-secutive") || line.contains("cannot be decompressed")
                || line.contains("is malformed") || line.contains("Cannot open") || line.contains("larger than the maximum")
        }
    }

    /// The offset of the last message line of a `.log` dump.
    static func lastOffset(in dumpOutput: String) -> Int64? {
        for line in dumpOutput.split(separator: "\n").reversed() where line.hasPrefix("offset: ") && line.contains("isvalid:") {
            return Int64(line.dropFirst("offset: ".count).prefix { $0 != " " })
        }
        return nil
    }

    /// Every message from `from` up to the high watermark, however many fetches it takes.
    static func readAll(_ conn: WireConnection, topic: String, from: Int64 = 0) throws -> [WireMessage] {
        var out: [WireMessage] = []
        var next = from
        while true {
            let f = try conn.fetch(topic: topic, offset: next, maxBytes: 1 << 20, maxWaitMs: 0)
            guard f.error == 0 else { throw WireError("fetch \(topic) at \(next): error \(f.error)") }
            let fresh = f.messages.filter { $0.offset >= next }
            out += fresh
            guard let last = fresh.last else { break }
            next = last.offset + 1
            if next >= f.highWatermark { break }
        }
        return out
    }

    /// bin/kafka-topics.sh --create with `--config k=v` overrides.
    static func createTopic(_ cluster: TestCluster, _ topic: String, partitions: Int = 1, configs: [String: String] = [:],
                            file: StaticString = #filePath, line: UInt = #line) throws {
        var args = ["--zookeeper", cluster.zkConnect, "--create", "--topic", topic,
                    "--partitions", "\(partitions)", "--replication-factor", "1"]
        for (k, v) in configs.sorted(by: { $0.key < $1.key }) { args += ["--config", "\(k)=\(v)"] }
        let r = try Project.run("kafka-topics.sh", args)
        XCTAssertEqual(r.exitCode, 0, r.summary, file: file, line: line)
        XCTAssertTrue(r.stdout.contains("Created topic \"\(topic)\"."), r.summary, file: file, line: line)
    }
}

/// Produces batches with acks=1 on its own thread as fast as the broker answers, recording every
/// acknowledged offset and its content, until the connection breaks or it is stopped.
final class AckRecordingProducer: @unchecked Sendable {
    let port: Int
    let topic: String
    let prefix: String
    let batchSize: Int
    private struct State {
        var _acked: [Int64: String] = [:]
        var _stop = false
        var _errors: [Int16] = []
        var _ending = ""
    }
    private let state = Mutex(State())
    private let finished = DispatchSemaphore(value: 0)

    /// Pause between requests (µs), so a cycle writes thousands of messages, not hundreds of thousands.
    let pauseMicros: UInt32

    init(port: Int, topic: String, prefix: String, batchSize: Int = 10, pauseMicros: UInt32 = 0) {
        self.port = port
        self.topic = topic
        self.prefix = prefix
        self.batchSize = batchSize
        self.pauseMicros = pauseMicros
    }

    var acked: [Int64: String] { state.withLock { st in st._acked } }
    var errorCodes: [Int16] { state.withLock { st in st._errors } }
    /// Why the loop ended (the error that broke the connection, or "stopped").
    var ending: String { state.withLock { st in st._ending } }

    func start() {
        let t = Thread { [self] in
            run()
            finished.signal()
        }
        t.start()
    }

    func stop() { state.withLock { st in st._stop = true } }

    /// Waits for the thread to end; false on timeout.
    func wait(timeout: Double) -> Bool { finished.wait(timeout: .now() + timeout) == .success }

    private func run() {
        let conn: WireConnection
        do { conn = try WireConnection(port: port, timeout: 10) } catch {
            state.withLock { st in st._ending = "connect: \(error)" }
            return
        }
        var i = 0
        while !state.withLock({ st in st._stop }) {
            let batch = (i..<i + batchSize).map { (key: "key-\($0 % 100)" as String?, value: "\(prefix)-value-\($0)" as String?) }
            i += batchSize
            do {
                let (error, base) = try conn.produce(topic: topic, messages: batch, acks: 1)
                state.withLock { st in
                    if error == 0 {
                        for (j, m) in batch.enumerated() { st._acked[base + Int64(j)] = m.value! }
                    } else {
                        st._errors.append(error)
                    }
                }
            } catch {
                state.withLock { st in st._ending = "\(error)" }
                return
            }
            if pauseMicros > 0 { usleep(pauseMicros) }
        }
        state.withLock { st in st._ending = "stopped" }
    }
}

// MARK: - Tests

/// The log survives `kill -9` of the broker at random moments while it is being written, and recovery after
/// corruption truncates at the first bad message, rebuilds the index and says so in the broker's log.
final class LogCrashTests: IntegrationTestCase {
    /// A short session timeout: a restarted broker waits for the killed one's ZooKeeper session to expire.
    static let brokerOverrides = ["zookeeper.session.timeout.ms": "2000", "zookeeper.connection.timeout.ms": "6000"]

    /// 20 cycles of: produce continuously (acks=1), kill -9 at a random moment (fixed seed), restart the
    /// same broker.id, check every acknowledged message at its offset, no offset reused for other content,
    /// contiguous offsets, and valid segment files ending at the log end offset.
    func testKill9AtRandomMomentsLosesNoAcknowledgedMessage() async throws {
        let cycles = 20
        let topic = "crash"
        let c = try await startCluster(overrides: Self.brokerOverrides)
        // Small segments so that kills also land around segment rolls.
        try LogTools.createTopic(c, topic, configs: ["segment.bytes": "65536", "index.interval.bytes": "1024"])
        try c.waitForLeaders(topic: topic)
        let b = c.broker
        let dir = LogDirectory.partitionDir(b, topic)
        var rng = SeededRandom(seed: 0x5EED_0003)
        var known: [Int64: String] = [:]   // every offset acknowledged or seen after a restart → its content
        var totalAcked = 0
        var restartSeconds: [Double] = []

        for cycle in 0..<cycles {
            let producer = AckRecordingProducer(port: b.port, topic: topic, prefix: "c\(cycle)", pauseMicros: 300)
            producer.start()
            let delay = rng.uniform(0.05, 1.2)
            usleep(UInt32(delay * 1_000_000))
            b.kill9()
            XCTAssertFalse(b.isRunning, "cycle \(cycle): broker still running after kill -9")
            XCTAssertTrue(producer.wait(timeout: 15), "cycle \(cycle): producer thread did not notice the kill")
            let acked = producer.acked
            totalAcked += acked.count
            XCTAssertTrue(producer.errorCodes.isEmpty, "cycle \(cycle): produce errors \(producer.errorCodes)")
            var reused: [String] = []
            for (o, v) in acked {
                if let old = known[o], old != v { reused.append("offset \(o): \(old) then \(v)") }
                known[o] = v
            }
            XCTAssertTrue(reused.isEmpty, "cycle \(cycle): offsets acknowledged twice for different content: \(reused.prefix(5))")

            let started = Date()
            try b.start()
            try b.waitUntilReady(timeout: 90)
            try c.waitForLeaders(topic: topic, timeout: 60)
            restartSeconds.append(Date().timeIntervalSince(started))

            let conn = try b.connect()
            let all = try LogTools.readAll(conn, topic: topic)
            let leo = try conn.offsets(topic: topic, time: -1)
            XCTAssertEqual(leo.error, 0)
            XCTAssertEqual(leo.offsets.first, Int64(all.count), "cycle \(cycle): log end offset vs. messages readable")
            XCTAssertEqual(all.first?.offset ?? 0, 0)
            XCTAssertTrue(zip(all, all.dropFirst()).allSatisfy { $0.offset + 1 == $1.offset },
                          "cycle \(cycle): offsets must be contiguous")
            var fetched: [Int64: String] = [:]
            for m in all { fetched[m.offset] = m.value ?? "<null>" }
            var lost: [String] = []
            for (o, v) in known where fetched[o] != v {
                lost.append("offset \(o): expected \(v), read \(fetched[o] ?? "nothing")")
            }
            lost.sort()
            XCTAssertTrue(lost.isEmpty, "cycle \(cycle) (kill after \(String(format: "%.3f", delay)) s, \(acked.count) acked; producer: \(producer.ending)): \(lost.count) acknowledged or earlier-read messages differ: \(lost.prefix(5))")
            // Messages written but not acknowledged before the kill are now part of the log: remember them so a
            // later cycle cannot hand out their offsets again.
            for (o, v) in fetched where known[o] == nil { known[o] = v }

            // The segments written this cycle end at a valid message (the last one at the log end offset).
            let segs = LogDirectory.segments(dir)
            let recent = segs.suffix(3)
            let dump = try LogTools.dump(recent.map(\.logPath), ["--deep-iteration"])
            XCTAssertEqual(dump.exitCode, 0, dump.summary)
            XCTAssertEqual(LogTools.problems(in: dump.stdout), [], "cycle \(cycle): dump-log reports problems")
            if !all.isEmpty {
                XCTAssertEqual(LogTools.lastOffset(in: dump.stdout), Int64(all.count) - 1,
                               "cycle \(cycle): the last segment must end at the last message")
            }
            if !lost.isEmpty || !reused.isEmpty { break }
        }
        print("LogCrashTests: \(cycles) kill -9 cycles, \(totalAcked) messages acknowledged, \(known.count) in the log; restart took \(restartSeconds.map { String(format: "%.1f", $0) }.joined(separator: ", ")) s")
        XCTAssertGreaterThan(totalAcked, 0)

        // Finally every segment and index, all at once.
        let segs = LogDirectory.segments(dir)
        XCTAssertGreaterThan(segs.count, 1, "the test should have rolled segments")
        let logs = try LogTools.dump(segs.map(\.logPath), ["--deep-iteration"])
        XCTAssertEqual(LogTools.problems(in: logs.stdout), [], "dump-log over every segment")
        let indexes = try LogTools.dump(segs.map(\.indexPath).filter { FileManager.default.fileExists(atPath: $0) }, ["--verify-index-only"])
        XCTAssertEqual(LogTools.problems(in: indexes.stdout), [], "index consistency")
    }

    /// Clean stop, then corruption: the index is rebuilt (it was deleted) and the rebuild truncates.
    func testCorruptionAfterCleanStopIsTruncatedAndIndexRebuilt() async throws {
        try await corruptionScenario(cleanStop: true)
    }

    /// kill -9, then corruption: unclean-shutdown recovery truncates.
    func testCorruptionAfterKill9IsTruncatedAndIndexRebuilt() async throws {
        try await corruptionScenario(cleanStop: false)
    }

    /// Writes 300 messages, stops the broker, corrupts one message in the middle of the active segment and the
    /// bytes at its tail, deletes its index, restarts: the log must end right before the first bad message,
    /// the index be rebuilt and consistent, and the broker log say what was truncated, where and why.
    private func corruptionScenario(cleanStop: Bool, file: StaticString = #filePath, line: UInt = #line) async throws {
        let topic = "corrupt"
        let c = try await startCluster(overrides: Self.brokerOverrides)
        try LogTools.createTopic(c, topic)
        try c.waitForLeaders(topic: topic)
        let b = c.broker
        var conn = try b.connect()
        var produced: [WireMessage] = []
        for i in stride(from: 0, to: 300, by: 10) {
            let batch = (i..<i + 10).map { (key: "key-\($0)" as String?, value: "value-\($0)-" + String(repeating: "x", count: 60) as String?) }
            let (error, base) = try conn.produce(topic: topic, messages: batch)
            XCTAssertEqual(error, 0)
            for (j, m) in batch.enumerated() { produced.append(WireMessage(offset: base + Int64(j), key: m.key, value: m.value)) }
        }
        XCTAssertEqual(produced.map(\.offset), Array(0..<300))

        if cleanStop {
            XCTAssertEqual(b.terminate(timeout: 30), 0, "clean stop")
        } else {
            b.kill9()
        }
        let dir = LogDirectory.partitionDir(b, topic)
        guard let active = LogDirectory.segments(dir).last else { return XCTFail("no segment in \(dir)") }
        let entries = try LogDirectory.entries(active.logPath)
        XCTAssertEqual(entries.count, 300, "one entry per message", file: file, line: line)
        let bad = entries[150]
        // Middle: flip the last byte of message 150's value, so its CRC no longer matches.
        let last = bad.position + 12 + bad.size - 1
        try LogDirectory.overwrite(active.logPath, at: last, with: [try LogDirectory.read(active.logPath, at: last, count: 1)[0] ^ 0xFF])
        // Tail: garble the last message's bytes and leave a torn entry header after it.
        let tail = entries.last!
        try LogDirectory.overwrite(active.logPath, at: tail.position + 20, with: [UInt8](repeating: 0xEE, count: 16))
        try LogDirectory.append(active.logPath, [0, 0, 0, 0, 0, 0, 1, 44, 0, 0])
        try FileManager.default.removeItem(atPath: active.indexPath)
        let sizeBefore = active.logSize

        try b.start()
        try b.waitUntilReady(timeout: 90)
        try c.waitForLeaders(topic: topic, timeout: 60)

        // Truncated at the first bad message: offsets 0..<150 with their content, nothing after.
        conn = try b.connect()
        XCTAssertEqual(try conn.fetchAll(topic: topic), Array(produced.prefix(150)), file: file, line: line)
        XCTAssertEqual(try conn.offsets(topic: topic, time: -1).offsets.first, 150, file: file, line: line)
        XCTAssertEqual(active.logSize, Int64(bad.position), "the file ends where message 150 began", file: file, line: line)
        XCTAssertTrue(FileManager.default.fileExists(atPath: active.indexPath), "index rebuilt", file: file, line: line)

        // The files are consistent again.
        let dumpLog = try LogTools.dump([active.logPath], ["--deep-iteration"])
        XCTAssertEqual(LogTools.problems(in: dumpLog.stdout), [], dumpLog.stdout, file: file, line: line)
        XCTAssertEqual(LogTools.lastOffset(in: dumpLog.stdout), 149, file: file, line: line)
        let dumpIndex = try LogTools.dump([active.indexPath])
        XCTAssertEqual(LogTools.problems(in: dumpIndex.stdout), [], dumpIndex.stdout, file: file, line: line)
        XCTAssertGreaterThan(dumpIndex.stdout.split(separator: "\n").filter { $0.hasPrefix("offset: ") }.count, 1,
                             "the rebuilt index has entries (150 messages of ~100 bytes, one entry per 4096 bytes):\n\(dumpIndex.stdout)",
                             file: file, line: line)

        // The broker said what it truncated, where and why.
        let output = b.output()
        let name = (active.logPath as NSString).lastPathComponent
        let reports = output.split(separator: "\n").filter {
            $0.lowercased().contains("truncat") && $0.contains(name) && $0.contains("byte \(bad.position)")
                && $0.contains("CRC mismatch at offset 150")
        }
        XCTAssertEqual(reports.count, 1, """
            expected one log line naming the file, the byte position \(bad.position) and the reason \
            (CRC mismatch at offset 150); the segment had \(sizeBefore) bytes. Output:
            \(b.tail(40))
            """, file: file, line: line)
        let bytesCut = sizeBefore - Int64(bad.position)
        XCTAssertTrue(reports.first?.contains("\(bytesCut) bytes") ?? false, "how much was truncated: \(bytesCut) bytes in \(reports)",
                      file: file, line: line)
        if cleanStop {
            XCTAssertTrue(output.contains("rebuilding index"), "the missing index is reported", file: file, line: line)
        } else {
            XCTAssertTrue(reports.first?.contains("log now ends at offset 150") ?? false, "\(reports)", file: file, line: line)
        }
        print("LogCrashTests (\(cleanStop ? "clean stop" : "kill -9")): \(reports.first ?? "")")

        // New messages continue at offset 150.
        let (error, base) = try conn.produce(topic: topic, messages: [(key: "k", value: "after")])
        XCTAssertEqual(error, 0)
        XCTAssertEqual(base, 150, file: file, line: line)
        XCTAssertEqual(try conn.fetchAll(topic: topic, from: 149).map(\.value), [produced[149].value, "after"], file: file, line: line)
    }
}
