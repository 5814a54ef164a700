import Foundation
import KafkaTestSupport
import Synchronization
import XCTest

/// Parked (long-poll) fetches, through a real broker. A parked fetch is completed on its own
/// connection's event loop whichever thread completed it (an append on another connection, the
/// timeout); when its offset lies below the active segment the read goes to the log dir's I/O
/// pool, as a fresh fetch's would (ARCHITECTURE.md, "Delayed operations").
final class DelayedFetchTests: IntegrationTestCase {
    /// Runs `body` on its own thread; `wait` returns its result (nil on timeout).
    private final class Background<T: Sendable>: @unchecked Sendable {
        private let result = Mutex<Result<T, any Error>?>(nil)
        private let done = DispatchSemaphore(value: 0)
        init(_ body: @escaping @Sendable () throws -> T) {
            Thread { [self] in
                let r = Result { try body() }
                result.withLock { $0 = r }
                done.signal()
            }.start()
        }
        func wait(_ seconds: Double) throws -> T? {
            guard done.wait(timeout: .now() + seconds) == .success else { return nil }
            return try result.withLock { $0 }!.get()
        }
    }

    /// Four consumers parked at the log end (maxWait 10 s, minBytes 1) on their own connections;
    /// one small acks=1 produce on another connection (appended inline on its event loop) answers
    /// all of them at once with the message, long before their wait runs out.
    func testParkedFetchesAtTheTailAreAnsweredByAnAppendOnAnotherConnection() async throws {
        let topic = "parked-tail"
        let c = try await startCluster()
        try LogTools.createTopic(c, topic)
        try c.waitForLeaders(topic: topic)
        let port = c.broker.port
        let started = Date()
        let parked = (0..<4).map { _ in
            Background<FetchResult> {
                let conn = try WireConnection(port: port, timeout: 20)
                return try conn.fetch(topic: topic, offset: 0, maxBytes: 64 * 1024, maxWaitMs: 10_000, minBytes: 1)
            }
        }
        usleep(500_000)   // let them park
        for p in parked { XCTAssertNil(try p.wait(0), "a fetch with nothing to read waits") }
        let producer = try c.broker.connect()
        let (error, base) = try producer.produce(topic: topic, messages: [(key: nil, value: "wake up")])
        XCTAssertEqual(error, 0)
        XCTAssertEqual(base, 0)
        for (i, p) in parked.enumerated() {
            let f = try XCTUnwrap(try p.wait(5), "parked fetch \(i) answered after the append")
            XCTAssertEqual(f.error, 0)
            XCTAssertEqual(f.highWatermark, 1)
            XCTAssertEqual(f.messages.map(\.offset), [0])
            XCTAssertEqual(f.messages.map(\.value), ["wake up"])
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 8, "answered by the append, not by the 10 s timeout")
    }

    /// A fetch from an offset in an older segment that wants more bytes than that segment has
    /// left parks, and appends to the active segment do not satisfy it; at its timeout it is read
    /// (on the I/O pool: below the active segment) and answered with that segment's messages.
    func testParkedFetchBelowTheActiveSegmentIsAnsweredAtItsTimeout() async throws {
        let topic = "parked-cold"
        let c = try await startCluster()
        try LogTools.createTopic(c, topic, configs: ["segment.bytes": "1024"])
        try c.waitForLeaders(topic: topic)
        let producer = try c.broker.connect()
        let values = (0..<40).map { "cold-\($0)-" + String(repeating: "c", count: 60) }
        for v in values {
            let (error, _) = try producer.produce(topic: topic, messages: [(key: nil, value: v)])
            XCTAssertEqual(error, 0)
        }
        let dir = LogDirectory.partitionDir(c.broker, topic)
        let bases = LogDirectory.segments(dir).map(\.baseOffset)
        XCTAssertGreaterThan(bases.count, 2, "several segments: \(bases)")
        let port = c.broker.port
        let started = Date()
        let parked = Background<FetchResult> {
            let conn = try WireConnection(port: port, timeout: 20)
            return try conn.fetch(topic: topic, offset: 1, maxBytes: 64 * 1024, maxWaitMs: 1500, minBytes: 4096)
        }
        usleep(300_000)
        XCTAssertNil(try parked.wait(0), "fewer than minBytes in the first segment: the fetch waits")
        let (error, _) = try producer.produce(topic: topic, messages: [(key: nil, value: "to the active segment")])
        XCTAssertEqual(error, 0)
        let f = try XCTUnwrap(try parked.wait(10), "answered at its timeout")
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertGreaterThanOrEqual(elapsed, 1.4, "waited for its timeout")
        XCTAssertEqual(f.error, 0)
        XCTAssertEqual(f.highWatermark, 41)
        let got = f.messages.filter { $0.offset >= 1 }
        XCTAssertFalse(got.isEmpty)
        XCTAssertEqual(got.first?.offset, 1)
        XCTAssertLessThan(got.last!.offset, bases[1], "one segment's messages (the first, below the active one)")
        XCTAssertEqual(got.map(\.value), got.map { values[Int($0.offset)] })
    }
}
