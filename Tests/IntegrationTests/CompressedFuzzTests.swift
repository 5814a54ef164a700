import Foundation
import KafkaClient
import KafkaProtocol
import KafkaTestSupport
import XCTest

/// Fuzzing of compressed wrappers (issue 4), against a real broker over raw v0 Produce requests
/// (acks 1). 10,000 cases from fixed seeds (the same cases every run): valid wrappers of every
/// snappy/gzip flavour, nested and mixed sets, and their mutations (bit flips, truncations, wrong
/// lengths, bad inner CRCs and sizes, random bytes as gzip/snappy/xerial/lz4 payloads, unknown
/// codecs 4-7, empty, null and oversized values, decompression bombs).
///
/// Every response must be an error code the case allows, or success; after every case the data
/// from the previous log end offset is fetched back: an error must have appended nothing, a success
/// must have appended messages the project's decoder reads (CRCs valid, consecutive offsets), equal
/// to the input when the case is well-formed. The broker must stay up; the messages produced before
/// the fuzzing must be byte-for-byte intact afterwards; kcat (CRC checks on) and kafka-python must
/// read the whole fuzzed partition.
///
/// The consumer side: a wrapper whose compressed payload is corrupted in the log (CRC kept valid)
/// makes the project's consumers fail with an error naming topic, partition and offset.
final class CompressedFuzzTests: SharedClusterTestCase {
    /// Fixed seeds: 4 × 2,500 cases.
    static let seeds: [UInt64] = [0x0C0FFEE, 0xBADC0DE, 0x5EED_0004, 0xFACADE]
    static let casesPerSeed = 2_500
    static let maxMessageBytes = 100_000

    // A small message.max.bytes makes oversized wrappers cheap to produce.
    override class var clusterOverrides: [String: String] { ["message.max.bytes": "\(maxMessageBytes)"] }

    // MARK: produce side

