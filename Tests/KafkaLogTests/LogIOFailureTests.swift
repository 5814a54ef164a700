import Foundation
import XCTest
import KafkaLog
import KafkaProtocol
import Synchronization

/// A log on a disk that fills up (a real tmpfs of a few pages): issue 7 item 8.
final class LogIOFailureTests: LogTestCase {
    private func run(_ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/" + args[0])
        p.arguments = Array(args.dropFirst())
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw NSError(domain: "LogIOFailureTests", code: Int(p.terminationStatus), userInfo: [NSLocalizedDescriptionKey: "\(args.joined(separator: " ")) exited \(p.terminationStatus)"]) }
    }

    func testItem8_DiskFullLeavesNoPartialWriteAndTakesTheLogOffline() throws {
        XCTAssertEqual(getuid(), 0, "mounting the small tmpfs needs root (CI runs as root)")
        let mnt = tmp + "/small-disk"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        try run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt])
        defer { try? run(["umount", "-l", mnt]) }

        let failures = FailureRecorder()
        // A small index that is never written into: only the segment file fills the disk.
        let cfg = config { $0.maxIndexSize = 4096; $0.indexIntervalBytes = 1 << 30 }
        let tp = TopicPartition("t", 0)
        var log: Log? = try Log(directory: mnt + "/t-0", topicPartition: tp, config: cfg, logger: logger,
                                onIOFailure: { tp, error in failures.record("\(tp): \(error)") })
        let payload = String(repeating: "x", count: 3000)
        var acknowledged = 0
        var refusal: Error?
        while refusal == nil && acknowledged < 1000 {
            do { _ = try log!.append(set([payload])); acknowledged += 1 } catch { refusal = error }
        }
        XCTAssertNotNil(refusal, "a 64 KB disk took \(acknowledged) messages of 3 KB")
        XCTAssertGreaterThan(acknowledged, 0)
        XCTAssertNotNil(log!.ioFailure)
        XCTAssertEqual(failures.reasons.count, 1, "the failure handler is told once")

        // The segment holds exactly the acknowledged messages: no partial bytes.
        let segmentPath = mnt + "/t-0/" + segmentFileName(baseOffset: 0, suffix: ".log")
        let onDisk = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: segmentPath)[.size] as? Int)
        let entrySize = set([payload]).count
        XCTAssertEqual(onDisk, acknowledged * entrySize, "the failed write left bytes in the segment")
        XCTAssertEqual(log!.logEndOffset, Int64(acknowledged))

        // Offline: no more appends, even small ones that would fit now, and flush does not
        // move the recovery point.
        let recoveryPoint = log!.recoveryPoint
        XCTAssertThrowsError(try log!.append(set(["y"])))
        log!.flush()
        XCTAssertEqual(log!.recoveryPoint, recoveryPoint)
        XCTAssertEqual(failures.reasons.count, 1)

        // With room again, even a start that trusts the files (clean shutdown) ends the log at
        // the last acknowledged message and reads every one of them back.
        log = nil
        try run(["mount", "-o", "remount,size=1m", mnt])
        let reopened = try Log(directory: mnt + "/t-0", topicPartition: tp, config: cfg, cleanShutdown: true, logger: logger)
        XCTAssertEqual(reopened.logEndOffset, Int64(acknowledged))
        XCTAssertEqual(try readAll(reopened, maxBytes: 1 << 20).count, acknowledged)
        XCTAssertEqual(try reopened.append(set(["after"])).firstOffset, Int64(acknowledged))
    }
}

final class FailureRecorder: @unchecked Sendable {
    private struct State {
        var _reasons: [String] = []
    }
    private let state = Mutex(State())
    var reasons: [String] { state.withLock { st in st._reasons } }
    func record(_ r: String) { state.withLock { st in st._reasons.append(r) } }
}
