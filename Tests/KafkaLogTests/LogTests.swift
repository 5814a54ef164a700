import Foundation
import XCTest
import KafkaLog
import KafkaProtocol
import Synchronization

final class LogTests: LogTestCase {
    func testAppendAndReadAcrossSegmentRolls() throws {
        let cfg = config { $0.segmentBytes = 300; $0.indexIntervalBytes = 1 }
        let log = try Log(directory: tmp + "/t-0", topicPartition: TopicPartition("t", 0), config: cfg, logger: logger)
        var expected: [String] = []
        for i in 0..<40 {
            let vs = ["m\(i)a", "m\(i)b"]
            let info = try log.append(set(vs))
            XCTAssertEqual(info.firstOffset, Int64(2 * i))
            XCTAssertEqual(info.lastOffset, Int64(2 * i + 1))
            XCTAssertEqual(info.messageCount, 2)
            expected += vs
        }
        XCTAssertEqual(log.logEndOffset, 80)
        XCTAssertGreaterThan(log.segmentCount, 5)
        let all = try readAll(log)
        XCTAssertEqual(all.map(\.offset), Array(0..<80))
        XCTAssertEqual(all.map { String(decoding: $0.value!, as: UTF8.self) }, expected)
        // every offset can be the start of a fetch
        for o in Int64(0)..<80 {
            let b = try log.readBytes(startOffset: o, maxBytes: 1000)
            XCTAssertEqual(try offsets(b).first, o)
        }
        // segment files are named by base offset
        let names = files(tmp + "/t-0").filter { $0.hasSuffix(".log") }
        XCTAssertEqual(names.count, log.segmentCount)
        XCTAssertEqual(names.first, "00000000000000000000.log")
        XCTAssertTrue(names.allSatisfy { $0.count == 24 })
        XCTAssertEqual(names.map { Int64($0.prefix(20))! }, log.segmentBaseOffsets)
    }

    func testReadEdgesAndOutOfRange() throws {
        let log = try Log(directory: tmp + "/t-0", topicPartition: TopicPartition("t", 0), config: LogConfig(), logger: logger)
        XCTAssertEqual(try log.read(startOffset: 0, maxBytes: 100).length, 0)
        XCTAssertEqual(try log.read(startOffset: 0, maxBytes: 100).fileDescriptor, -1)
        XCTAssertThrowsError(try log.read(startOffset: 1, maxBytes: 100)) { e in
            XCTAssertEqual((e as? LogError)?.errorCode, .offsetOutOfRange)
        }
        _ = try log.append(set(["a", "b", "c"]))
        XCTAssertThrowsError(try log.read(startOffset: 4, maxBytes: 100))
        XCTAssertThrowsError(try log.read(startOffset: -1, maxBytes: 100))
        XCTAssertEqual(try log.readBytes(startOffset: 3, maxBytes: 100), [])
        // partial entry at the end of the byte window
        let partial = try log.readBytes(startOffset: 0, maxBytes: 40)
        XCTAssertEqual(partial.count, 40)
        XCTAssertEqual(try values(partial), ["a"])
        // maxOffset is an exclusive bound at an entry boundary
        XCTAssertEqual(try values(log.readBytes(startOffset: 0, maxBytes: 1000, maxOffset: 2)), ["a", "b"])
        XCTAssertEqual(try log.readBytes(startOffset: 1, maxBytes: 1000, maxOffset: 1), [])
        // the slice's descriptor reads the same bytes
        let slice = try log.read(startOffset: 1, maxBytes: 1000)
        XCTAssertGreaterThanOrEqual(slice.fileDescriptor, 0)
        var buf = [UInt8](repeating: 0, count: slice.length)
        XCTAssertEqual(buf.withUnsafeMutableBytes { pread(slice.fileDescriptor, $0.baseAddress, slice.length, off_t(slice.position)) }, slice.length)
        XCTAssertEqual(try values(buf), ["b", "c"])
    }

    func testCompressedAppendReadsWholeWrapperFromInside() throws {
        let log = try Log(directory: tmp + "/t-0", topicPartition: TopicPartition("t", 0), config: LogConfig(), logger: logger)
        _ = try log.append(set(["x"]))
        let info = try log.append(set(["a", "b", "c"], codec: .gzip))
        XCTAssertEqual(info.firstOffset, 1)
        XCTAssertEqual(info.lastOffset, 3)
        XCTAssertEqual(info.messageCount, 3)
        XCTAssertEqual(log.logEndOffset, 4)
        let b = try log.readBytes(startOffset: 2, maxBytes: 10000)
        XCTAssertEqual(try offsets(b), [1, 2, 3])   // whole wrapper; client drops offset 1
        XCTAssertEqual(try MessageSetDecoder.decode(b, deep: false).map(\.offset), [3])
    }

