import KafkaProtocol
import NIOCore
import XCTest

final class SizePrefixedFrameTests: XCTestCase {
    private func bytes(_ b: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: b) }

    func testWriteThenCutTwoFrames() {
        var buf = ByteBuffer()
        SizePrefixedFrame.write(into: &buf) { $0.writeBytes([1, 2, 3]) }
        SizePrefixedFrame.write(into: &buf) { $0.writeBytes([9]) }
        XCTAssertEqual(Array(buf.readableBytesView), [0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 1, 9])
        let first = SizePrefixedFrame.next(from: &buf, sizes: 1...10)
        XCTAssertEqual(first.head, .complete(size: 3))
        XCTAssertEqual(first.frame.map { Array($0.readableBytesView) }, [1, 2, 3])
        let second = SizePrefixedFrame.next(from: &buf, sizes: 1...10)
        XCTAssertEqual(second.frame.map { Array($0.readableBytesView) }, [9])
        XCTAssertEqual(buf.readableBytes, 0)
        XCTAssertEqual(SizePrefixedFrame.next(from: &buf, sizes: 1...10).head, .needSize)
    }

    func testIncompleteFramesLeaveTheBufferAlone() {
        var short = bytes([0, 0, 0])
        XCTAssertEqual(SizePrefixedFrame.next(from: &short, sizes: 1...10).head, .needSize)
        XCTAssertEqual(short.readableBytes, 3)
        var partial = bytes([0, 0, 0, 4, 1, 2])
        let r = SizePrefixedFrame.next(from: &partial, sizes: 1...10)
        XCTAssertEqual(r.head, .partial(size: 4))
        XCTAssertNil(r.frame)
        XCTAssertEqual(partial.readableBytes, 6)
    }

    func testSizesOutsideTheBoundsAreRejected() {
        for (b, sizes) in [([0, 0, 0, 0] as [UInt8], 1...10), ([0xff, 0xff, 0xff, 0xff], 1...10),
                           ([0, 0, 0, 11], 1...10), ([0, 0, 0, 3, 1, 2, 3], 4...Int(Int32.max))] {
            var buf = bytes(b)
            let r = SizePrefixedFrame.next(from: &buf, sizes: sizes)
            guard case .outOfBounds = r.head else { return XCTFail("\(b) in \(sizes): \(r.head)") }
            XCTAssertEqual(buf.readableBytes, b.count)
        }
    }
}
