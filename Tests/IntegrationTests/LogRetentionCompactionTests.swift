import Foundation
import KafkaTestSupport
import XCTest
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a partition from a given offset on its own thread, fetch after fetch, the way a consumer keeps up
/// with a producer; records what it read and any error code.
final class FollowingConsumer: @unchecked Sendable {
    let port: Int
    let topic: String
    private struct State {
        var _next: Int64
        var _messages: [WireMessage] = []
        var _errors: [String] = []
        var _stop = false
    }
    private let state: Mutex<State>
    private let finished = DispatchSemaphore(value: 0)

    init(port: Int, topic: String, from: Int64 = 0) {
        self.port = port
        self.topic = topic
        state = Mutex(State(_next: from))
    }

    var next: Int64 { state.withLock { st in st._next } }
    var messages: [WireMessage] { state.withLock { st in st._messages } }
    var errors: [String] { state.withLock { st in st._errors } }

    func start() {
        Thread { [self] in
            run()
            finished.signal()
        }.start()
    }

    /// Stops after the next fetch; waits for the thread.
    func stop(timeout: Double = 10) -> Bool {
        state.withLock { st in st._stop = true }
        return finished.wait(timeout: .now() + timeout) == .success
    }

    private func run() {
        do {
            let conn = try WireConnection(port: port, timeout: 10)
            while !state.withLock({ st in st._stop }) {
                let from = next
                let f = try conn.fetch(topic: topic, offset: from, maxBytes: 64 * 1024, maxWaitMs: 100, minBytes: 1)
                guard f.error == 0 else {
                    state.withLock { st in st._errors.append("fetch at \(from): error \(f.error)") }
                    return
                }
                let fresh = f.messages.filter { $0.offset >= from }
                state.withLock { st in
                    st._messages += fresh
                    if let last = fresh.last { st._next = last.offset + 1 }
                }
            }
        } catch {
            state.withLock { st in st._errors.append("\(error)") }
        }
    }
}

/// Retention by time and by size and compaction, through a real broker, with per-topic overrides set by
/// bin/kafka-topics.sh --config.
final class LogRetentionCompactionTests: IntegrationTestCase {
    static let fastRetention = [
        "log.retention.check.interval.ms": "500",
        "log.segment.delete.delay.ms": "300",
    ]

    private func value(_ i: Int) -> String { "message-\(i)-" + String(repeating: "r", count: 80) }

    /// retention.ms of 3 s with 8 KB segments while a producer writes for ~9 s and a consumer follows it:
    /// old segments go away (renamed .deleted, then removed), the consumer never misses a message,
    /// Offsets(-2) reports the new start, which is a segment's base offset, and a fetch below it gets
    /// OffsetOutOfRange (1).
    func testTimeRetentionDeletesOldSegmentsWhileAConsumerReads() async throws {
        let topic = "short-lived"
        let c = try await startCluster(overrides: Self.fastRetention)
        try LogTools.createTopic(c, topic, configs: ["retention.ms": "3000", "segment.bytes": "8192"])
        try c.waitForLeaders(topic: topic)
        let dir = LogDirectory.partitionDir(c.broker, topic)
        let consumer = FollowingConsumer(port: c.broker.port, topic: topic)
        consumer.start()

        let conn = try c.broker.connect()
        var produced: [String] = []
        var sawDeleted = false
        var earliestSeen: [Int64] = []
        let start = Date()
        while Date().timeIntervalSince(start) < 9 {
            let batch = (produced.count..<produced.count + 10).map { (key: nil as String?, value: value($0) as String?) }
            let (error, base) = try conn.produce(topic: topic, messages: batch)
            XCTAssertEqual(error, 0)
            XCTAssertEqual(base, Int64(produced.count))
            produced += batch.map { $0.value! }
            if !LogDirectory.deletedFiles(dir).isEmpty { sawDeleted = true }
            let earliest = try conn.offsets(topic: topic, time: -2)
            if let e = earliest.offsets.first, e != earliestSeen.last { earliestSeen.append(e) }
            usleep(40_000)
        }
        // The consumer catches up with everything, in order, without gaps, although segments were deleted.
        _ = try poll(timeout: 20, "the consumer to read all \(produced.count) messages") {
            consumer.next >= Int64(produced.count) || !consumer.errors.isEmpty ? true : nil
        }
        XCTAssertTrue(consumer.stop())
        XCTAssertEqual(consumer.errors, [])
        let read = consumer.messages
        XCTAssertEqual(read.map(\.offset), Array(0..<Int64(produced.count)), "the consumer saw every offset once")
        XCTAssertEqual(read.map { $0.value ?? "" }, produced)

        XCTAssertGreaterThan(earliestSeen.count, 2, "the log start offset moved forward repeatedly while producing: \(earliestSeen)")
        XCTAssertEqual(earliestSeen, earliestSeen.sorted(), "the log start offset only moves forward")
        XCTAssertTrue(sawDeleted || c.broker.output().contains("by retention"), "segments were deleted by retention")

        // After the producer stops: the start is a segment's base offset, the data below it is gone.
        let earliest = try XCTUnwrap(try conn.offsets(topic: topic, time: -2).offsets.first)
        XCTAssertGreaterThan(earliest, 0)
        let bases = LogDirectory.segments(dir).map(\.baseOffset)
        XCTAssertTrue(bases.contains(earliest), "Offsets(-2) = \(earliest) is the base offset of a live segment: \(bases)")
        XCTAssertEqual(bases.first, earliest, "the oldest live segment starts at Offsets(-2)")
        let below = try conn.fetch(topic: topic, offset: earliest - 1)
        XCTAssertEqual(below.error, 1, "a fetch below the log start gets OffsetOutOfRange")
        XCTAssertEqual(try conn.fetch(topic: topic, offset: 0).error, 1)
        let at = try conn.fetch(topic: topic, offset: earliest)
        XCTAssertEqual(at.error, 0)
        XCTAssertEqual(at.messages.first?.offset, earliest)
        XCTAssertEqual(at.messages.first?.value, produced[Int(earliest)])

        // Once nothing new arrives, everything older than 3 s goes: only the (new, empty) active segment remains,
        // and the .deleted files are removed after log.segment.delete.delay.ms.
        let leo = Int64(produced.count)
        _ = try poll(timeout: 20, "retention to remove every old segment") { () -> Bool? in
            try conn.offsets(topic: topic, time: -2).offsets.first == leo ? true : nil
        }
        _ = try poll(timeout: 10, "the .deleted files to be removed") { LogDirectory.deletedFiles(dir).isEmpty ? true : nil }
        XCTAssertEqual(LogDirectory.segments(dir).map(\.baseOffset), [leo])
        XCTAssertEqual(try conn.fetch(topic: topic, offset: leo - 1).error, 1)
        let (error, base) = try conn.produce(topic: topic, messages: [(key: nil, value: "after")])
        XCTAssertEqual(error, 0)
        XCTAssertEqual(base, leo, "offsets continue after retention emptied the log")
        print("LogRetentionCompactionTests: \(produced.count) messages; log start offset moved \(earliestSeen)")
    }