    func testIndexLookupsUseSparseEntries() throws {
        let cfg = config { $0.indexIntervalBytes = 100 }
        let log = try Log(directory: tmp + "/t-0", topicPartition: TopicPartition("t", 0), config: cfg, logger: logger)
        for i in 0..<200 { _ = try log.append(set(["value-\(i)"])) }
        let seg = log.segments[0]
        XCTAssertGreaterThan(seg.index.entryCount, 10)
        var prev: Int64 = -1
        for i in 0..<seg.index.entryCount {
            let e = seg.index.entry(i)
            XCTAssertGreaterThan(e.offset, prev)
            prev = e.offset
            // the position holds exactly that offset
            XCTAssertEqual(seg.translateOffset(e.offset)?.position, e.position)
        }
        for o in stride(from: Int64(0), to: 200, by: 7) {
            XCTAssertLessThanOrEqual(seg.index.lookup(o).offset, o)
            XCTAssertEqual(try offsets(log.readBytes(startOffset: o, maxBytes: 60)).first, o)
        }
    }

    /// One index entry per large batch, message sizes from 30 B to 20 KB mixed: the header scan
    /// (which reads headers far apart one by one) finds every offset where a walk of the file does.
    func testOffsetTranslationOverLargeAndSmallMessagesMixed() throws {
        let log = try Log(directory: tmp + "/t-0", topicPartition: TopicPartition("t", 0), config: LogConfig(), logger: logger)
        let sizes = [10_000, 30, 30, 20_000, 5_000, 30, 4_100, 10_000, 10_000, 200]
        for round in 0..<4 {
            _ = try log.append(set(sizes.enumerated().map { i, n in String(repeating: Character(UnicodeScalar(UInt8(97 + (i + round) % 26))), count: n) }))
        }
        let seg = log.segments[0]
        let size = Int(seg.size)
        let file = try log.readBytes(startOffset: 0, maxBytes: size)
        XCTAssertEqual(file.count, size)
        var expected: [(offset: Int64, position: Int)] = []
        var pos = 0
        while pos + 12 <= file.count {
            let o = file[pos..<pos + 8].reduce(Int64(0)) { $0 << 8 | Int64($1) }
            let n = file[pos + 8..<pos + 12].reduce(0) { $0 << 8 | Int($1) }
            expected.append((o, pos))
            pos += 12 + n
        }
        XCTAssertEqual(expected.count, 4 * sizes.count)
        for e in expected {
            XCTAssertEqual(seg.translateOffset(e.offset)?.position, e.position, "offset \(e.offset)")
            let from = try offsets(log.readBytes(startOffset: e.offset, maxBytes: 30_000)).first
            XCTAssertEqual(from, e.offset)
        }
        XCTAssertNil(seg.translateOffset(Int64(expected.count)))
        XCTAssertEqual(log.logEndOffset, Int64(expected.count))
    }

    func testRestartAfterCleanCloseContinuesOffsets() throws {
        let cfg = config { $0.segmentBytes = 500 }
        var log: Log? = try Log(directory: tmp + "/t-0", topicPartition: TopicPartition("t", 0), config: cfg, logger: logger)
        for i in 0..<30 { _ = try log!.append(set(["v\(i)"])) }
        let segs = log!.segmentCount
        log!.close()
        log = nil
        // index files trimmed to their entries
        for f in files(tmp + "/t-0") where f.hasSuffix(".index") {
            XCTAssertEqual((try FileManager.default.attributesOfItem(atPath: tmp + "/t-0/" + f)[.size] as! NSNumber).intValue % 8, 0)
            XCTAssertLessThan((try FileManager.default.attributesOfItem(atPath: tmp + "/t-0/" + f)[.size] as! NSNumber).intValue, 1000)
        }
        let log2 = try Log(directory: tmp + "/t-0", topicPartition: TopicPartition("t", 0), config: cfg,
                           recoveryPoint: 30, cleanShutdown: true, logger: logger)
        XCTAssertEqual(log2.logEndOffset, 30)
        XCTAssertEqual(log2.segmentCount, segs)
        XCTAssertEqual(try log2.append(set(["next"])).firstOffset, 30)
        XCTAssertEqual(try readAll(log2).map { String(decoding: $0.value!, as: UTF8.self) }, (0..<30).map { "v\($0)" } + ["next"])
    }

