import KafkaClient
import XCTest

final class TimeoutTests: XCTestCase {
    func testReturnsTheResultWhenInTime() async throws {
        let v = try await withTimeout(ms: 5000) { 42 }
        XCTAssertEqual(v, 42)
    }

    func testPassesOnTheBodysError() async {
        struct Boom: Error {}
        do {
            _ = try await withTimeout(ms: 5000) { () async throws -> Int in throw Boom() }
            XCTFail("no error")
        } catch {
            XCTAssertTrue(error is Boom, "\(error)")
        }
    }

    /// Work that ignores cancellation (as a ZooKeeper retry on a server that is gone) does not
    /// hold up the caller past the timeout.
    func testTimesOutEvenWhenTheBodyIgnoresCancellation() async {
        let start = ContinuousClock.now
        do {
            _ = try await withTimeout(ms: 200) { () async throws -> Int in
                // Busy for 3 s whatever happens (a blocking sleep does not notice cancellation).
                blockingSleep(seconds: 3)
                return 1
            }
            XCTFail("no timeout")
        } catch {
            XCTAssertTrue(error is TimeoutError, "\(error)")
        }
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(2))
    }
}

private func blockingSleep(seconds: Double) { usleep(UInt32(seconds * 1_000_000)) }