    /// retention.bytes of 40 KB with 8 KB segments: after each retention check the partition holds less than
    /// the limit plus one segment, and Offsets(-2) is the oldest remaining segment.
    func testSizeRetentionKeepsThePartitionWithinOneSegmentOfTheLimit() async throws {
        let topic = "bounded"
        let limit: Int64 = 40_960
        let segment: Int64 = 8192
        let c = try await startCluster(overrides: Self.fastRetention)
        try LogTools.createTopic(c, topic, configs: ["retention.bytes": "\(limit)", "segment.bytes": "\(segment)"])
        try c.waitForLeaders(topic: topic)
        let dir = LogDirectory.partitionDir(c.broker, topic)
        let conn = try c.broker.connect()
        var next = 0
        var sizes: [Int64] = []
        for round in 0..<6 {
            // ~32 KB per round (270 messages of 119 bytes), then two retention checks.
            for _ in 0..<90 {
                let batch = (next..<next + 3).map { (key: nil as String?, value: value($0) as String?) }
                let (error, base) = try conn.produce(topic: topic, messages: batch)
                XCTAssertEqual(error, 0)
                XCTAssertEqual(base, Int64(next))
                next += batch.count
            }
            usleep(1_300_000)
            let size = LogDirectory.size(dir)
            sizes.append(size)
            XCTAssertLessThan(size, limit + segment, "round \(round): \(size) bytes with retention.bytes=\(limit), segment.bytes=\(segment)")
            if Int64(next) * 119 > limit {
                XCTAssertGreaterThanOrEqual(size, limit, "round \(round): retention deleted more than needed (\(size) bytes)")
            }
            let earliest = try XCTUnwrap(try conn.offsets(topic: topic, time: -2).offsets.first)
            XCTAssertEqual(LogDirectory.segments(dir).first?.baseOffset, earliest, "round \(round)")
            XCTAssertEqual(try conn.fetch(topic: topic, offset: earliest).messages.first?.value, value(Int(earliest)))
        }
        XCTAssertGreaterThan(try XCTUnwrap(try conn.offsets(topic: topic, time: -2).offsets.first), 0)
        XCTAssertGreaterThan(Int64(next * 119), 4 * limit, "the test wrote several times the limit")
        print("LogRetentionCompactionTests: partition size after each round \(sizes) (limit \(limit), segment \(segment))")
    }