    func testTenThousandFuzzedCompressedWrappers() async throws {
        let c = cluster
        let topic = "fuzz"
        try c.createTopic(topic)
        try c.waitForLeaders(topic: topic)
        var conn = try c.broker.connect(timeout: 30)

        // Before the fuzzing: plain, gzip, xerial snappy and raw snappy sets at offsets 0..99.
        var rng = SeededRandom(seed: 42)
        var baseline: [Msg] = []
        for (i, enc) in [Enc.plain, .gzip, .xerial, .rawSnappy].enumerated() {
            let msgs = (0..<25).map { j in Msg(key: Array("base-\(i)-\(j)".utf8), value: Array("baseline \(enc) \(j) \(Self.words(&rng, 8))".utf8)) }
            let (error, offset) = try Self.produce(conn, topic: topic, set: Self.encode(msgs, enc))
            XCTAssertEqual(error, 0, "baseline \(enc)")
            XCTAssertEqual(offset, Int64(baseline.count), "baseline \(enc)")
            baseline += msgs
        }
        let before = try CompressionInteropTests.rawFetch(conn, topic: topic, offset: 0)
        XCTAssertEqual(before.1, 100)
        let baselineBytes = before.2
        XCTAssertEqual(try MessageSetDecoder.decode(baselineBytes).map { Msg(key: $0.key, value: $0.value) }, baseline)

        // The fuzzing.
        var leo: Int64 = 100
        var stats: [String: [String: Int]] = [:]
        var failures: [String] = []
        var caseNumber = 0
        let started = Date()
        for seed in Self.seeds {
            var rng = SeededRandom(seed: seed)
            for i in 0..<Self.casesPerSeed {
                caseNumber += 1
                let fc = Self.makeCase(&rng)
                let label = "case \(caseNumber) (seed \(String(seed, radix: 16)) #\(i), \(fc.kind), \(fc.set.count) bytes)"
                var outcome = "no response"
                do {
                    let (error, offset) = try Self.produce(conn, topic: topic, set: fc.set)
                    outcome = error == 0 ? "ok" : "error \(error)"
                    let check = try CompressionInteropTests.rawFetch(conn, topic: topic, offset: leo)
                    let hw = check.1
                    if error != 0 {
                        if !fc.expect.allows(error) { failures.append("\(label): error \(error), expected \(fc.expect)") }
                        if hw != leo || !check.2.isEmpty {
                            failures.append("\(label): error \(error) but the log grew from \(leo) to \(hw)")
                        }
                    } else {
                        if case .rejected = fc.expect { failures.append("\(label): accepted, expected \(fc.expect)") }
                        let got: [DecodedMessage]
                        do { got = try MessageSetDecoder.decode(check.2) } catch {
                            failures.append("\(label): accepted, but the stored data cannot be decoded: \(error)")
                            leo = hw
                            continue
                        }
                        var problems = Self.readabilityProblems(got, from: leo, to: hw)
                        let whole = check.2.withUnsafeBytes { MessageSetDecoder.completePrefix($0).validBytes }
                        if whole != check.2.count {
                            problems += " \(check.2.count - whole) trailing bytes that are not a whole entry"
                        }
                        if !problems.isEmpty { failures.append("\(label): accepted, but stored \(problems)") }
                        if hw > leo && offset != leo { failures.append("\(label): acknowledged offset \(offset), log end was \(leo)") }
                        if case let .accepted(want) = fc.expect, got.map({ Msg(key: $0.key, value: $0.value) }) != want {
                            failures.append("\(label): stored \(got.count) messages, expected \(want.count) (or different content)")
                        }
                        leo = hw
                    }
                } catch {
                    outcome = "no response"
                    failures.append("\(label): \(error) (broker running: \(c.broker.isRunning))")
                    guard c.broker.isRunning else { break }
                    conn = try c.broker.connect(timeout: 30)
                    leo = try Self.latestOffset(conn, topic: topic)
                }
                stats[fc.kind, default: [:]][outcome, default: 0] += 1
            }
        }
        let elapsed = Date().timeIntervalSince(started)
        print("CompressedFuzzTests: \(caseNumber) cases in \(String(format: "%.1f", elapsed)) s; log end offset \(leo)")
        for (kind, outcomes) in stats.sorted(by: { $0.key < $1.key }) {
            print("  \(kind): " + outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        XCTAssertEqual(caseNumber, 10_000)
        XCTAssertTrue(failures.isEmpty, "\(failures.count) of \(caseNumber) cases failed; first ones:\n"
                      + failures.prefix(25).joined(separator: "\n"))

        // The broker is up: a fresh connection gets metadata and can produce.
        XCTAssertTrue(c.broker.isRunning, "the broker exited")
        let fresh = try c.broker.connect()
        XCTAssertEqual(try fresh.metadata([topic]).topic(topic)?.partitions.first?.leader, 0)
        let last = [Msg(key: Array("after".utf8), value: Array("fuzzing is over".utf8))]
        let (afterError, afterOffset) = try Self.produce(fresh, topic: topic, set: Self.encode(last, .gzip))
        XCTAssertEqual(afterError, 0)
        XCTAssertEqual(afterOffset, leo)
        leo += 1

        // The baseline is intact, byte for byte, at its offsets.
        let after = try CompressionInteropTests.rawFetch(fresh, topic: topic, offset: 0, maxBytes: Int32(baselineBytes.count))
        XCTAssertEqual(after.0, 0)
        XCTAssertEqual(after.1, leo)
        XCTAssertEqual(after.2, baselineBytes, "the first 100 messages changed on disk")
        XCTAssertEqual(try MessageSetDecoder.decode(after.2).map(\.offset), Array(0..<100))

        // Third-party clients read the whole fuzzed partition.
        if let kcat = Project.which("kcat") {
            let r = try ProcessRunner.run(kcat, ["-b", "127.0.0.1:\(c.broker.port)"] + Project.kcatCompat
                                          + ["-X", "check.crcs=true", "-C", "-t", topic, "-p", "0", "-e", "-o", "beginning",
                                             "-f", "%o\\n"], timeout: 120)
            XCTAssertEqual(r.exitCode, 0, "kcat: \(r.stderr)")
            XCTAssertFalse(r.stderr.contains("ERROR"), "kcat: \(r.stderr.prefix(2000))")
            XCTAssertEqual(Self.offsetMismatch(r.stdout.split(separator: "\n").map { Int64($0) ?? -1 }, leo), "", "kcat offsets")
        }
        if let py = try? Project.requireVenvPython() {
            let r = try Project.runInteropScript("compression_check.py", ["consume", "--bootstrap", "127.0.0.1:\(c.broker.port)",
                                                                          "--topic", topic, "--count", "\(leo)"],
                                                 python: py, timeout: 180)
            XCTAssertEqual(r.exitCode, 0, "kafka-python: \(r.stderr.suffix(2000))")
            let offsets = r.stdout.split(separator: "\n").compactMap { line -> Int64? in
                guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return -1 }
                return (o["offset"] as? NSNumber)?.int64Value
            }
            XCTAssertEqual(Self.offsetMismatch(offsets, leo), "", "kafka-python offsets")
        }
    }

    /// "" when `offsets` is 0..<count, else where it first differs.
    static func offsetMismatch(_ offsets: [Int64], _ count: Int64) -> String {
        if let i = offsets.indices.first(where: { offsets[$0] != Int64($0) }) {
            return "\(offsets.count) offsets, the one at index \(i) is \(offsets[i])"
        }
        return offsets.count == count ? "" : "\(offsets.count) offsets instead of \(count)"
    }

    /// What is wrong with messages fetched after a successful produce (empty when all is well).
    static func readabilityProblems(_ got: [DecodedMessage], from leo: Int64, to hw: Int64) -> String {
        if got.map(\.offset) != Array(leo..<hw) {
            return "offsets \(got.prefix(5).map(\.offset))… for log end \(leo) → \(hw)"
        }
        if let bad = got.first(where: { !$0.crcValid }) { return "a message with a bad CRC at offset \(bad.offset)" }
        if let bad = got.first(where: { $0.magic != 0 }) { return "a message with magic \(bad.magic) at offset \(bad.offset)" }
        if let bad = got.first(where: { $0.entrySize != 26 + ($0.key?.count ?? 0) + ($0.value?.count ?? 0) }) {
            return "a message whose key and value do not fill its size at offset \(bad.offset)"
        }
        if let bad = got.first(where: { $0.attributes & 0x07 != 0 }) {
            return "an inner message with attributes \(bad.attributes) at offset \(bad.offset)"
        }
        return ""
    }

    // MARK: consumer side

    /// A gzip wrapper corrupted in the log (payload garbled, CRC recomputed so that only the
    /// decompression fails) between a plain set and a snappy wrapper.
    func testConsumersReportCorruptCompressedDataWithTopicPartitionAndOffset() async throws {
        let c = cluster
        let topic = "corrupt-fetch"
        try c.createTopic(topic)
        try c.waitForLeaders(topic: topic)
        let conn = try c.broker.connect()
        var rng = SeededRandom(seed: 7)
        var all: [Msg] = []
        for enc in [Enc.plain, .gzip, .xerial] {
            let msgs = (0..<5).map { j in Msg(key: Array("\(enc)-\(j)".utf8), value: Array("\(enc) \(j) \(Self.words(&rng, 20))".utf8)) }
            XCTAssertEqual(try Self.produce(conn, topic: topic, set: Self.encode(msgs, enc)).error, 0)
            all += msgs
        }
        // offsets: 0-4 plain, 5-9 in a gzip wrapper (offset 9), 10-14 in a snappy wrapper (offset 14)

        let path = "\(c.broker.logDir)/\(topic)-0/00000000000000000000.log"
        var log = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let entries = try MessageSetDecoder.shallowEntries(log)
        XCTAssertEqual(entries.map(\.offset), [0, 1, 2, 3, 4, 9, 14])
        let wrapper = try XCTUnwrap(entries.first { $0.offset == 9 })
        let valueStart = wrapper.position + 12 + 14    // after crc, magic, attributes, key length (-1), value length
        let valueEnd = wrapper.position + 12 + wrapper.size
        XCTAssertEqual(Array(log[valueStart..<(valueStart + 2)]), [0x1f, 0x8b], "not a gzip wrapper")
        for i in (valueStart + 10)..<(valueEnd - 8) { log[i] ^= 0x5A }   // garble the deflate data
        let crc = CRC32.checksum(Array(log[(wrapper.position + 16)..<valueEnd]))
        log[wrapper.position + 12] = UInt8(crc >> 24)
        log[wrapper.position + 13] = UInt8(crc >> 16 & 0xFF)
        log[wrapper.position + 14] = UInt8(crc >> 8 & 0xFF)
        log[wrapper.position + 15] = UInt8(crc & 0xFF)
        let fh = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try fh.seek(toOffset: UInt64(wrapper.position))
        try fh.write(contentsOf: log[wrapper.position..<valueEnd])
        try fh.close()

        // SimpleConsumer: from offset 0 it delivers 0-4 (or fails naming the wrapper); the fetch that
        // starts at the corrupt wrapper fails, naming topic, partition and the wrapper's offset.
        let tp = TopicPartition(topic, 0)
        let sc = try await SimpleConsumer.connect(host: "127.0.0.1", port: c.broker.port, clientId: "corrupt-it")
        var delivered: [ConsumedMessage] = []
        var next: Int64 = 0
        var failure: Error?
        for _ in 0..<5 {
            do {
                let f = try await sc.fetch(tp, offset: next)
                delivered += f.messages
                next = f.nextOffset
            } catch {
                failure = error
                break
            }
        }
        XCTAssertEqual(delivered.map(\.offset), [0, 1, 2, 3, 4], "messages before the corrupt wrapper")
        let message = "\(failure.map { "\($0)" } ?? "no error")"
        print("SimpleConsumer: \(message)")
        XCTAssertTrue(message.contains(topic), message)
        XCTAssertTrue(message.contains("partition 0") || message.contains("[\(topic),0]"), message)
        XCTAssertTrue(message.contains("offset 9"), "the error must name the corrupt message's offset: \(message)")
        XCTAssertTrue(message.lowercased().contains("gzip"), message)
        // Past the corrupt wrapper everything reads again.
        let f = try await sc.fetch(tp, offset: 10)
        XCTAssertEqual(f.messages.map(\.offset), Array(10...14))
        XCTAssertEqual(f.messages.map { Msg(key: $0.key, value: $0.value) }, Array(all[10...]))
        await sc.close()

        // The decoder itself names the position of the bad wrapper.
        XCTAssertThrowsError(try MessageSetDecoder.decode(Array(log[wrapper.position..<valueEnd]))) { error in
            XCTAssertTrue("\(error)".contains("gzip"), "\(error)")
        }

        // The console consumer prints 0-4 and stops with the error, instead of retrying forever.
        let r = try Project.run("kafka-console-consumer.sh",
                                ["--zookeeper", c.zkConnect, "--topic", topic, "--from-beginning",
                                 "--max-messages", "15", "--property", "print.key=true"], timeout: 60)
        XCTAssertNotEqual(r.exitCode, 0, r.summary)
        XCTAssertEqual(r.stdout, all[0..<5].map { "\(String(decoding: $0.key!, as: UTF8.self))\t\(String(decoding: $0.value!, as: UTF8.self))\n" }.joined(),
                       r.summary)
        XCTAssertTrue(r.stderr.contains(topic) && r.stderr.contains("offset 9"), r.summary)
        print("console consumer: exit \(r.exitCode), stderr: \(r.stderr)")
    }

    // MARK: cases

    struct Msg: Equatable {
        var key: [UInt8]?
        var value: [UInt8]?
    }

    enum Expect: CustomStringConvertible {
        /// Must succeed and store exactly these messages.
        case accepted([Msg])
        /// Must fail with one of these codes.
        case rejected(Set<Int16>)
        /// An error code from `anyError`, or a success whose data reads back.
        case either

        static let anyError: Set<Int16> = [2, 4, 10, 18, -1]

        func allows(_ code: Int16) -> Bool {
            switch self {
            case .accepted: return false
            case .rejected(let codes): return codes.contains(code)
            case .either: return Self.anyError.contains(code)
            }
        }

        var description: String {
            switch self {
            case .accepted(let m): return "success with \(m.count) messages"
            case .rejected(let codes): return "error \(codes.sorted().map(String.init).joined(separator: " or "))"
            case .either: return "an error or a readable success"
            }
        }
    }

    struct FuzzCase {
        var kind: String
        var set: [UInt8]
        var expect: Expect
    }

    /// How a set of messages is encoded: plain entries, or one wrapper.
    enum Enc: CaseIterable, CustomStringConvertible {
        case plain, gzip, xerial, xerial1k, rawSnappy
        static let compressed: [Enc] = [.gzip, .xerial, .xerial1k, .rawSnappy]
        var attributes: UInt8 { switch self { case .plain: 0; case .gzip: 1; default: 2 } }
        var description: String {
            switch self {
            case .plain: "plain"; case .gzip: "gzip"; case .xerial: "snappy-xerial"
            case .xerial1k: "snappy-xerial-1k"; case .rawSnappy: "snappy-raw"
            }
        }
    }

    static func makeCase(_ rng: inout SeededRandom) -> FuzzCase {
        let roll = Int(rng.next() % 1000)
        let enc = Enc.compressed[Int(rng.next() % 4)]
        let msgs = randomMessages(&rng)
        let inner = innerSet(msgs)
        let good = wrapper(inner, enc, offset: Int64(msgs.count - 1))
        switch roll {
        case 0..<100:
            // 1-3 wrappers of any codec, sometimes with plain messages between them.
            var set: [UInt8] = []
            var want: [Msg] = []
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                let m = randomMessages(&rng)
                let e: Enc = rng.next() % 5 == 0 ? .plain : Enc.compressed[Int(rng.next() % 4)]
                set += encode(m, e)
                want += m
            }
            return FuzzCase(kind: "valid wrappers", set: set, expect: .accepted(want))
        case 100..<140:
            // Wrappers inside wrappers (0.8.2 flattens them).
            let m2 = randomMessages(&rng)
            var middle = encode(msgs, enc) + encode(m2, Enc.compressed[Int(rng.next() % 4)])
            var want = msgs + m2
            if rng.next() % 2 == 0 {
                let m3 = randomMessages(&rng)
                middle = encode(m3, .plain) + middle
                want = m3 + want
            }
            var set = wrapper(middle, Enc.compressed[Int(rng.next() % 4)], offset: 0)
            if rng.next() % 3 == 0 { set = wrapper(set, Enc.compressed[Int(rng.next() % 4)], offset: 0) }
            return FuzzCase(kind: "nested wrappers", set: set, expect: .accepted(want))
        case 140..<180:
            // Any offsets at all in the wrapper and inner entries: the broker assigns its own.
            let inner2 = innerSet(msgs, offsets: msgs.map { _ in Int64(bitPattern: rng.next()) })
            let set = wrapper(inner2, enc, offset: Int64(bitPattern: rng.next()))
            return FuzzCase(kind: "garbage offsets", set: set, expect: .accepted(msgs))
        case 180..<190:
            // A key on the wrapper is ignored.
            let set = entry(offset: 0, key: Array("wrapper key".utf8), value: compress(inner, enc), attributes: enc.attributes)
            return FuzzCase(kind: "keyed wrapper", set: set, expect: .accepted(msgs))
        case 190..<200:
            let set = wrapper([], enc, offset: 0)
            return FuzzCase(kind: "empty inner set", set: set, expect: .accepted([]))
        case 200..<300:
            // 1-3 distinct bit flips in the CRC-protected bytes, CRC not fixed.
            var set = good
            var positions = Set<Int>()
            while positions.count < 1 + Int(rng.next() % 3) { positions.insert(12 * 8 + Int(rng.next() % UInt64((set.count - 12) * 8))) }
            for bit in positions { set[bit / 8] ^= UInt8(1 << (bit % 8)) }
            return FuzzCase(kind: "bit flips, CRC stale", set: set, expect: .rejected([2]))
        case 300..<420:
            // Bit flips in the compressed payload, CRC recomputed: the codec must notice, or the result must read.
            var value = compress(inner, enc)
            for _ in 0..<(1 + Int(rng.next() % 8)) {
                let bit = Int(rng.next() % UInt64(value.count * 8))
                value[bit / 8] ^= UInt8(1 << (bit % 8))
            }
            return FuzzCase(kind: "payload bit flips", set: entry(offset: 0, key: nil, value: value, attributes: enc.attributes), expect: .either)
        case 420..<480:
            // Random bytes overwritten in the payload, CRC recomputed.
            var value = compress(inner, enc)
            let start = Int(rng.next() % UInt64(value.count))
            for i in start..<min(value.count, start + 1 + Int(rng.next() % 16)) { value[i] = UInt8(truncatingIfNeeded: rng.next()) }
            return FuzzCase(kind: "payload overwritten", set: entry(offset: 0, key: nil, value: value, attributes: enc.attributes), expect: .either)
        case 480..<560:
            // Truncated payload, CRC recomputed.
            let value = compress(inner, enc)
            let cut = Array(value.prefix(Int(rng.next() % UInt64(value.count))))
            return FuzzCase(kind: "payload truncated", set: entry(offset: 0, key: nil, value: cut, attributes: enc.attributes), expect: .either)
        case 560..<610:
            // The message set cut anywhere: complete entries are appended, the partial tail is dropped.
            var set: [UInt8] = []
            var parts: [(end: Int, msgs: [Msg])] = []
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                let m = randomMessages(&rng)
                if rng.next() % 4 == 0 {
                    for one in m {   // plain: one entry per message
                        set += encode([one], .plain)
                        parts.append((set.count, [one]))
                    }
                } else {
                    set += encode(m, Enc.compressed[Int(rng.next() % 4)])
                    parts.append((set.count, m))
                }
            }
            let cut = 1 + Int(rng.next() % UInt64(set.count))
            let want = parts.filter { $0.end <= cut }.flatMap(\.msgs)
            return FuzzCase(kind: "set truncated", set: Array(set.prefix(cut)), expect: .accepted(want))
        case 610..<660:
            // Wrong key or value length fields in the wrapper, CRC recomputed.
            var set = good
            let field = rng.next() % 2 == 0 ? 18 : 22   // key length, value length (key is null)
            let bad: Int32 = switch rng.next() % 4 {
            case 0: Int32(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
            case 1: -2 - Int32(rng.next() % 100)
            case 2: Int32(set.count) + Int32(rng.next() % 100)
            default: field == 22 ? Int32(set.count - 26) - 1 - Int32(rng.next() % 8) : Int32(rng.next() % 8)
            }
            put32(&set, field, bad)
            fixCRC(&set, at: 0)
            return FuzzCase(kind: "wrong wrapper lengths", set: set, expect: .either)
        case 660..<700:
            // A wrong message_size in the entry header (CRC not fixable): smaller, larger, tiny.
            var set = good
            let size = Int32(set.count - 12)
            let bad: Int32 = switch rng.next() % 3 {
            case 0: Int32(rng.next() % 14)
            case 1: max(14, size - 1 - Int32(rng.next() % UInt64(max(1, size - 14))))
            default: size + 1 + Int32(rng.next() % 1000)
            }
            put32(&set, 8, bad)
            let expect: Expect = bad < 14 ? .rejected([2]) : (bad > size ? .accepted([]) : .rejected([2]))
            return FuzzCase(kind: "wrong message size", set: set, expect: expect)
        case 700..<760:
            // One inner message with a bad CRC.
            var inner2 = inner
            let k = Int(rng.next() % UInt64(msgs.count))
            let pos = entryPositions(inner2)[k]
            let mask = UInt32(truncatingIfNeeded: rng.next()) | 1
            put32(&inner2, pos + 12, Int32(bitPattern: get32(inner2, pos + 12) ^ mask))
            return FuzzCase(kind: "bad inner CRC", set: wrapper(inner2, enc, offset: 0), expect: .rejected([2]))
        case 760..<800:
            // An inner message_size below the minimum of 14.
            var inner2 = inner
            let pos = entryPositions(inner2)[Int(rng.next() % UInt64(msgs.count))]
            put32(&inner2, pos + 8, rng.next() % 2 == 0 ? Int32(rng.next() % 14) : -1 - Int32(rng.next() % 1000))
            return FuzzCase(kind: "inner size < 14", set: wrapper(inner2, enc, offset: 0), expect: .rejected([2]))
        case 800..<830:
            // An inner message_size running past the end: that entry and the rest are dropped (0.8.2).
            var inner2 = inner
            let k = Int(rng.next() % UInt64(msgs.count))
            let pos = entryPositions(inner2)[k]
            put32(&inner2, pos + 8, Int32(inner2.count - pos - 12 + 1 + Int(rng.next() % 1000)))
            return FuzzCase(kind: "inner size too large", set: wrapper(inner2, enc, offset: 0), expect: .accepted(Array(msgs[0..<k])))
        case 830..<860:
            // An inner message_size inside the set but wrong, or inner key/value lengths wrong with the inner CRC fixed.
            var inner2 = inner
            let pos = entryPositions(inner2)[Int(rng.next() % UInt64(msgs.count))]
            if rng.next() % 2 == 0 {
                let size = get32(inner2, pos + 8)
                put32(&inner2, pos + 8, Int32(bitPattern: max(14, size &+ UInt32(truncatingIfNeeded: Int32(rng.next() % 9) - 4))))
            } else {
                put32(&inner2, pos + 12 + 6 + (rng.next() % 2 == 0 ? 0 : 4 + max(0, Int(Int32(bitPattern: get32(inner2, pos + 18))))),
                      Int32(truncatingIfNeeded: Int64(rng.next() % 64) - 32))
                fixCRC(&inner2, at: pos)
            }
            return FuzzCase(kind: "wrong inner lengths", set: wrapper(inner2, enc, offset: 0), expect: .either)
        case 860..<875:
            // Inner magic byte changed (inner CRC fixed).
            var inner2 = inner
            let pos = entryPositions(inner2)[Int(rng.next() % UInt64(msgs.count))]
            inner2[pos + 16] = UInt8(1 + rng.next() % 255)
            fixCRC(&inner2, at: pos)
            return FuzzCase(kind: "inner magic", set: wrapper(inner2, enc, offset: 0), expect: .rejected([2]))
        case 875..<890:
            // Wrapper magic byte changed (CRC fixed).
            var set = good
            set[16] = UInt8(1 + rng.next() % 255)
            fixCRC(&set, at: 0)
            return FuzzCase(kind: "wrapper magic", set: set, expect: .either)
        case 890..<940:
            // Random bytes as a gzip / snappy / xerial / lz4 payload.
            let n = Int(rng.next() % 3000)
            var value = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            var attributes = UInt8(1 + rng.next() % 3)
            switch rng.next() % 4 {
            case 0: value = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 0xff] + value; attributes = 1
            case 1:
                var x = Compression.xerialMagic + [0, 0, 0, 1, 0, 0, 0, 1]
                for _ in 0..<(1 + rng.next() % 3) {
                    let len = Int(rng.next() % 600)
                    appendBE32(&x, rng.next() % 8 == 0 ? Int32(truncatingIfNeeded: rng.next()) : Int32(len))
                    x += (0..<len).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                }
                value = x
                attributes = 2
            default: break
            }
            return FuzzCase(kind: "random payload", set: entry(offset: 0, key: nil, value: value, attributes: attributes), expect: .either)
        case 940..<960:
            // A well-formed compressed stream of random bytes: the inner "message set" is garbage.
            let garbage = (0..<Int(12 + rng.next() % 500)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            return FuzzCase(kind: "compressed garbage", set: wrapper(garbage, enc, offset: 0), expect: .either)
        case 960..<975:
            // Unknown codecs 4-7, on the wrapper or on an inner message.
            let codec = UInt8(4 + rng.next() % 4)
            if rng.next() % 2 == 0 {
                let set = entry(offset: 0, key: nil, value: compress(inner, enc), attributes: codec)
                return FuzzCase(kind: "unknown codec", set: set, expect: .rejected([-1]))
            }
            var inner2 = inner
            let pos = entryPositions(inner2)[Int(rng.next() % UInt64(msgs.count))]
            inner2[pos + 17] = codec
            fixCRC(&inner2, at: pos)
            return FuzzCase(kind: "unknown inner codec", set: wrapper(inner2, enc, offset: 0), expect: .rejected([-1]))
        case 975..<983:
            // Null or empty wrapper value.
            let null = rng.next() % 2 == 0
            let set = entry(offset: 0, key: nil, value: null ? nil : [], attributes: enc.attributes)
            return FuzzCase(kind: "null/empty payload", set: set, expect: .rejected([2, -1]))
        case 983..<991:
            // A valid wrapper followed by a broken one: nothing of the set is appended.
            var bad = wrapper(innerSet(randomMessages(&rng)), Enc.compressed[Int(rng.next() % 4)], offset: 0)
            bad[12 + Int(rng.next() % UInt64(bad.count - 12))] ^= UInt8(1 << (rng.next() % 8))
            return FuzzCase(kind: "valid then broken", set: good + bad, expect: .rejected([2]))
        case 991..<995:
            // Larger than message.max.bytes (incompressible).
            let big = (0..<(maxMessageBytes + Int(rng.next() % 20_000))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let set = wrapper(innerSet([Msg(key: nil, value: big)]), enc, offset: 0)
            return FuzzCase(kind: "too large", set: set, expect: .rejected([10]))
        default:
            // Decompression bombs: megabytes of zeros (inner message_size 0).
            let zeros = [UInt8](repeating: 0, count: (1 + Int(rng.next() % 4)) << 20)
            return FuzzCase(kind: "zeros bomb", set: wrapper(zeros, enc, offset: 0), expect: .rejected([2, 10]))
        }
    }

    // MARK: encoding helpers (independent of the broker's code, except the compressors)

    static func words(_ rng: inout SeededRandom, _ n: Int) -> String {
        let w = ["alpha", "beta", "gamma", "delta", "kafka", "snappy", "gzip", "ñandú", "€", "log", "offset"]
        return (0..<n).map { _ in w[Int(rng.next() % UInt64(w.count))] }.joined(separator: " ")
    }

    static func randomMessages(_ rng: inout SeededRandom) -> [Msg] {
        let n = rng.next() % 10 == 0 ? 20 + Int(rng.next() % 80) : 1 + Int(rng.next() % 12)
        return (0..<n).map { _ in
            let key: [UInt8]? = rng.next() % 4 == 0 ? nil : Array("k\(rng.next() % 10_000)".utf8)
            let value: [UInt8]?
            switch rng.next() % 10 {
            case 0: value = nil
            case 1, 2: value = (0..<Int(rng.next() % 200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            default: value = Array(words(&rng, Int(rng.next() % 30)).utf8)
            }
            return Msg(key: key, value: value)
        }
    }

    /// One log entry: offset, size, crc, magic, attributes, key, value.
    static func entry(offset: Int64, key: [UInt8]?, value: [UInt8]?, attributes: UInt8, magic: UInt8 = 0) -> [UInt8] {
        var body = WireWriter()
        body.int8(Int8(bitPattern: magic))
        body.int8(Int8(bitPattern: attributes))
        body.bytesField(key)
        body.bytesField(value)
        return MessageSetCodec.entry(offset: offset, body: body.bytes)
    }

    /// Plain entries, offsets 0..n-1 unless given.
    static func innerSet(_ msgs: [Msg], offsets: [Int64]? = nil) -> [UInt8] {
        var out: [UInt8] = []
        for (i, m) in msgs.enumerated() { out += entry(offset: offsets?[i] ?? Int64(i), key: m.key, value: m.value, attributes: 0) }
        return out
    }

    static func compress(_ data: [UInt8], _ enc: Enc) -> [UInt8] {
        do {
            switch enc {
            case .plain: return data
            case .gzip: return try Compression.compress(data, codec: .gzip)
            case .xerial: return try Compression.compress(data, codec: .snappy)
            case .xerial1k: return try data.withUnsafeBytes { try Compression.snappyCompressXerial($0, blockSize: 1024) }
            case .rawSnappy: return try data.withUnsafeBytes { try Compression.snappyCompressRaw($0) }
            }
        } catch {
            fatalError("compressing \(data.count) bytes with \(enc): \(error)")
        }
    }

    static func wrapper(_ inner: [UInt8], _ enc: Enc, offset: Int64) -> [UInt8] {
        entry(offset: offset, key: nil, value: compress(inner, enc), attributes: enc.attributes)
    }

    /// `msgs` as plain entries or as one wrapper (inner offsets 0..n-1, wrapper offset n-1, as Java does).
    static func encode(_ msgs: [Msg], _ enc: Enc) -> [UInt8] {
        enc == .plain ? innerSet(msgs) : wrapper(innerSet(msgs), enc, offset: Int64(msgs.count - 1))
    }

    static func entryPositions(_ set: [UInt8]) -> [Int] {
        var out: [Int] = []
        var pos = 0
        while set.count - pos >= 12 {
            out.append(pos)
            pos += 12 + Int(Int32(bitPattern: get32(set, pos + 8)))
        }
        return out
    }

    static func get32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
    }

    static func put32(_ b: inout [UInt8], _ at: Int, _ v: Int32) {
        let u = UInt32(bitPattern: v)
        b[at] = UInt8(u >> 24); b[at + 1] = UInt8(u >> 16 & 0xFF); b[at + 2] = UInt8(u >> 8 & 0xFF); b[at + 3] = UInt8(u & 0xFF)
    }

    static func appendBE32(_ b: inout [UInt8], _ v: Int32) {
        b += [0, 0, 0, 0]
        put32(&b, b.count - 4, v)
    }

    /// Recomputes the CRC of the entry at `pos` over its current message_size.
    static func fixCRC(_ b: inout [UInt8], at pos: Int) {
        let size = Int(Int32(bitPattern: get32(b, pos + 8)))
        let end = min(b.count, pos + 12 + max(size, 4))
        put32(&b, pos + 12, Int32(bitPattern: CRC32.checksum(Array(b[(pos + 16)..<max(pos + 16, end)]))))
    }

    // MARK: wire

    /// One v0 Produce (acks 1) of `set` to partition 0: (error, base offset).
    static func produce(_ conn: WireConnection, topic: String, set: [UInt8]) throws -> (error: Int16, offset: Int64) {
        let cid = try conn.sendRequest(apiKey: 0, body: WireConnection.produceBody(topic: topic, partition: 0, messageSet: set,
                                                                                 acks: 1, timeoutMs: 10_000))
        let response = try conn.receiveResponse()
        guard response.correlationId == cid else { throw WireError("correlation id \(response.correlationId) for request \(cid)") }
        var r = response.body
        guard try r.int32() == 1, try r.string() == topic, try r.int32() == 1, try r.int32() == 0 else {
            throw WireError("produce response does not echo \(topic)/0")
        }
        return (try r.int16(), try r.int64())
    }

    static func latestOffset(_ conn: WireConnection, topic: String) throws -> Int64 {
        let r = try conn.offsets(topic: topic, time: -1)
        guard r.error == 0, let o = r.offsets.first else { throw WireError("offsets of \(topic): error \(r.error)") }
        return o
    }
}
