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

    private func evict(_ segment: LogSegment) {
        let path = tmp + "/t-0/" + String(format: "%020lld.log", segment.baseOffset)
        let fd = open(path, O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0, path)
        XCTAssertEqual(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0)
        close(fd)
    }
}
