import KafkaProtocol
import NIOCore
import XCTest

/// The parking policy: frames of 32 KB up to `maximumFrameBytes` are parked in a buffer with room
/// for the whole frame; smaller ones, and sizes too large to allocate on trust, are not.
final class FrameReceiveHandoffTests: XCTestCase {
    func start(size: Int, received: Int) -> ByteBuffer {
        var b = ByteBufferAllocator().buffer(capacity: 4 + received)
        b.writeInteger(Int32(size))
        b.writeBytes([UInt8](repeating: 7, count: received))
        return b
    }

    func testParksALargeFrameWithRoomForAllOfIt() {
        let h = FrameReceiveHandoff()
        XCTAssertTrue(h.parkIfLarge(start(size: 100_000, received: 1000), size: 100_000, allocator: ByteBufferAllocator()))
        let parked = h.reclaim()
        XCTAssertEqual(parked?.readableBytes, 1004, "the bytes received so far, prefix included")
        XCTAssertGreaterThanOrEqual(parked?.capacity ?? 0, 100_004)
        XCTAssertEqual(parked?.getInteger(at: 0, as: Int32.self), 100_000)
        XCTAssertNil(h.reclaim(), "taken once")
    }

    func testSmallAndUntrustedSizesAreNotParked() {
        let h = FrameReceiveHandoff()
        XCTAssertFalse(h.parkIfLarge(start(size: 1000, received: 10), size: 1000, allocator: ByteBufferAllocator()))
        let huge = FrameReceiveHandoff.maximumFrameBytes
        XCTAssertFalse(h.parkIfLarge(start(size: huge, received: 10), size: huge, allocator: ByteBufferAllocator()))
        XCTAssertNil(h.parked)
    }

    func testOnlyALargeFrameThatEndedWithItsReadSizesTheNextRead() {
        let h = FrameReceiveHandoff()
        h.frameCut(frameBytes: 50_000, leftover: 10)
        XCTAssertEqual(h.nextFrameBytes, 0)
        h.frameCut(frameBytes: 1000, leftover: 0)
        XCTAssertEqual(h.nextFrameBytes, 0)
        h.frameCut(frameBytes: 50_000, leftover: 0)
        XCTAssertEqual(h.nextFrameBytes, 50_000)
    }
}
