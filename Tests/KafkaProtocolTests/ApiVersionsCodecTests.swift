import Foundation
import KafkaProtocol
import NIOCore
import XCTest

/// ApiVersions (key 18) v0-v4 and the group APIs (keys 11-14) v0: layouts checked byte by byte
/// against Kafka's message definitions, and the probes recorded from kcat, kafka-python 2.0.2 and
/// kafka-python 3.0.12.
final class ApiVersionsCodecTests: XCTestCase {
    private func buffer(_ bytes: [UInt8]) -> ByteBuffer {
        var b = ByteBufferAllocator().buffer(capacity: bytes.count)
        b.writeBytes(bytes)
        return b
    }

    private func hex(_ s: String) -> [UInt8] { Fixtures.hex(s) }

    /// Header and body of a recorded frame (size prefix dropped).
    private func recorded(_ file: String) throws -> (RequestHeader, ByteBuffer) {
        var b = buffer(Array(try Fixtures.frame(file).dropFirst(4)))
        let h = try RequestHeader.decode(from: &b)
        return (h, b)
    }

    func testRecordedProbesDecode() throws {
        // kafka-python 2.0.2's auto-detection: v0, empty body.
        var (h, body) = try recorded("kafka-python-2.0.2-autodetect__ApiVersions_v0__probe.bin")
        XCTAssertEqual(h.apiKey, APIKey.apiVersions.rawValue)
        XCTAssertEqual(h.apiVersion, 0)
        XCTAssertEqual(h.clientId, "kafka-python-2.0.2")
        XCTAssertEqual(try ApiVersionsRequest.decode(from: &body, version: 0), ApiVersionsRequest(version: 0))
        XCTAssertEqual(body.readableBytes, 0)

        // librdkafka 2.0.2 (kcat without -X): v3, header v2 with tagged fields, flexible body.
        (h, body) = try recorded("kcat-1.7.1-noflags__ApiVersions_v3__list-noflags.bin")
        XCTAssertEqual(h.apiVersion, 3)
        XCTAssertEqual(h.clientId, "rdkafka")
        let bodyBytes = Array(body.readableBytesView)
        let kcat = try ApiVersionsRequest.decode(from: &body, version: 3)
        XCTAssertEqual(kcat, ApiVersionsRequest(version: 3, clientSoftwareName: "librdkafka", clientSoftwareVersion: "2.0.2"))
        XCTAssertEqual(body.readableBytes, 0)
        var again = ByteBufferAllocator().buffer(capacity: 32)
        kcat.encode(into: &again)
        XCTAssertEqual(Array(again.readableBytesView), bodyBytes)

        // kafka-python 3.0.12: v4 (the same layout as v3).
        (h, body) = try recorded("kafka-python-3.0.12-autodetect__ApiVersions_v4__probe.bin")
        XCTAssertEqual(h.apiVersion, 4)
        XCTAssertEqual(try ApiVersionsRequest.decode(from: &body, version: 4),
                       ApiVersionsRequest(version: 4, clientSoftwareName: "kafka-python", clientSoftwareVersion: "3.0.12"))
        XCTAssertEqual(body.readableBytes, 0)
    }

    func testRequestVersionsOneAndTwoHaveEmptyBodies() throws {
        for v: Int16 in 0...2 {
            var out = ByteBufferAllocator().buffer(capacity: 8)
            ApiVersionsRequest(version: v, clientSoftwareName: "ignored").encode(into: &out)
            XCTAssertEqual(out.readableBytes, 0, "v\(v)")
            var empty = buffer([])
            XCTAssertEqual(try ApiVersionsRequest.decode(from: &empty, version: v).apiVersion, v)
        }
        var b = buffer([])
        XCTAssertThrowsError(try ApiVersionsRequest.decode(from: &b, version: 5))
        XCTAssertThrowsError(try ApiVersionsRequest.decode(from: &b, version: -1))
    }

