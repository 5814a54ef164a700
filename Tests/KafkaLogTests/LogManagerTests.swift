import Foundation
import XCTest
import KafkaLog
import KafkaProtocol

final class LogManagerTests: LogTestCase {
    func testCheckpointFileFormat() throws {
        let cp = OffsetCheckpoint(path: tmp + "/cp")
        XCTAssertEqual(try cp.read(), [:])
        try cp.write([TopicPartition("b", 1): 7, TopicPartition("a-b", 0): 42])
        let text = try String(contentsOfFile: tmp + "/cp", encoding: .utf8)
        XCTAssertEqual(text, "0\n2\na-b 0 42\nb 1 7\n")
        XCTAssertEqual(try cp.read(), [TopicPartition("b", 1): 7, TopicPartition("a-b", 0): 42])
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp + "/cp.tmp"))
        try "0\n3\na 0 1\n".write(toFile: tmp + "/cp", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try cp.read())
        try "1\n0\n".write(toFile: tmp + "/cp", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try cp.read())
    }

    func testConfigOverrides() throws {
        let base = LogConfig()
        XCTAssertEqual(base.segmentBytes, 1_073_741_824)
        XCTAssertEqual(base.maxMessageBytes, 1_000_012)
        let c = try base.applying(["segment.bytes": "1024", "retention.ms": "5000", "cleanup.policy": "compact",
                                   "min.cleanable.dirty.ratio": "0.1", "unclean.leader.election.enable": "false",
                                   "segment.index.bytes": "4096", "flush.messages": "1", "min.insync.replicas": "2",
                                   "max.message.bytes": "2000", "retention.bytes": "-1", "segment.jitter.ms": "10",
                                   "index.interval.bytes": "10", "delete.retention.ms": "1", "file.delete.delay.ms": "0",
                                   "flush.ms": "100", "segment.ms": "60000"])
        XCTAssertEqual(c.segmentBytes, 1024)
        XCTAssertEqual(c.retentionMs, 5000)
        XCTAssertTrue(c.compact)
        XCTAssertEqual(c.minCleanableRatio, 0.1)
        XCTAssertFalse(c.uncleanLeaderElection)
        XCTAssertEqual(c.maxIndexSize, 4096)
        XCTAssertEqual(c.minInsyncReplicas, 2)
        XCTAssertEqual(LogConfig.topicConfigNames.count, 16)
        XCTAssertEqual(Set(c.asProperties.keys), LogConfig.topicConfigNames)
        XCTAssertEqual(try LogConfig().applying(c.asProperties), c)
        for (k, v) in [("segment.bytes", "abc"), ("retention.ms", "1.5"), ("cleanup.policy", "both"), ("no.such.key", "1"),
                       ("min.insync.replicas", "0"), ("unclean.leader.election.enable", "yes"), ("min.cleanable.dirty.ratio", "2")] {
            XCTAssertThrowsError(try base.applying([k: v])) { e in
                let err = e as? LogConfigError
                XCTAssertEqual(err?.key, k)
                XCTAssertEqual(err?.value, v)
                XCTAssertTrue("\(e)".contains(k))
            }
        }
    }

    func testManagerCleanShutdownAndRestart() throws {
        let dirs = [tmp + "/d1", tmp + "/d2"]
        var m: LogManager? = try LogManager(logDirs: dirs, defaultConfig: LogConfig(),
                                            topicOverrides: { $0 == "small" ? ["segment.bytes": "200"] : [:] }, logger: logger)
        let a = try m!.getOrCreateLog(TopicPartition("t", 0))
        let b = try m!.getOrCreateLog(TopicPartition("t", 1))
        let s = try m!.getOrCreateLog(TopicPartition("small", 0))
        XCTAssertEqual(s.config.segmentBytes, 200)
        XCTAssertNotEqual(m!.logDir(for: a.topicPartition), m!.logDir(for: b.topicPartition))
        XCTAssertTrue(try m!.getOrCreateLog(TopicPartition("t", 0)) === a)
        for i in 0..<10 { _ = try a.append(set(["a\(i)"])); _ = try s.append(set(["s\(i)-xxxxxxxxxxxxxxx"])) }
        // a second manager on the same dirs is refused
        XCTAssertThrowsError(try LogManager(logDirs: dirs, defaultConfig: LogConfig(), logger: logger)) { e in
            XCTAssertTrue("\(e)".contains(".lock"))
        }
        m!.shutdown()
        m = nil
        for d in dirs {
            XCTAssertTrue(FileManager.default.fileExists(atPath: d + "/.kafka_cleanshutdown"))
            XCTAssertTrue(FileManager.default.fileExists(atPath: d + "/recovery-point-offset-checkpoint"))
        }
        let m2 = try LogManager(logDirs: dirs, defaultConfig: LogConfig(),
                                topicOverrides: { $0 == "small" ? ["segment.bytes": "200"] : [:] }, logger: logger)
        XCTAssertEqual(m2.allLogs.count, 3)
        XCTAssertEqual(m2.log(for: TopicPartition("t", 0))?.logEndOffset, 10)
        XCTAssertEqual(m2.log(for: TopicPartition("small", 0))?.logEndOffset, 10)
        XCTAssertEqual(m2.log(for: TopicPartition("t", 0))?.recoveryPoint, 10)
        for d in dirs { XCTAssertFalse(FileManager.default.fileExists(atPath: d + "/.kafka_cleanshutdown")) }
        XCTAssertEqual(try m2.log(for: TopicPartition("t", 0))!.append(set(["more"])).firstOffset, 10)
        m2.shutdown()
    }

    func testUncleanRestartRecoversFromCheckpoint() throws {
        let dir = tmp + "/d"
        var m: LogManager? = try LogManager(logDirs: [dir], defaultConfig: LogConfig(), logger: logger)
        let log = try m!.getOrCreateLog(TopicPartition("t", 0))
        for i in 0..<10 { _ = try log.append(set(["v\(i)"])) }
        log.flush()
        m!.checkpointRecoveryPoints()
        for i in 10..<15 { _ = try log.append(set(["v\(i)"])) }
        let size = log.size
        // crash: no shutdown; release the dir lock the way process death would
        m = nil
        let path = dir + "/t-0/" + segmentFileName(baseOffset: 0, suffix: ".log")
        let fd = open(path, O_RDWR)
        var junk: [UInt8] = Array(repeating: 0xAB, count: 30)
        pwrite(fd, &junk, junk.count, off_t(size))
        close(fd)
        XCTAssertEqual(try OffsetCheckpoint(path: dir + "/recovery-point-offset-checkpoint").read()[TopicPartition("t", 0)], 10)
        let m2 = try LogManager(logDirs: [dir], defaultConfig: LogConfig(), logger: logger)
        let l2 = m2.log(for: TopicPartition("t", 0))!
        XCTAssertEqual(l2.logEndOffset, 15)
        XCTAssertEqual(l2.size, size)
        m2.shutdown()
    }

    func testUnwritableDirIsAnErrorNamingIt() throws {
        let file = tmp + "/plainfile"
        _ = FileManager.default.createFile(atPath: file, contents: Data([1]))
        XCTAssertThrowsError(try LogManager(logDirs: [file + "/sub"], defaultConfig: LogConfig(), logger: logger)) { e in
            XCTAssertTrue("\(e)".contains(file), "\(e)")
        }
    }
}
