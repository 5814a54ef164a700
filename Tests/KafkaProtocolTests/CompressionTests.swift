import XCTest
import KafkaProtocol
import CCompression
import CLZ4

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

    /// Frame header + blocks as Kafka 0.8.2 lays them out; `blocks` are (payload, stored) pairs.
    private func kafkaFrame(flg: UInt8, blocks: [([UInt8], Bool)]) -> [UInt8] {
        var f: [UInt8] = [0x04, 0x22, 0x4D, 0x18, flg, 0x40]
        f.append(UInt8((kc_xxh32(f, 6, 0) >> 8) & 0xFF))
        for (payload, stored) in blocks {
            let size = UInt32(payload.count) | (stored ? 0x8000_0000 : 0)
            f += [UInt8(size & 0xFF), UInt8(size >> 8 & 0xFF), UInt8(size >> 16 & 0xFF), UInt8(size >> 24)]
            f += payload
        }
        return f + [0, 0, 0, 0]
    }

    func testLz4FramesFromLiblz4Decode() throws {
        // text-like input, compressible across 64 KiB block boundaries
        let words = ["kafka", "broker", "partition", "replica", "offset", "leader", "isr", "topic"]
        var input: [UInt8] = []
        var i = 0
        while input.count < 200_000 { input += Array((words[(i * 7 + i / 3) % words.count] + " ").utf8); i += 1 }

        // 1. independent blocks, each compressed by liblz4's LZ4_compress_default, under Kafka's header
        var independent: [([UInt8], Bool)] = []
        input.withUnsafeBytes { src in
            var done = 0
            while done < src.count {
                let n = min(65536, src.count - done)
                var dst = [UInt8](repeating: 0, count: Int(LZ4_compressBound(Int32(n))))
                let c = dst.withUnsafeMutableBytes { d in
                    LZ4_compress_default(src.baseAddress!.advanced(by: done).assumingMemoryBound(to: CChar.self),
                                         d.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(n), Int32(d.count))
                }
                XCTAssertGreaterThan(c, 0)
                independent.append((Array(dst.prefix(Int(c))), false))
                done += n
            }
        }
        XCTAssertEqual(independent.count, 4)
        XCTAssertEqual(try Compression.decompress(kafkaFrame(flg: 0x60, blocks: independent), codec: .lz4), input)

        // 2. linked blocks (LZ4_compress_fast_continue: back-references into the previous block), FLG 0x40
        var linked: [([UInt8], Bool)] = []
        let stream = try XCTUnwrap(LZ4_createStream())
        defer { LZ4_freeStream(stream) }
        input.withUnsafeBytes { src in
            var done = 0
            while done < src.count {
                let n = min(65536, src.count - done)
                var dst = [UInt8](repeating: 0, count: Int(LZ4_compressBound(Int32(n))))
                let c = dst.withUnsafeMutableBytes { d in
                    LZ4_compress_fast_continue(stream, src.baseAddress!.advanced(by: done).assumingMemoryBound(to: CChar.self),
                                               d.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(n), Int32(d.count), 1)
                }
                XCTAssertGreaterThan(c, 0)
                linked.append((Array(dst.prefix(Int(c))), false))
                done += n
            }
        }
        let linkedFrame = kafkaFrame(flg: 0x40, blocks: linked)
        XCTAssertEqual(try Compression.decompress(linkedFrame, codec: .lz4), input)
        // the linked blocks really do refer back: decoded as independent blocks they are not the input
        XCTAssertNotEqual(try? Compression.decompress(kafkaFrame(flg: 0x60, blocks: [linked[1]]), codec: .lz4),
                          Array(input[65536..<131072]))

        // 3. a standard frame from liblz4's LZ4F_compressFrame (standard header checksum, linked blocks,
        //    block and content checksums, content size)
        var prefs = LZ4F_preferences_t()
        prefs.frameInfo.blockSizeID = LZ4F_max64KB
        prefs.frameInfo.blockMode = LZ4F_blockLinked
        prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled
        prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled
        prefs.frameInfo.contentSize = UInt64(input.count)
        for data in [input, [], [42]] {
            var frame = [UInt8](repeating: 0, count: LZ4F_compressFrameBound(data.count, &prefs))
            let n = frame.withUnsafeMutableBytes { d in
                data.withUnsafeBytes { s in LZ4F_compressFrame(d.baseAddress, d.count, s.baseAddress, s.count, &prefs) }
            }
            XCTAssertEqual(LZ4F_isError(n), 0)
            frame = Array(frame.prefix(n))
            XCTAssertEqual(try Compression.decompress(frame, codec: .lz4), data)
        }
    }

    func testLz4EdgeCasesRoundTrip() throws {
        func blocks(_ z: [UInt8]) -> [(size: Int, stored: Bool)] {
            var pos = 7, out: [(Int, Bool)] = []
            while true {
                let v = UInt32(z[pos]) | UInt32(z[pos + 1]) << 8 | UInt32(z[pos + 2]) << 16 | UInt32(z[pos + 3]) << 24
                pos += 4
                if v == 0 { break }
                out.append((Int(v & 0x7FFF_FFFF), v & 0x8000_0000 != 0))
                pos += Int(v & 0x7FFF_FFFF)
            }
            XCTAssertEqual(pos, z.count)
            return out
        }
        // empty: header + end mark only
        let empty = try Compression.compress([], codec: .lz4)
        XCTAssertEqual(empty.count, 11)
        XCTAssertEqual(try Compression.decompress(empty, codec: .lz4), [])
        // incompressible (random) over several blocks: every block stored, round-trips
        var rng = SystemRandomNumberGenerator()
        let random = (0..<(3 * 65536 + 123)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let rz = try Compression.compress(random, codec: .lz4)
        let rb = blocks(rz)
        XCTAssertEqual(rb.map(\.size), [65536, 65536, 65536, 123])
        XCTAssertTrue(rb.allSatisfy(\.stored))
        XCTAssertEqual(try Compression.decompress(rz, codec: .lz4), random)
        // multi-block compressible input, and sizes around the 64 KiB block boundary
        for n in [65535, 65536, 65537, 2 * 65536, 1_000_003] {
            let input = (0..<n).map { UInt8(truncatingIfNeeded: ($0 / 3) % 251) }
            let z = try Compression.compress(input, codec: .lz4)
            let b = blocks(z)
            XCTAssertEqual(b.count, (n + 65535) / 65536, "\(n)")
            XCTAssertFalse(b.contains { $0.stored && $0.size > 16 }, "\(n)")   // a 1-byte tail block is stored
            XCTAssertLessThan(z.count, n / 4, "\(n)")
            XCTAssertEqual(try Compression.decompress(z, codec: .lz4), input, "\(n)")
        }
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

    /// The ISA-L CRC agrees with a bit-by-bit CRC-32 (IEEE, reflected: java.util.zip.CRC32) at
    /// every length up to 300 and at every alignment, including the short tails its folding loop
    /// hands to a table.
    func testCRC32MatchesBitwiseReference() {
        func reference(_ bytes: ArraySlice<UInt8>) -> UInt32 {
            var crc: UInt32 = 0xFFFF_FFFF
            for b in bytes {
                crc ^= UInt32(b)
                for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
            }
            return ~crc
        }
        var rng = SystemRandomNumberGenerator()
        let data = (0..<320).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for start in 0..<8 {
            for length in 0...300 {
                let slice = data[start..<(start + length)]
                let got = slice.withUnsafeBytes { CRC32.checksum($0) }
                XCTAssertEqual(got, reference(slice), "start \(start), length \(length)")
            }
        }
    }
}
