import Foundation
import XCTest
import KafkaLog
import KafkaProtocol

final class RetentionTests: LogTestCase {
    let tp = TopicPartition("r", 0)

    func testRetentionBytesDeletesOldestWholeSegments() throws {
        let cfg = config { $0.segmentBytes = 300; $0.retentionBytes = 1000; $0.fileDeleteDelayMs = 0 }
        let log = try Log(directory: tmp + "/r-0", topicPartition: tp, config: cfg, logger: logger)
        for i in 0..<100 { _ = try log.append(set(["value-\(i)-abcdefghij"])) }
        let before = log.segmentCount
        let deleted = log.deleteOldSegmentsByRetention()
        XCTAssertGreaterThan(deleted, 0)
        XCTAssertEqual(log.segmentCount, before - deleted)
        // 0.8.2 semantics: delete while (size - retention.bytes) >= the oldest segment's size
        XCTAssertLessThan(log.size, 1000 + Int64(log.segments.first!.size))
        XCTAssertGreaterThanOrEqual(log.size, 1000 - 300)
        XCTAssertEqual(log.logEndOffset, 100)
        let start = log.logStartOffset
        XCTAssertGreaterThan(start, 0)
        XCTAssertEqual(log.offsetsBefore(timestamp: -2, maxNumOffsets: 1), [start])
        XCTAssertThrowsError(try log.read(startOffset: start - 1, maxBytes: 100)) {
            XCTAssertEqual(($0 as? LogError)?.errorCode, .offsetOutOfRange)
        }
        XCTAssertEqual(try readAll(log).map(\.offset), Array(start..<100))
        let logFiles = files(tmp + "/r-0").filter { $0.hasSuffix(".log") }
        XCTAssertEqual(logFiles.count, log.segmentCount)
        XCTAssertEqual(Int64(logFiles.first!.prefix(20)), start)
    }

    func testRetentionTimeRenamesToDeletedThenRemovesAfterDelay() throws {
        let cfg = config { $0.segmentBytes = 300; $0.retentionMs = 60_000; $0.fileDeleteDelayMs = 300 }
        let log = try Log(directory: tmp + "/r-0", topicPartition: tp, config: cfg, logger: logger)
        for i in 0..<40 { _ = try log.append(set(["value-\(i)-abcdefghij"])) }
        let bases = log.segmentBaseOffsets
        XCTAssertGreaterThan(bases.count, 3)
        let old = FS.nowMs() - 3_600_000
        for b in bases.prefix(2) { FS.setMtime(path: tmp + "/r-0/" + segmentFileName(baseOffset: b, suffix: ".log"), ms: old) }
        XCTAssertEqual(log.deleteOldSegmentsByRetention(), 2)
        XCTAssertEqual(log.logStartOffset, bases[2])
        XCTAssertTrue(files(tmp + "/r-0").contains(segmentFileName(baseOffset: bases[0], suffix: ".log.deleted")))
        XCTAssertTrue(files(tmp + "/r-0").contains(segmentFileName(baseOffset: bases[0], suffix: ".index.deleted")))
        Thread.sleep(forTimeInterval: 1.0)
        XCTAssertFalse(files(tmp + "/r-0").contains { $0.hasSuffix(".deleted") })
        // every segment expired, active non-empty: roll first, one empty segment remains at the LEO
        for b in log.segmentBaseOffsets { FS.setMtime(path: tmp + "/r-0/" + segmentFileName(baseOffset: b, suffix: ".log"), ms: old) }
        XCTAssertGreaterThan(log.deleteOldSegmentsByRetention(), 0)
        XCTAssertEqual(log.segmentCount, 1)
        XCTAssertEqual(log.logStartOffset, 40)
        XCTAssertEqual(log.logEndOffset, 40)
        XCTAssertEqual(try log.append(set(["again"])).firstOffset, 40)
        XCTAssertEqual(log.offsetsBefore(timestamp: -2, maxNumOffsets: 5), [40])
    }

    func testManagerRetentionSkipsCompactedLogs() throws {
        let m = try LogManager(logDirs: [tmp + "/d"], defaultConfig: config { $0.segmentBytes = 200; $0.retentionBytes = 0; $0.fileDeleteDelayMs = 0 },
                               topicOverrides: { $0 == "c" ? ["cleanup.policy": "compact"] : [:] }, logger: logger)
        let d = try m.getOrCreateLog(TopicPartition("d", 0))
        let c = try m.getOrCreateLog(TopicPartition("c", 0))
        for i in 0..<20 {
            _ = try d.append(set(["v\(i)-xxxxxxxxxxxxxxxx"]))
            _ = try c.append(set(["v\(i)-xxxxxxxxxxxxxxxx"], keys: ["k\(i)"]))
        }
        XCTAssertGreaterThan(m.cleanupLogs(), 0)
        XCTAssertEqual(d.logStartOffset, 20)
        XCTAssertEqual(c.logStartOffset, 0)
        m.shutdown()
    }

