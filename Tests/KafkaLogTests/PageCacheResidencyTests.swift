import Foundation
import Glibc
import XCTest
import KafkaLog
import KafkaProtocol

/// `Log.readMayMissPageCache` and `LogReadSlice.isInPageCache` (mincore): the fetch path sends
/// reads of pages that are not cached to the I/O pool instead of sendfile on an event loop.
final class PageCacheResidencyTests: LogTestCase {
    func testEvictedPagesAreReportedUntilReadBack() throws {
        let cfg = config { $0.segmentBytes = 4 << 20 }
        let log = try Log(directory: tmp + "/t-0", topicPartition: TopicPartition("t", 0), config: cfg, logger: logger)
        let value = String(repeating: "x", count: 1000)
        for _ in 0..<1000 { _ = try log.append(set(Array(repeating: value, count: 10))) } // ~10 MB
        XCTAssertGreaterThanOrEqual(log.segmentCount, 3)
        log.flush() // dirty pages cannot be dropped
        let active = log.segments[log.segmentCount - 1]
        let activeStart = active.baseOffset

        for segment in log.segments { evict(segment) }
        XCTAssertTrue(log.readMayMissPageCache(from: 0, maxBytes: 1 << 20), "an evicted older segment")
        XCTAssertTrue(log.readMayMissPageCache(from: activeStart, maxBytes: 1 << 20), "the evicted start of the active segment")
        XCTAssertFalse(try log.read(startOffset: 0, maxBytes: 1 << 20).isInPageCache)
        // The last bytes written are taken to be cached without a check; outside the log: false.
        XCTAssertFalse(log.readMayMissPageCache(from: log.logEndOffset - 10, maxBytes: 1 << 20))
        XCTAssertFalse(log.readMayMissPageCache(from: log.logEndOffset, maxBytes: 1 << 20))
        XCTAssertFalse(log.readMayMissPageCache(from: 0, maxBytes: 0))

        // Reading the range back makes it resident; the rest of the log stays evicted.
        _ = try log.readBytes(startOffset: 0, maxBytes: 1 << 20)
        XCTAssertFalse(log.readMayMissPageCache(from: 0, maxBytes: 1 << 20))
        XCTAssertTrue(try log.read(startOffset: 0, maxBytes: 1 << 20).isInPageCache)
        XCTAssertTrue(log.readMayMissPageCache(from: activeStart, maxBytes: 1 << 20))
    }

    /// Index entries 1 MB apart (one per produced batch of 100 x 10 KB): a fetch from inside a
    /// batch reads the headers from the batch's index entry up to its offset, then its slice, so
    /// the check covers everything up to the next index entry plus `maxBytes`, not just
    /// `maxBytes` from the index entry.
    func testCheckCoversTheScanFromTheIndexEntryToAnOffsetInsideABatch() throws {
        let log = try Log(directory: tmp + "/t-0", topicPartition: TopicPartition("t", 0), config: LogConfig(), logger: logger)
        let value = String(repeating: "v", count: 10_000)
        for _ in 0..<3 { _ = try log.append(set(Array(repeating: value, count: 100))) }
        let seg = log.segments[0]
        XCTAssertEqual(seg.index.entryCount, 2, "one entry at the start of the second and the third batch")
        let second = seg.index.entry(0)
        XCTAssertEqual(second.offset, 100)
        XCTAssertEqual(seg.index.positionBounds(150).floor, second.position)
        XCTAssertEqual(seg.index.positionBounds(150).floorOffset, 100)
        XCTAssertEqual(seg.index.positionBounds(150).ceiling, seg.index.entry(1).position)
        XCTAssertEqual(seg.index.positionBounds(5).floor, 0)
        XCTAssertEqual(seg.index.positionBounds(5).ceiling, second.position)
        XCTAssertNil(seg.index.positionBounds(250).ceiling)

        log.flush()
        evict(seg)
        // 64 KB from the second batch's index entry is read back; the rest of the batch is not.
        _ = try log.readBytes(startOffset: 100, maxBytes: 64 * 1024)
        XCTAssertFalse(log.readMayMissPageCache(from: 100, maxBytes: 64 * 1024), "exactly the range read back")
        XCTAssertTrue(log.readMayMissPageCache(from: 150, maxBytes: 64 * 1024), "offset 150 lies 500 KB past the cached range")
        XCTAssertTrue(log.readMayMissPageCache(from: 199, maxBytes: 64 * 1024))

        _ = try log.readBytes(startOffset: 0, maxBytes: Int(seg.size))
        XCTAssertFalse(log.readMayMissPageCache(from: 150, maxBytes: 64 * 1024))
        XCTAssertFalse(log.readMayMissPageCache(from: 5, maxBytes: 1 << 20))
    }

