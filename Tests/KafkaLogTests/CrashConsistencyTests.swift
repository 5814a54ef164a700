import Foundation
import XCTest
import KafkaLog
import KafkaProtocol

/// Crash-like restarts without killing the test process: while a writer appends, the segment files are copied
/// at a random moment (the copy may hold torn entries, like a page cache at `kill -9`/power loss), and a log is
/// opened on the copy without the clean-shutdown marker.
final class CrashConsistencyTests: LogTestCase {
    func testRecoveryFromSnapshotsTakenDuringAppends() throws {
        let cfg = config { $0.segmentBytes = 16384; $0.indexIntervalBytes = 256 }
        let src = tmp + "/c-0"
        let log = try Log(directory: src, topicPartition: TopicPartition("c", 0), config: cfg, logger: logger)
        let stop = ManagedFlag()
        let writer = Thread {
            var i = 0
            while !stop.value {
                let n = Int.random(in: 1...5)
                let base = log.logEndOffset
                let codec: CompressionCodec = i % 4 == 0 ? .gzip : .none
                let msgs: [(key: [UInt8]?, value: [UInt8]?)] = (0..<n).map { j in (nil, Array("v\(base + Int64(j))".utf8)) }
                _ = try? log.append(MessageSetBuilder.build(msgs, codec: codec))
                i += 1
                usleep(100)
            }
        }
        writer.start()
        for cycle in 0..<20 {
            Thread.sleep(forTimeInterval: Double.random(in: 0.002...0.02))
            let acked = log.logEndOffset
            let dst = tmp + "/copy\(cycle)/c-0"
            try FileManager.default.createDirectory(atPath: dst, withIntermediateDirectories: true)
            for f in files(src) where !f.hasSuffix(".deleted") {
                if let d = FileManager.default.contents(atPath: src + "/" + f) {
                    _ = FileManager.default.createFile(atPath: dst + "/" + f, contents: d)
                }
            }
            let recovered = try Log(directory: dst, topicPartition: TopicPartition("c", 0), config: cfg,
                                    recoveryPoint: 0, cleanShutdown: false, logger: logger)
            XCTAssertGreaterThanOrEqual(recovered.logEndOffset, acked, "cycle \(cycle)")
            let all = try readAll(recovered, from: 0)
            XCTAssertEqual(all.map(\.offset), Array(0..<recovered.logEndOffset), "cycle \(cycle)")
            for m in all { XCTAssertEqual(String(decoding: m.value!, as: UTF8.self), "v\(m.offset)") }
            XCTAssertEqual(try recovered.append(MessageSetBuilder.build([(nil, Array("x".utf8))])).firstOffset, recovered.logEndOffset - 1)
            recovered.close()
        }
        let fdsAfter = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
        XCTAssertLessThan(fdsAfter, log.segmentCount + 200, "recovered logs release their descriptors")
        stop.set()
        while writer.isExecuting { Thread.sleep(forTimeInterval: 0.01) }
    }
}