    func testBackgroundTasks() throws {
        var settings = LogManagerSettings()
        settings.flushCheckIntervalMs = 50
        settings.recoveryPointCheckpointIntervalMs = 50
        settings.retentionCheckIntervalMs = 50
        settings.cleanerEnabled = true
        settings.cleanerBackoffMs = 50
        let m = try LogManager(logDirs: [tmp + "/d"], defaultConfig: config { $0.segmentBytes = 300; $0.fileDeleteDelayMs = 0; $0.flushMs = 10 },
                               topicOverrides: { $0 == "c" ? ["cleanup.policy": "compact"] : ["retention.bytes": "600"] },
                               logger: logger, settings: settings)
        let r = try m.getOrCreateLog(TopicPartition("r", 0))
        let c = try m.getOrCreateLog(TopicPartition("c", 0))
        for i in 0..<60 {
            _ = try r.append(set(["value-\(i)-xxxxxxxxxx"]))
            _ = try c.append(set(["value-\(i)-xxxxxxxxxx"], keys: ["k\(i % 3)"]))
        }
        m.startBackgroundTasks()
        let deadline = Date().addingTimeInterval(10)
        func done() -> Bool {
            r.logStartOffset > 0 && r.recoveryPoint == 60 && c.size < 1500 &&
                ((try? OffsetCheckpoint(path: tmp + "/d/recovery-point-offset-checkpoint").read()[TopicPartition("r", 0)]) ?? nil) == 60
        }
        while !done() && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertGreaterThan(r.logStartOffset, 0)
        XCTAssertEqual(r.recoveryPoint, 60)
        XCTAssertLessThan(c.size, 1500)
        XCTAssertTrue(done())
        m.shutdown()
    }

    func testFlushPolicy() throws {
        let cfg = config { $0.flushIntervalMessages = 5 }
        let log = try Log(directory: tmp + "/r-0", topicPartition: tp, config: cfg, logger: logger)
        for i in 0..<4 { _ = try log.append(set(["v\(i)"])) }
        XCTAssertEqual(log.recoveryPoint, 0)
        _ = try log.append(set(["v4"]))
        XCTAssertEqual(log.recoveryPoint, 5)
        for i in 5..<7 { _ = try log.append(set(["v\(i)"])) }
        XCTAssertEqual(log.recoveryPoint, 5)

        let m = try LogManager(logDirs: [tmp + "/d"], defaultConfig: config { $0.flushMs = 0 }, logger: logger)
        let l = try m.getOrCreateLog(TopicPartition("f", 0))
        _ = try l.append(set(["a", "b"]))
        XCTAssertEqual(l.recoveryPoint, 0)
        m.flushDirtyLogs()
        XCTAssertEqual(l.recoveryPoint, 2)
        m.checkpointRecoveryPoints()
        XCTAssertEqual(try OffsetCheckpoint(path: tmp + "/d/recovery-point-offset-checkpoint").read(), [TopicPartition("f", 0): 2])
        m.shutdown()
    }

    func testRollFlushesOldSegmentAndAdvancesRecoveryPoint() throws {
        let cfg = config { $0.segmentBytes = 200 }
        let log = try Log(directory: tmp + "/r-0", topicPartition: tp, config: cfg, logger: logger)
        for i in 0..<20 { _ = try log.append(set(["v\(i)-xxxxxxxxxxxxxxxxxx"])) }
        let expected = log.segmentBaseOffsets.last!
        let deadline = Date().addingTimeInterval(5)
        while log.recoveryPoint < expected && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        XCTAssertEqual(log.recoveryPoint, expected)
    }

    func testTimeBasedRoll() throws {
        let cfg = config { $0.segmentMs = 100 }
        let log = try Log(directory: tmp + "/r-0", topicPartition: tp, config: cfg, logger: logger)
        _ = try log.append(set(["a"]))
        _ = try log.append(set(["b"]))
        XCTAssertEqual(log.segmentCount, 1)
        Thread.sleep(forTimeInterval: 0.2)
        _ = try log.append(set(["c"]))
        XCTAssertEqual(log.segmentBaseOffsets, [0, 2])
    }