    /// A consumer's read is bounded by the high watermark, found by a scan from the index entry
    /// below it: when that lies in the same segment, its pages are checked too.
    func testCheckCoversTheScanForTheHighWatermark() throws {
        let log = try Log(directory: tmp + "/t-0", topicPartition: TopicPartition("t", 0), config: LogConfig(), logger: logger)
        let value = String(repeating: "h", count: 10_000)
        for _ in 0..<3 { _ = try log.append(set(Array(repeating: value, count: 100))) }
        XCTAssertEqual(log.segmentCount, 1)
        log.flush()
        evict(log.segments[0])
        _ = try log.readBytes(startOffset: 0, maxBytes: 64 * 1024)
        XCTAssertFalse(log.readMayMissPageCache(from: 0, maxBytes: 64 * 1024), "no bound: only the range read back")
        XCTAssertTrue(log.readMayMissPageCache(from: 0, maxBytes: 64 * 1024, upTo: 250), "the scan for 250 starts at offset 200's entry, 2 MB in")
        XCTAssertTrue(log.readMayMissPageCache(from: 0, maxBytes: 64 * 1024, upTo: log.logEndOffset))
        XCTAssertFalse(log.readMayMissPageCache(from: 0, maxBytes: 64 * 1024, upTo: 0), "a bound at the offset reads nothing")
        _ = try log.readBytes(startOffset: 200, maxBytes: 2 << 20)
        XCTAssertFalse(log.readMayMissPageCache(from: 0, maxBytes: 64 * 1024, upTo: 250))
        XCTAssertFalse(log.readMayMissPageCache(from: 0, maxBytes: 64 * 1024, upTo: log.logEndOffset))
    }

    /// A fetch bound (the high watermark) in a later segment is not looked for in this one.
    func testReadBoundedByALaterSegmentReadsToTheSegmentEnd() throws {
        let cfg = config { $0.segmentBytes = 300_000 }
        let log = try Log(directory: tmp + "/t-0", topicPartition: TopicPartition("t", 0), config: cfg, logger: logger)
        let value = String(repeating: "w", count: 10_000)
        for _ in 0..<10 { _ = try log.append(set(Array(repeating: value, count: 10))) }
        XCTAssertGreaterThanOrEqual(log.segmentCount, 3)
        let first = log.segments[0], second = log.segments[1]
        let toEnd = try log.read(startOffset: 3, maxBytes: 1 << 20, maxOffset: second.baseOffset + 5)
        let unbounded = try log.read(startOffset: 3, maxBytes: 1 << 20)
        XCTAssertEqual(toEnd.position, unbounded.position)
        XCTAssertEqual(toEnd.length, unbounded.length)
        XCTAssertEqual(Int(toEnd.position) + toEnd.length, first.size, "the rest of the first segment")
        XCTAssertEqual(try offsets(log.readBytes(startOffset: 3, maxBytes: 1 << 20, maxOffset: second.baseOffset)).last, second.baseOffset - 1)
        // A bound inside the segment still ends the read there.
        XCTAssertEqual(try offsets(log.readBytes(startOffset: 3, maxBytes: 1 << 20, maxOffset: 7)), [3, 4, 5, 6])
    }

    private func evict(_ segment: LogSegment) {
        let path = tmp + "/t-0/" + String(format: "%020lld.log", segment.baseOffset)
        let fd = open(path, O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0, path)
        XCTAssertEqual(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0)
        close(fd)
    }
}
