import XCTest
@testable import KafkaProtocol

final class CompressionTests: XCTestCase {
    private let sample: [UInt8] = Array((0..<100_000).map { UInt8(truncatingIfNeeded: $0 * 7 / 13) })

    func testGzipRoundTrip() throws {
        let z = try Compression.compress(sample, codec: .gzip)
        XCTAssertEqual(Array(z.prefix(2)), [0x1f, 0x8b])
        XCTAssertEqual(try Compression.decompress(z, codec: .gzip), sample)
        // concatenated members
        let two = try Compression.compress([1, 2, 3], codec: .gzip) + Compression.compress([4, 5], codec: .gzip)
        XCTAssertEqual(try Compression.decompress(two, codec: .gzip), [1, 2, 3, 4, 5])
        XCTAssertEqual(try Compression.decompress(Compression.compress([], codec: .gzip), codec: .gzip), [])
    }

    func testGzipCapAndGarbage() {
        let z = try! Compression.compress(sample, codec: .gzip)
        XCTAssertThrowsError(try Compression.decompress(z, codec: .gzip, maxSize: 1000)) { e in
            XCTAssertEqual(e as? CompressionError, .tooLarge(codec: .gzip, limit: 1000))
        }
        XCTAssertThrowsError(try Compression.decompress([1, 2, 3, 4], codec: .gzip))
        XCTAssertThrowsError(try Compression.decompress([], codec: .gzip))
        XCTAssertThrowsError(try Compression.decompress(Array(z.prefix(z.count / 2)), codec: .gzip))
    }

    func testXerialSnappyFraming() throws {
        let x = try Compression.compress(sample, codec: .snappy)
        XCTAssertEqual(Array(x.prefix(16)), Compression.xerialMagic + [0, 0, 0, 1, 0, 0, 0, 1])
        // 100,000 bytes → 4 blocks of at most 32 KiB input
        var pos = 16, blocks = 0
        while pos < x.count {
            let len = Int(x[pos]) << 24 | Int(x[pos + 1]) << 16 | Int(x[pos + 2]) << 8 | Int(x[pos + 3])
            let raw = Array(x[(pos + 4)..<(pos + 4 + len)])
            XCTAssertLessThanOrEqual(try Compression.decompress(raw, codec: .snappy).count, 32768)
            pos += 4 + len
            blocks += 1
        }
        XCTAssertEqual(blocks, 4)
        XCTAssertEqual(try Compression.decompress(x, codec: .snappy), sample)
        XCTAssertEqual(try Compression.decompress(Compression.compress([], codec: .snappy), codec: .snappy), [])
    }

    func testRawSnappyAccepted() throws {
        let raw = try sample.withUnsafeBytes { try Compression.snappyCompressRaw($0) }
        XCTAssertFalse(raw.withUnsafeBytes { Compression.isXerialFramed($0) })
        XCTAssertEqual(try Compression.decompress(raw, codec: .snappy), sample)
    }

    func testSnappyGarbage() {
        XCTAssertThrowsError(try Compression.decompress([0xff, 0xff, 0xff, 0xff, 0x0f, 1], codec: .snappy))
        XCTAssertThrowsError(try Compression.decompress([], codec: .snappy))
        // framed with a block length beyond the input
        XCTAssertThrowsError(try Compression.decompress(Compression.xerialMagic + [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 5], codec: .snappy))
        // header claims a huge length
        XCTAssertThrowsError(try Compression.decompress([0xff, 0xff, 0xff, 0xff, 0x07], codec: .snappy, maxSize: 1 << 20))
        let x = try! Compression.compress(sample, codec: .snappy)
        XCTAssertThrowsError(try Compression.decompress(x, codec: .snappy, maxSize: 50_000))
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            var m = x.prefix(300).map { $0 }
            m[Int.random(in: 16..<m.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            _ = try? Compression.decompress(m, codec: .snappy)
            _ = try? Compression.decompress(m, codec: .gzip)
        }
    }

    func testVectorsCompressedPayloads() throws {
        for f in try Fixtures.produceFixtures() where f.codec == "gzip" || f.codec == "snappy" {
            let wrapper = try MessageSetDecoder.decode(f.messageSet, deep: false)[0]
            let codec = CompressionCodec(name: f.codec)!
            let inner = try Compression.decompress(wrapper.value!, codec: codec)
            XCTAssertEqual(inner.count, 97, f.file)
        }
    }

    func testCRC32() {
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF43926)
        XCTAssertEqual(CRC32.checksum([UInt8]()), 0)
    }
}
