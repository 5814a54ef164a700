import KafkaProtocol
import XCTest

/// A message whose CRC is valid but whose layout is not (trailing bytes, lengths that do not
/// fit, a magic byte other than 0) is refused with InvalidMessage instead of being stored.
final class MessageStructureTests: XCTestCase {
    /// Builds one log entry around `body` (magic, attributes, key, value bytes) with a correct CRC.
    func entry(_ body: [UInt8]) -> [UInt8] {
        let crc = body.withUnsafeBytes { CRC32.checksum($0) }
        let size = UInt32(4 + body.count)
        var out = [UInt8](repeating: 0, count: 8)
        out += withUnsafeBytes(of: size.bigEndian, Array.init)
        out += withUnsafeBytes(of: crc.bigEndian, Array.init)
        return out + body
    }

    func be32(_ v: Int32) -> [UInt8] { withUnsafeBytes(of: v.bigEndian, Array.init) }

    func expectInvalid(_ set: [UInt8], _ why: String) {
        XCTAssertThrowsError(try MessageSetValidator.validateAndAssignOffsets(set, firstOffset: 0, maxMessageBytes: 1_000_012), why) { e in
            XCTAssertEqual((e as? MessageSetError)?.errorCode, .invalidMessage, "\(why): \(e)")
        }
    }

    func testWellFormedMessagePasses() throws {
        let ok = entry([0, 0] + be32(1) + [65] + be32(2) + [66, 67])
        let v = try MessageSetValidator.validateAndAssignOffsets(ok, firstOffset: 7, maxMessageBytes: 1_000_012)
        XCTAssertEqual(v.lastOffset, 7)
        let null = entry([0, 0] + be32(-1) + be32(-1))
        XCTAssertNoThrow(try MessageSetValidator.validateAndAssignOffsets(null, firstOffset: 0, maxMessageBytes: 1_000_012))
    }

    func testBadLayoutsAreRefused() {
        expectInvalid(entry([0, 0] + be32(1) + [65] + be32(2) + [66, 67, 99]), "trailing byte after the value")
        expectInvalid(entry([0, 0] + be32(5) + [65] + be32(2) + [66, 67]), "key longer than the message")
        expectInvalid(entry([0, 0] + be32(-7) + be32(2) + [66, 67]), "negative key length")
        expectInvalid(entry([0, 0] + be32(1) + [65] + be32(9) + [66, 67]), "value longer than the message")
        expectInvalid(entry([0, 0] + be32(1) + [65] + be32(-3)), "negative value length")
        expectInvalid(entry([2, 0] + be32(1) + [65] + be32(2) + [66, 67]), "magic 2")
    }
}
