import Foundation
import XCTest
import KafkaLog
import KafkaProtocol

final class RecoveryTests: LogTestCase {
    let tp = TopicPartition("t", 0)
    var dir: String { tmp + "/t-0" }

    private func fill(_ n: Int, cfg: LogConfig) throws -> Log {
        let log = try Log(directory: dir, topicPartition: tp, config: cfg, logger: logger)
        for i in 0..<n { _ = try log.append(set(["value-\(i)"])) }
        return log
    }

    private func withFile(_ path: String, _ body: (Int32) -> Void) {
        let fd = open(path, O_RDWR)
        body(fd)
        close(fd)
    }

    func testTornTailIsTruncated() throws {
        let cfg = config { $0.indexIntervalBytes = 50 }
        let log = try fill(50, cfg: cfg)
        let size = log.size
        log.flush()
        // simulate a crash: no close, a torn partial write at the tail
        let path = dir + "/" + segmentFileName(baseOffset: 0, suffix: ".log")
        withFile(path) { fd in
            var junk: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 50, 0, 0, 0, 40, 1, 2, 3]
            _ = pwrite(fd, &junk, junk.count, off_t(size))
        }
        let log2 = try Log(directory: dir, topicPartition: tp, config: cfg, recoveryPoint: 0, cleanShutdown: false, logger: logger)
        XCTAssertEqual(log2.logEndOffset, 50)
        XCTAssertEqual(log2.size, size)
        XCTAssertEqual(try readAll(log2).count, 50)
        XCTAssertEqual(try log2.append(set(["after"])).firstOffset, 50)
        XCTAssertTrue(log2.segments[0].index.sanityCheck(logSize: log2.segments[0].size))
    }

    func testCorruptCrcInTheMiddleTruncatesAndDeletesLaterSegments() throws {
        let cfg = config { $0.segmentBytes = 400; $0.indexIntervalBytes = 50 }
        let log = try fill(60, cfg: cfg)
        let bases = log.segmentBaseOffsets
        XCTAssertGreaterThan(bases.count, 3)
        // corrupt a byte of the value of message (bases[1] + 2)
        let seg = log.segments[1]
        let target = bases[1] + 2
        let pos = seg.translateOffset(target)!.position
        let path = dir + "/" + segmentFileName(baseOffset: bases[1], suffix: ".log")
        withFile(path) { fd in
            var b: UInt8 = 0
            pread(fd, &b, 1, off_t(pos + 30))
            b ^= 0xff
            pwrite(fd, &b, 1, off_t(pos + 30))
        }
        let log2 = try Log(directory: dir, topicPartition: tp, config: cfg, recoveryPoint: bases[1], cleanShutdown: false, logger: logger)
        XCTAssertEqual(log2.logEndOffset, target)
        XCTAssertEqual(log2.segmentBaseOffsets, Array(bases[0...1]))
        XCTAssertEqual(try readAll(log2).map(\.offset), Array(0..<target))
        // later segment files are gone (or queued for deletion)
        let logs = files(dir).filter { $0.hasSuffix(".log") }
        XCTAssertEqual(logs.count, 2)
        XCTAssertEqual(try log2.append(set(["x"])).firstOffset, target)
    }

    func testCleanShutdownSkipsRecovery() throws {
        let cfg = config { $0.indexIntervalBytes = 50 }
        let log = try fill(20, cfg: cfg)
        log.close()
        // corruption that a recovery would find; with the clean marker it is not rescanned
        let path = dir + "/" + segmentFileName(baseOffset: 0, suffix: ".log")
        let size = log.size
        withFile(path) { fd in var b: UInt8 = 0x55; pwrite(fd, &b, 1, off_t(size - 1)) }
        let log2 = try Log(directory: dir, topicPartition: tp, config: cfg, recoveryPoint: 20, cleanShutdown: true, logger: logger)
        XCTAssertEqual(log2.logEndOffset, 20)
        XCTAssertEqual(log2.recoveryPoint, 20)
    }

    func testMissingAndCorruptIndexIsRebuilt() throws {
        let cfg = config { $0.segmentBytes = 600; $0.indexIntervalBytes = 40 }
        let log = try fill(60, cfg: cfg)
        let bases = log.segmentBaseOffsets
        let entries0 = log.segments[0].index.entryCount
        XCTAssertGreaterThan(entries0, 2)
        log.close()
        try FileManager.default.removeItem(atPath: dir + "/" + segmentFileName(baseOffset: 0, suffix: ".index"))
        // garbage index for segment 1
        try Data([0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1]).write(to: URL(fileURLWithPath: dir + "/" + segmentFileName(baseOffset: bases[1], suffix: ".index")))
        let log2 = try Log(directory: dir, topicPartition: tp, config: cfg, recoveryPoint: 60, cleanShutdown: true, logger: logger)
        XCTAssertEqual(log2.segments[0].index.entryCount, entries0)
        XCTAssertTrue(log2.segments[1].index.sanityCheck(logSize: log2.segments[1].size))
        XCTAssertEqual(log2.logEndOffset, 60)
        XCTAssertEqual(try readAll(log2).count, 60)
        for o in Int64(0)..<60 { XCTAssertEqual(try offsets(log2.readBytes(startOffset: o, maxBytes: 40)).first, o) }
    }

    func testUncleanRestartWithPreallocatedIndex() throws {
        let cfg = config { $0.indexIntervalBytes = 30 }
        var log: Log? = try fill(100, cfg: cfg)
        log = nil   // no close: the active index stays preallocated at 10 MiB
        XCTAssertEqual(FS.fileSize(dir + "/" + segmentFileName(baseOffset: 0, suffix: ".index")), 10_485_760)
        let log2 = try Log(directory: dir, topicPartition: tp, config: cfg, recoveryPoint: 0, cleanShutdown: false, logger: logger)
        XCTAssertEqual(log2.logEndOffset, 100)
        XCTAssertEqual(try log2.append(set(["x"])).firstOffset, 100)
        _ = log
    }

    func testTemporaryFilesAtLoad() throws {
        let cfg = LogConfig()
        let log = try fill(5, cfg: cfg)
        log.close()
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/00000000000000000099.log.deleted"))
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/00000000000000000099.log.cleaned"))
        try Data([1]).write(to: URL(fileURLWithPath: dir + "/00000000000000000077.index"))   // orphan
        let log2 = try Log(directory: dir, topicPartition: tp, config: cfg, cleanShutdown: true, logger: logger)
        XCTAssertEqual(files(dir), ["00000000000000000000.index", "00000000000000000000.log"])
        XCTAssertEqual(log2.logEndOffset, 5)
    }
}