    func testOffsetsBefore() throws {
        let cfg = config { $0.segmentBytes = 200 }
        let log = try Log(directory: tmp + "/t-0", topicPartition: TopicPartition("t", 0), config: cfg, logger: logger)
        XCTAssertEqual(log.offsetsBefore(timestamp: -1, maxNumOffsets: 10), [0])
        XCTAssertEqual(log.offsetsBefore(timestamp: -2, maxNumOffsets: 10), [0])
        for i in 0..<20 { _ = try log.append(set(["value-\(i)-xxxxxxxxxx"])) }
        let bases = log.segmentBaseOffsets
        XCTAssertGreaterThan(bases.count, 2)
        XCTAssertEqual(log.offsetsBefore(timestamp: -1, maxNumOffsets: 1), [20])
        XCTAssertEqual(log.offsetsBefore(timestamp: -1, maxNumOffsets: 100), ([20] + bases.reversed()))
        XCTAssertEqual(log.offsetsBefore(timestamp: -2, maxNumOffsets: 100), [0])
        XCTAssertEqual(log.offsetsBefore(timestamp: -1, maxNumOffsets: 0), [])
        // by time: make the first two segments old
        let dir = tmp + "/t-0/"
        FS.setMtime(path: dir + segmentFileName(baseOffset: bases[0], suffix: ".log"), ms: 1_000_000)
        FS.setMtime(path: dir + segmentFileName(baseOffset: bases[1], suffix: ".log"), ms: 2_000_000)
        XCTAssertEqual(log.offsetsBefore(timestamp: 1_500_000, maxNumOffsets: 10), [bases[0]])
        XCTAssertEqual(log.offsetsBefore(timestamp: 2_500_000, maxNumOffsets: 10), [bases[1], bases[0]])
        XCTAssertEqual(log.offsetsBefore(timestamp: 500_000, maxNumOffsets: 10), [])
    }

    func testInvalidSetsAreRejectedWithCodes() throws {
        let cfg = config { $0.maxMessageBytes = 100; $0.segmentBytes = 1000 }
        let log = try Log(directory: tmp + "/t-0", topicPartition: TopicPartition("t", 0), config: cfg, logger: logger)
        var bad = set(["abc"])
        bad[bad.count - 1] ^= 0xff
        XCTAssertThrowsError(try log.append(bad)) { XCTAssertEqual(($0 as? LogError)?.errorCode, .invalidMessage) }
        XCTAssertThrowsError(try log.append(set([String(repeating: "x", count: 200)]))) {
            XCTAssertEqual(($0 as? LogError)?.errorCode, .messageSizeTooLarge)
        }
        XCTAssertThrowsError(try log.append(set((0..<30).map { "message-\($0)-abcdefgh" }))) {
            XCTAssertEqual(($0 as? LogError)?.errorCode, .messageSetSizeTooLarge)
        }
        XCTAssertEqual(log.logEndOffset, 0)
        XCTAssertEqual(try log.append([]).firstOffset, -1)
    }

    func testFollowerAppendAndTruncate() throws {
        let cfg = config { $0.segmentBytes = 200 }
        let log = try Log(directory: tmp + "/t-0", topicPartition: TopicPartition("t", 0), config: cfg, logger: logger)
        let leader = try MessageSetBuilder.build((0..<10).map { (nil, Array("value-\($0)".utf8)) }, firstOffset: 0)
        let part1 = try MessageSetBuilder.build((0..<5).map { (nil, Array("value-\($0)".utf8)) }, firstOffset: 0)
        XCTAssertEqual(try log.append(part1, assignOffsets: false).lastOffset, 4)
        XCTAssertThrowsError(try log.append(part1, assignOffsets: false))
        for i in 5..<20 {
            _ = try log.append(try MessageSetBuilder.build([(nil, Array("value-\(i)".utf8))], firstOffset: Int64(i)), assignOffsets: false)
        }
        _ = leader
        XCTAssertEqual(log.logEndOffset, 20)
        let segsBefore = log.segmentCount
        XCTAssertGreaterThan(segsBefore, 2)
        try log.truncate(to: 7)
        XCTAssertEqual(log.logEndOffset, 7)
        XCTAssertLessThan(log.segmentCount, segsBefore)
        XCTAssertEqual(try readAll(log).map(\.offset), Array(0..<7))
        XCTAssertEqual(try log.append(set(["new"])).firstOffset, 7)
        try log.truncateFullyAndStartAt(100)
        XCTAssertEqual(log.logStartOffset, 100)
        XCTAssertEqual(log.logEndOffset, 100)
        XCTAssertEqual(try log.append(set(["z"])).firstOffset, 100)
    }

    func testConcurrentReadersDuringAppends() throws {
        let cfg = config { $0.segmentBytes = 2000; $0.indexIntervalBytes = 200 }
        let log = try Log(directory: tmp + "/t-0", topicPartition: TopicPartition("t", 0), config: cfg, logger: logger)
        let done = ManagedFlag()
        let group = DispatchGroup()
        for _ in 0..<2 {
            group.enter()
            DispatchQueue.global().async {
                defer { group.leave() }
                var next: Int64 = 0
                while !done.value || next < log.logEndOffset {
                    guard let b = try? log.readBytes(startOffset: next, maxBytes: 500), !b.isEmpty else { continue }
                    let d = (try? MessageSetDecoder.decode(b)) ?? []
                    if let l = d.last { XCTAssertEqual(d.first?.offset, next); next = l.offset + 1 }
                }
            }
        }
        for i in 0..<2000 { _ = try log.append(set(["value-\(i)"])) }
        done.set()
        group.wait()
        XCTAssertEqual(log.logEndOffset, 2000)
    }
}

final class ManagedFlag: @unchecked Sendable {
    private let v = Mutex(false)
    var value: Bool { v.withLock { $0 } }
    func set() { v.withLock { $0 = true } }
}