    func testFlexibleRequestTaggedFieldsAndBadInput() throws {
        // Header tagged fields: 2 fields (tag 0, 3 bytes; tag 5, 0 bytes), then the body, whose own
        // tagged fields hold one field (tag 1, 1 byte).
        var b = buffer([0x02, 0x00, 0x03, 0xAA, 0xBB, 0xCC, 0x05, 0x00,
                        0x02, 0x61, 0x02, 0x31, 0x01, 0x01, 0x01, 0xFF])
        XCTAssertEqual(try ApiVersionsRequest.decode(from: &b, version: 3),
                       ApiVersionsRequest(version: 3, clientSoftwareName: "a", clientSoftwareVersion: "1"))
        XCTAssertEqual(b.readableBytes, 0)
        // Every strict prefix of a valid v3 body is refused, never a trap.
        let full: [UInt8] = [0x00, 0x0b] + Array("librdkafka".utf8) + [0x06] + Array("2.0.2".utf8) + [0x00]
        for cut in 0..<full.count {
            var p = buffer(Array(full.prefix(cut)))
            XCTAssertThrowsError(try ApiVersionsRequest.decode(from: &p, version: 3), "cut at \(cut)")
        }
        // Tags out of order, a tagged field longer than the rest, a varint over 32 bits, a string
        // length past the end.
        for bad: [UInt8] in [[0x02, 0x05, 0x00, 0x01, 0x00, 0x01, 0x01, 0x00],
                             [0x01, 0x00, 0x7F, 0x00],
                             [0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
                             [0x00, 0x40, 0x61]] {
            var p = buffer(bad)
            XCTAssertThrowsError(try ApiVersionsRequest.decode(from: &p, version: 3), "\(bad)")
        }
    }

    func testVarintRoundTrip() throws {
        for v: UInt32 in [0, 1, 127, 128, 300, 16_383, 16_384, 2_097_151, 268_435_455, 268_435_456, UInt32.max] {
            var b = ByteBufferAllocator().buffer(capacity: 8)
            b.writeKafkaUnsignedVarint(v)
            XCTAssertEqual(try b.readKafkaUnsignedVarint(), v)
            XCTAssertEqual(b.readableBytes, 0)
        }
        var b = buffer([0xAC, 0x02])      // 300
        XCTAssertEqual(try b.readKafkaUnsignedVarint(), 300)
    }

    private let keys = [ApiVersionsResponse.ApiVersion(apiKey: 0, minVersion: 0, maxVersion: 0),
                        ApiVersionsResponse.ApiVersion(apiKey: 18, minVersion: 0, maxVersion: 4)]

    func testResponseLayouts() throws {
        // v0: error, int32 count, (key, min, max)*.
        var b = ByteBufferAllocator().buffer(capacity: 64)
        ApiVersionsResponse(version: 0, apiKeys: keys).encode(into: &b)
        XCTAssertEqual(Array(b.readableBytesView), hex("0000" + "00000002" + "000000000000" + "001200000004"))
        // v1 and v2: v0 then throttle_time_ms.
        for v: Int16 in [1, 2] {
            b.clear()
            ApiVersionsResponse(version: v, apiKeys: keys, throttleTimeMs: 7).encode(into: &b)
            XCTAssertEqual(Array(b.readableBytesView), hex("0000" + "00000002" + "000000000000" + "001200000004" + "00000007"), "v\(v)")
        }
        // v3 and v4: compact array (count + 1), a tagged-field count after each entry, throttle,
        // then the body's tagged fields.
        for v: Int16 in [3, 4] {
            b.clear()
            ApiVersionsResponse(version: v, apiKeys: keys).encode(into: &b)
            XCTAssertEqual(Array(b.readableBytesView), hex("0000" + "03" + "00000000000000" + "00120000000400" + "00000000" + "00"), "v\(v)")
        }
        // Each version decodes back.
        for v: Int16 in 0...4 {
            b.clear()
            let r = ApiVersionsResponse(version: v, apiKeys: keys, throttleTimeMs: v >= 1 ? 3 : 0)
            r.encode(into: &b)
            XCTAssertEqual(try ApiVersionsResponse.decode(from: &b, version: v), r, "v\(v)")
            XCTAssertEqual(b.readableBytes, 0, "v\(v)")
        }
    }

    func testUnsupportedVersionAnswerIsV0WithError35() throws {
        let r = ApiVersionsResponse.unsupportedVersion()
        var b = ByteBufferAllocator().buffer(capacity: 16)
        r.encode(into: &b)
        XCTAssertEqual(Array(b.readableBytesView), hex("0023" + "00000001" + "001200000004"))
    }

    func testGroupRequestsRoundTrip() throws {
        func check<R: KafkaRequest & Equatable>(_ r: R, _ decode: (inout ByteBuffer) throws -> R) throws {
            var b = ByteBufferAllocator().buffer(capacity: 64)
            r.encode(into: &b)
            XCTAssertEqual(try decode(&b), r)
            XCTAssertEqual(b.readableBytes, 0)
        }
        try check(JoinGroupRequest(groupId: "G", sessionTimeoutMs: 45_000, memberId: "", protocolType: "consumer",
                                   protocols: [.init(name: "range", metadata: [0, 0, 0, 0, 0, 1]), .init(name: "roundrobin", metadata: [])]),
                  JoinGroupRequest.decode)
        try check(SyncGroupRequest(groupId: "G", generationId: 3, memberId: "m-1", assignments: [.init(memberId: "m-1", assignment: [1, 2])]),
                  SyncGroupRequest.decode)
        try check(HeartbeatRequest(groupId: "G", generationId: 3, memberId: "m-1"), HeartbeatRequest.decode)
        try check(LeaveGroupRequest(groupId: "G", memberId: "m-1"), LeaveGroupRequest.decode)

        // JoinGroup v0 byte layout: group, session timeout, member, protocol type, [name, bytes].
        var b = ByteBufferAllocator().buffer(capacity: 64)
        JoinGroupRequest(groupId: "G", sessionTimeoutMs: 6000, memberId: "", protocolType: "consumer",
                         protocols: [.init(name: "range", metadata: [9])]).encode(into: &b)
        XCTAssertEqual(Array(b.readableBytesView),
                       hex("000147" + "00001770" + "0000" + "0008" + Array("consumer".utf8).map { String(format: "%02x", $0) }.joined()
                           + "00000001" + "0005" + Array("range".utf8).map { String(format: "%02x", $0) }.joined() + "0000000109"))
    }

    func testGroupResponsesRoundTrip() throws {
        let join = JoinGroupResponse(error: 0, generationId: 2, protocolName: "range", leaderId: "a", memberId: "a",
                                     members: [.init(memberId: "a", metadata: [1]), .init(memberId: "b", metadata: [])])
        var b = ByteBufferAllocator().buffer(capacity: 64)
        join.encode(into: &b)
        XCTAssertEqual(try JoinGroupResponse.decode(from: &b), join)
        b.clear()
        SyncGroupResponse(error: 27).encode(into: &b)
        XCTAssertEqual(Array(b.readableBytesView), [0x00, 0x1B, 0, 0, 0, 0])
        XCTAssertEqual(try SyncGroupResponse.decode(from: &b), SyncGroupResponse(error: 27))
        b.clear()
        GroupErrorResponse(error: 25).encode(into: &b)
        XCTAssertEqual(try GroupErrorResponse.decode(from: &b), GroupErrorResponse(error: 25))
    }
}