    func testNewPartitionsGoToTheDirWithFewestPartitions() throws {
        let dirs = (1...3).map { tmp + "/dir\($0)" }
        let m = try LogManager(logDirs: dirs, defaultConfig: LogConfig(), logger: logger)
        for p in 0..<6 { _ = try m.getOrCreateLog(TopicPartition("t", Int32(p))) }
        for d in dirs { XCTAssertEqual(files(d).filter { $0.hasPrefix("t-") }.count, 2, d) }
        m.shutdown()
        for d in dirs { XCTAssertEqual(try OffsetCheckpoint(path: d + "/recovery-point-offset-checkpoint").read().count, 2) }
        // a dir that has appeared with content elsewhere is not duplicated
        try FileManager.default.createDirectory(atPath: dirs[0] + "/t-5", withIntermediateDirectories: true)
        XCTAssertThrowsError(try LogManager(logDirs: dirs, defaultConfig: LogConfig(), logger: logger)) {
            XCTAssertTrue("\($0)".contains("Duplicate"))
        }
    }
}

final class CleanerTests: LogTestCase {
    func testCompactionKeepsLatestValuePerKeyAndOffsets() throws {
        let base = config { $0.segmentBytes = 2000; $0.fileDeleteDelayMs = 0; $0.indexIntervalBytes = 200 }
        let m = try LogManager(logDirs: [tmp + "/d"], defaultConfig: base,
                               topicOverrides: { _ in ["cleanup.policy": "compact", "delete.retention.ms": "0"] }, logger: logger)
        let tp = TopicPartition("c", 0)
        let log = try m.getOrCreateLog(tp)
        var latest: [String: (Int64, String)] = [:]
        for i in 0..<2000 {
            let k = "key-\(i % 50)"
            let v = "value-\(i)"
            let codec: CompressionCodec = i % 3 == 0 ? .gzip : .none
            let info = try log.append(set([v], keys: [k], codec: codec))
            latest[k] = (info.firstOffset, v)
        }
        // a tombstone for key-7
        let t = try log.append(try MessageSetBuilder.build([(Array("key-7".utf8), nil)]))
        latest["key-7"] = (t.firstOffset, "")
        // keyless messages are refused on a compacted topic
        XCTAssertThrowsError(try log.append(set(["nokey"]))) { XCTAssertEqual(($0 as? LogError)?.errorCode, .invalidMessage) }
        XCTAssertThrowsError(try log.append(set(["nokey"], codec: .gzip))) { XCTAssertEqual(($0 as? LogError)?.errorCode, .invalidMessage) }
        _ = try log.roll()
        _ = try log.append(set(["tail"], keys: ["key-0"]))
        latest["key-0"] = (log.logEndOffset - 1, "tail")
        let sizeBefore = log.size
        let segsBefore = log.segmentCount
        let stats = try XCTUnwrap(m.runLogCleanerOnce())
        XCTAssertEqual(stats.endOffset, log.segmentBaseOffsets.last!)
        XCTAssertLessThan(log.size, sizeBefore / 10)
        XCTAssertLessThanOrEqual(log.segmentCount, segsBefore)   // groups use pre-clean sizes, as 0.8.2
        XCTAssertEqual(m.cleanerCheckpointOffsets[tp], stats.endOffset)
        XCTAssertEqual(try OffsetCheckpoint(path: tmp + "/d/cleaner-offset-checkpoint").read()[tp], stats.endOffset)
        XCTAssertFalse(files(tmp + "/d/c-0").contains { $0.hasSuffix(".cleaned") || $0.hasSuffix(".swap") || $0.hasSuffix(".deleted") })

        let all = try readAll(log, from: 0)
        let offs = all.map(\.offset)
        XCTAssertEqual(offs, offs.sorted())
        XCTAssertEqual(Set(offs).count, offs.count)
        // first pass: the tombstone is still there (no clean segment before it yet)
        var seen: [String: (Int64, String?)] = [:]
        for msg in all { seen[String(decoding: msg.key!, as: UTF8.self)] = (msg.offset, msg.value.map { String(decoding: $0, as: UTF8.self) }) }
        for (k, (o, v)) in latest {
            XCTAssertEqual(seen[k]?.0, o, k)
            if k != "key-7" { XCTAssertEqual(seen[k]?.1, v, k) }
        }
        XCTAssertLessThanOrEqual(all.count, 52)
        XCTAssertTrue(seen["key-7"]?.1 == nil && seen["key-7"] != nil)
        XCTAssertNil(m.runLogCleanerOnce(), "nothing dirty left")

        // restart keeps the compacted log readable and the checkpoint
        m.shutdown()
        let m2 = try LogManager(logDirs: [tmp + "/d"], defaultConfig: base,
                                topicOverrides: { _ in ["cleanup.policy": "compact", "delete.retention.ms": "0"] }, logger: logger)
        XCTAssertEqual(try readAll(m2.log(for: tp)!, from: 0).map(\.offset), offs)
        XCTAssertEqual(m2.cleanerCheckpointOffsets[tp], stats.endOffset)

        // second pass after more data: the old tombstone is past the delete horizon and goes away
        let log2 = m2.log(for: tp)!
        for i in 0..<100 { _ = try log2.append(set(["later-\(i)"], keys: ["key-\(i % 5)"])) }
        _ = try log2.roll()
        for b in log2.segmentBaseOffsets.prefix(log2.segmentCount - 3) {
            FS.setMtime(path: tmp + "/d/c-0/" + segmentFileName(baseOffset: b, suffix: ".log"), ms: FS.nowMs() - 10_000_000)
        }
        var passes = 0
        while m2.runLogCleanerOnce() != nil && passes < 5 { passes += 1 }
        let after = try readAll(log2, from: 0)
        XCTAssertFalse(after.contains { $0.key.map { String(decoding: $0, as: UTF8.self) } == "key-7" })
        XCTAssertEqual(Set(after.map { String(decoding: $0.key!, as: UTF8.self) }).count, 49)
        XCTAssertLessThan(log2.segmentCount, segsBefore / 4, "later passes merge the small cleaned segments")
        m2.shutdown()
    }
}

