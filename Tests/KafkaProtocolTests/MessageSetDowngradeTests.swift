import KafkaProtocol
import NIOCore
import XCTest

/// Magic-1 (Kafka 0.10) produced sets rewritten as 0.8's magic 0 before validation.
final class MessageSetDowngradeTests: XCTestCase {
    private func be<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }

    /// A magic-1 log entry: offset, size, crc, magic 1, attributes, timestamp, key, value.
    private func magic1(offset: Int64, key: String?, value: [UInt8]?, attributes: UInt8 = 0, timestamp: Int64 = 1_700_000_000_000) -> [UInt8] {
        var body: [UInt8] = [1, attributes] + be(timestamp)
        body += key.map { be(Int32($0.utf8.count)) + Array($0.utf8) } ?? be(Int32(-1))
        body += value.map { be(Int32($0.count)) + $0 } ?? be(Int32(-1))
        let crc = body.withUnsafeBytes { CRC32.checksum($0) }
        return be(offset) + be(Int32(4 + body.count)) + be(crc) + body
    }

    private func deep(_ set: [UInt8]) throws -> [String] {
        let v = try MessageSetValidator.validateAndAssignOffsets(set, firstOffset: 100, maxMessageBytes: 1_000_000)
        return try MessageSetDecoder.decode(v.bytes, deep: true).map { m in
            "\(m.offset) m\(m.magic) \(m.key.map { String(decoding: $0, as: UTF8.self) } ?? "null")=\(m.value.map { String(decoding: $0, as: UTF8.self) } ?? "null")"
        }
    }

    func testPlainMessagesLoseTheirTimestamp() throws {
        let set = magic1(offset: 0, key: "k", value: Array("v1".utf8)) + magic1(offset: 1, key: nil, value: Array("v2".utf8), attributes: 0x08)
        XCTAssertThrowsError(try MessageSetValidator.analyze(set, maxMessageBytes: 1_000_000), "magic 1 is refused as it is")
        let out = MessageSetDowngrade.toMagic0(set)
        XCTAssertEqual(out.count, set.count - 16, "8 timestamp bytes fewer per message")
        XCTAssertEqual(try deep(out), ["100 m0 k=v1", "101 m0 null=v2"])
    }

    func testCompressedWrappersAreRebuiltWithTheirCodec() throws {
        for codec in [CompressionCodec.gzip, .snappy, .lz4] {
            // Inner offsets relative to the wrapper, as 0.10 producers write them.
            let inner = magic1(offset: 0, key: "a", value: Array("one".utf8)) + magic1(offset: 1, key: "b", value: Array("two".utf8))
            let wrapper = magic1(offset: 1, key: nil, value: try Compression.compress(inner, codec: codec), attributes: UInt8(codec.rawValue))
            let out = MessageSetDowngrade.toMagic0(wrapper)
            let shallow = try MessageSetDecoder.decode(out, deep: false)
            XCTAssertEqual(shallow.map(\.magic), [0], "\(codec)")
            XCTAssertEqual(shallow.first.map { $0.attributes & 0x07 }, UInt8(codec.rawValue), "\(codec)")
            XCTAssertEqual(try deep(out), ["100 m0 a=one", "101 m0 b=two"], "\(codec)")
        }
    }

    func testWhatCannotBeConvertedIsLeftForTheValidator() throws {
        // Magic 0 sets are returned as they are (and downgradeIfNeeded does not copy them).
        let plain = try MessageSetBuilder.build([(key: Array("k".utf8), value: Array("v".utf8))])
        XCTAssertEqual(MessageSetDowngrade.toMagic0(plain), plain)
        var buf = ByteBuffer(bytes: plain)
        XCTAssertFalse(MessageSetDowngrade.startsWithMagic1(buf))
        XCTAssertEqual(Array(MessageSetDowngrade.downgradeIfNeeded(buf).readableBytesView), plain)
        buf = ByteBuffer(bytes: magic1(offset: 0, key: nil, value: [1]))
        XCTAssertTrue(MessageSetDowngrade.startsWithMagic1(buf))

        // A bad CRC stays magic 1 with its bytes, so the validator refuses it (InvalidMessage).
        var bad = magic1(offset: 0, key: nil, value: Array("x".utf8))
        bad[bad.count - 1] ^= 0xFF
        XCTAssertEqual(MessageSetDowngrade.toMagic0(bad), bad)
        XCTAssertThrowsError(try MessageSetValidator.analyze(MessageSetDowngrade.toMagic0(bad), maxMessageBytes: 1_000_000))
        // A wrapper whose value does not decompress stays as it is.
        let junk = magic1(offset: 0, key: nil, value: [1, 2, 3, 4], attributes: 1)
        XCTAssertEqual(MessageSetDowngrade.toMagic0(junk), junk)
        // A trailing partial entry is kept after the converted ones (the validator drops it).
        let ok = magic1(offset: 0, key: nil, value: Array("y".utf8))
        let partial = Array(ok.prefix(10))
        let out = MessageSetDowngrade.toMagic0(ok + partial)
        XCTAssertEqual(Array(out.suffix(10)), partial)
        XCTAssertEqual(try deep(out), ["100 m0 null=y"])
        // Garbage never traps.
        for n in 0..<64 { _ = MessageSetDowngrade.toMagic0((0..<n).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 1) }) }
    }
}