    /// cleanup.policy=compact with 100 KB segments and the cleaner on: 100,000 messages over 1,000 keys shrink to
    /// at most one message per key outside the active segment; a consumer reading from 0 ends with each key's
    /// latest value; every surviving message keeps its original offset; offsets strictly increase; keyless
    /// messages are refused with InvalidMessage (2).
    func testCompactionKeepsTheLatestValueOfEachKey() async throws {
        let topic = "compacted"
        let keys = 1000
        let total = 100_000
        let c = try await startCluster(overrides: ["log.cleaner.enable": "true"])
        try LogTools.createTopic(c, topic, configs: ["cleanup.policy": "compact", "segment.bytes": "102400"])
        try c.waitForLeaders(topic: topic)
        let conn = try c.broker.connect()
        let dir = LogDirectory.partitionDir(c.broker, topic)

        // Keyless messages are refused on a compacted topic (0.8.2: InvalidMessageException → 2).
        let keyless = try conn.produce(topic: topic, messages: [(key: nil, value: "no key")])
        XCTAssertEqual(keyless.error, 2, "a message without a key on a compacted topic")
        let mixed = try conn.produce(topic: topic, messages: [(key: "k", value: "v"), (key: nil, value: "no key")])
        XCTAssertEqual(mixed.error, 2, "a set with one keyless message is refused as a whole")

        // Keys are visited in a scrambled but fixed order; value = "<key>@<sequence>".
        var rng = SeededRandom(seed: 1000)
        var byOffset: [Int64: (key: String, value: String)] = [:]
        var latest: [String: (offset: Int64, value: String)] = [:]
        var i = 0
        while i < total {
            let batch = (i..<min(total, i + 500)).map { n -> (key: String?, value: String?) in
                let k = "key-\(Int(rng.next() % UInt64(keys)))"
                return (k, "\(k)@\(n)")
            }
            let (error, base) = try conn.produce(topic: topic, messages: batch)
            XCTAssertEqual(error, 0)
            guard error == 0 else { return }
            XCTAssertEqual(base, Int64(i), "no offsets were consumed by the refused sets")
            for (j, m) in batch.enumerated() {
                byOffset[base + Int64(j)] = (m.key!, m.value!)
                latest[m.key!] = (base + Int64(j), m.value!)
            }
            i += batch.count
        }
        XCTAssertEqual(latest.count, keys)

        // Wait for the cleaner (it backs off 15 s when it finds nothing to do).
        let activeBase = try poll(timeout: 120, "the cleaner to compact the non-active segments") { () -> Int64? in
            guard let active = LogDirectory.segments(dir).last?.baseOffset else { return nil }
            let checkpoint = (try? String(contentsOfFile: c.broker.logDir + "/cleaner-offset-checkpoint", encoding: .utf8)) ?? ""
            guard checkpoint.contains("\(topic) 0 \(active)") else { return nil }
            return active
        }
        let read = try LogTools.readAll(conn, topic: topic)
        XCTAssertTrue(zip(read, read.dropFirst()).allSatisfy { $0.offset < $1.offset }, "offsets strictly increase")
        XCTAssertEqual(read.last?.offset, Int64(total - 1), "the last message is never cleaned away")
        for m in read {
            guard let orig = byOffset[m.offset] else { XCTFail("offset \(m.offset) was never produced"); break }
            if m.key != orig.key || m.value != orig.value {
                XCTFail("offset \(m.offset) holds \(m.key ?? "nil")=\(m.value ?? "nil"), produced \(orig.key)=\(orig.value)")
                break
            }
        }
        let cleaned = read.filter { $0.offset < activeBase }
        let activeCount = read.count - cleaned.count
        XCTAssertEqual(Set(cleaned.compactMap(\.key)).count, cleaned.count, "at most one message per key below the active segment")
        XCTAssertLessThanOrEqual(cleaned.count, keys)
        XCTAssertGreaterThan(cleaned.count, keys * 8 / 10, "about one message per key survives below the active segment")
        XCTAssertLessThan(read.count, keys + activeCount + 1)
        // Each key's latest value is what a consumer reading everything ends up with.
        var seen: [String: String] = [:]
        for m in read { seen[m.key ?? ""] = m.value }
        XCTAssertEqual(seen.count, keys)
        let wrong = latest.filter { seen[$0.key] != $0.value.value }
        XCTAssertTrue(wrong.isEmpty, "\(wrong.count) keys whose latest value is not what the consumer sees, e.g. \(wrong.first.map { "\($0.key): \($0.value.value) vs \(seen[$0.key] ?? "nil")" } ?? "")")
        let dump = try LogTools.dump(LogDirectory.segments(dir).map(\.logPath))
        XCTAssertEqual(LogTools.problems(in: dump.stdout).filter { !$0.contains("Non-secutive") }, [], "compacted segments are valid")
        print("LogRetentionCompactionTests: \(total) messages over \(keys) keys → \(read.count) after compaction (\(cleaned.count) cleaned + \(activeCount) in the active segment from \(activeBase)); \(LogDirectory.segments(dir).count) segments, \(LogDirectory.size(dir)) bytes")
    }
}