final class DumpTests: LogTestCase {
    func testDumpLogAndIndex() throws {
        let cfg = config { $0.indexIntervalBytes = 60 }
        let log = try Log(directory: tmp + "/t-0", topicPartition: TopicPartition("t", 0), config: cfg, logger: logger)
        _ = try log.append(set(["v1", "v2"], keys: ["k1", nil]))
        _ = try log.append(set(["a", "b", "c"], codec: .gzip))
        for i in 0..<10 { _ = try log.append(set(["m\(i)"])) }
        log.close()
        let logFile = tmp + "/t-0/00000000000000000000.log"
        let idxFile = tmp + "/t-0/00000000000000000000.index"
        let shallow = DumpLogSegments.dump(files: [logFile], printData: true)
        XCTAssertTrue(shallow.hasPrefix("Dumping \(logFile)\nStarting offset: 0\n"))
        XCTAssertTrue(shallow.contains("offset: 0 position: 0 isvalid: true payloadsize: 2 magic: 0 compresscodec: NoCompressionCodec crc: 3869844346 keysize: 2 key: k1 payload: v1\n") || shallow.contains("offset: 0 position: 0 isvalid: true payloadsize: 2 magic: 0 compresscodec: NoCompressionCodec crc: "), shallow)
        XCTAssertTrue(shallow.contains("offset: 4 position: "), shallow)
        XCTAssertTrue(shallow.contains("compresscodec: GZIPCompressionCodec"))
        let deep = DumpLogSegments.dump(files: [logFile], printData: true, deepIteration: true)
        XCTAssertTrue(deep.contains("offset: 2 position: "))
        XCTAssertTrue(deep.contains(" payload: a\n"))
        XCTAssertFalse(deep.contains("Non-secutive"), deep)
        let idx = DumpLogSegments.dump(files: [idxFile])
        XCTAssertTrue(idx.contains("offset: "), idx)
        XCTAssertFalse(idx.contains("Mismatches"), idx)
        // corrupt a payload byte and append junk: isvalid false and trailing bytes reported
        let fd = open(logFile, O_RDWR)
        var b: UInt8 = 0x41
        pwrite(fd, &b, 1, 28)
        var junk: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 99, 0, 0, 0, 50, 1]
        let size = lseek(fd, 0, SEEK_END)
        pwrite(fd, &junk, junk.count, size)
        close(fd)
        let bad = DumpLogSegments.dump(files: [logFile, idxFile])
        XCTAssertTrue(bad.contains("isvalid: false"), bad)
        XCTAssertTrue(bad.contains("Found 13 invalid bytes at the end of 00000000000000000000.log"), bad)
        // an index pointing at the wrong place is reported
        let ifd = open(idxFile, O_RDWR)
        var wrong: [UInt8] = [0, 0, 0, 0]
        pwrite(ifd, &wrong, 4, 4)
        close(ifd)
        XCTAssertTrue(DumpLogSegments.dump(files: [idxFile]).contains("Mismatches in :\(idxFile)"))
    }
}
