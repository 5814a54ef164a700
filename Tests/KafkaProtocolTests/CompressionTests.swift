import XCTest
import KafkaProtocol
import CCompression

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

    func testLz4KafkaFrame() throws {
        for input in [sample, [], [1, 2, 3], Array(repeating: 7, count: 300_000), (0..<70_000).map { _ in UInt8.random(in: 0...255) }] {
            let z = try Compression.compress(input, codec: .lz4)
            XCTAssertEqual(Array(z.prefix(6)), [0x04, 0x22, 0x4D, 0x18, 0x60, 0x40])
            // 0.8.2 header checksum: xxh32 over magic+FLG+BD
            XCTAssertEqual(z[6], UInt8((kc_xxh32(z, 6, 0) >> 8) & 0xFF))
            XCTAssertEqual(Array(z.suffix(4)), [0, 0, 0, 0])
            XCTAssertEqual(try Compression.decompress(z, codec: .lz4), input)
        }
        XCTAssertLessThan(try Compression.compress(Array(repeating: 7, count: 300_000), codec: .lz4).count, 5000)
        // standard header checksum (xxh32 over FLG+BD) is accepted too
        var std = try Compression.compress(sample, codec: .lz4)
        std[6] = UInt8((kc_xxh32(Array(std[4..<6]), 2, 0) >> 8) & 0xFF)
        XCTAssertEqual(try Compression.decompress(std, codec: .lz4), sample)
        var bad = std
        bad[6] &+= 1
        XCTAssertThrowsError(try Compression.decompress(bad, codec: .lz4))
        XCTAssertThrowsError(try Compression.decompress(Compression.compress(sample, codec: .lz4), codec: .lz4, maxSize: 1000))
    }

    func testXXH32KnownValues() {
        XCTAssertEqual(kc_xxh32(nil, 0, 0), 0x02CC5D05)
        XCTAssertEqual(kc_xxh32(Array("a".utf8), 1, 0), 0x550D7456)
        XCTAssertEqual(kc_xxh32(Array("abc".utf8), 3, 0), 0x32D153FF)
        XCTAssertEqual(kc_xxh32(Array("Nobody inspects the spammish repetition".utf8), 39, 0), 0xE2293B2F)
    }

    func testLz4Garbage() {
        let z = try! Compression.compress(sample, codec: .lz4)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<3000 {
            var m = z
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                m[Int.random(in: 7..<m.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            _ = try? Compression.decompress(m, codec: .lz4)
            _ = try? Compression.decompress(Array(m.prefix(Int.random(in: 0..<m.count, using: &rng))), codec: .lz4)
        }
    }

    func testCRC32() {
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF43926)
        XCTAssertEqual(CRC32.checksum([UInt8]()), 0)
    }
}
