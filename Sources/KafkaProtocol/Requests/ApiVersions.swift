import NIOCore

/// ApiVersions (key 18). Not a Kafka 0.8.2 API (0.8.2 closes the connection on it): answered so
/// that clients which probe the broker's versions first (librdkafka's default
/// `api.version.request=true`, kafka-python without `api_version`) learn what this broker serves.
///
/// Layouts (apache/kafka `ApiVersionsRequest.json` / `ApiVersionsResponse.json`):
/// - request v0-v2: empty body, request header v1;
/// - request v3-v4: request header v2 (the v1 header, then tagged fields), then a flexible body:
///   `client_software_name` compact string, `client_software_version` compact string, tagged fields;
/// - response v0: `error_code int16, api_keys [api_key int16, min_version int16, max_version int16]`;
/// - response v1-v2: v0 then `throttle_time_ms int32`;
/// - response v3-v4: flexible: `error_code int16`, `api_keys` compact array whose entries end in
///   tagged fields, `throttle_time_ms int32`, tagged fields.
/// Responses to ApiVersions always use response header v0 (the correlation id alone), so a client
/// can read the error of a version it sent that the broker does not know.
public struct ApiVersionsRequest: KafkaRequest, Equatable {
    public static let apiKey = APIKey.apiVersions
    /// The versions this codec reads and answers.
    public static let versions: ClosedRange<Int16> = 0...4
    /// Versions from which the request (header included) is flexible.
    public static let firstFlexibleVersion: Int16 = 3

    public var apiVersion: Int16
    public var clientSoftwareName: String
    public var clientSoftwareVersion: String

    public init(version: Int16 = 0, clientSoftwareName: String = "", clientSoftwareVersion: String = "") {
        self.apiVersion = version
        self.clientSoftwareName = clientSoftwareName
        self.clientSoftwareVersion = clientSoftwareVersion
    }

    /// Decodes what follows the header's client id: for v3+ the header's tagged fields come first.
    public static func decode(from buf: inout ByteBuffer, version: Int16) throws -> ApiVersionsRequest {
        guard versions.contains(version) else { throw ProtocolError("ApiVersions version \(version) not supported") }
        guard version >= firstFlexibleVersion else { return ApiVersionsRequest(version: version) }
        try buf.skipKafkaTaggedFields()                     // request header v2
        let name = try buf.readKafkaCompactString() ?? ""
        let softwareVersion = try buf.readKafkaCompactString() ?? ""
        try buf.skipKafkaTaggedFields()                     // body
        return ApiVersionsRequest(version: version, clientSoftwareName: name, clientSoftwareVersion: softwareVersion)
    }

    /// Writes what follows the header's client id (for v3+ the empty header tagged fields first).
    public func encode(into buf: inout ByteBuffer) {
        guard apiVersion >= Self.firstFlexibleVersion else { return }
        buf.writeKafkaUnsignedVarint(0)
        buf.writeKafkaCompactString(clientSoftwareName)
        buf.writeKafkaCompactString(clientSoftwareVersion)
        buf.writeKafkaUnsignedVarint(0)
    }
}

public struct ApiVersionsResponse: KafkaResponse, Equatable {
    public struct ApiVersion: Sendable, Equatable {
        public var apiKey: Int16
        public var minVersion: Int16
        public var maxVersion: Int16
        public init(apiKey: Int16, minVersion: Int16, maxVersion: Int16) {
            self.apiKey = apiKey
            self.minVersion = minVersion
            self.maxVersion = maxVersion
        }
    }

    /// The layout version the response is written in (the request's version, or 0 for the
    /// UNSUPPORTED_VERSION answer to a version this broker does not know).
    public var version: Int16
    public var error: Int16
    public var apiKeys: [ApiVersion]
    public var throttleTimeMs: Int32

    /// Kafka's UNSUPPORTED_VERSION (35): beyond 0.8.2's error codes, used only in ApiVersions.
    public static let unsupportedVersionError: Int16 = 35

    public init(version: Int16, error: Int16 = 0, apiKeys: [ApiVersion], throttleTimeMs: Int32 = 0) {
        self.version = version
        self.error = error
        self.apiKeys = apiKeys
        self.throttleTimeMs = throttleTimeMs
    }

    /// What a real broker answers to an ApiVersions version it does not know: a v0 response with
    /// UNSUPPORTED_VERSION and the ApiVersions versions it does serve, so the client retries with one.
    public static func unsupportedVersion(served: ClosedRange<Int16> = ApiVersionsRequest.versions) -> ApiVersionsResponse {
        ApiVersionsResponse(version: 0, error: unsupportedVersionError,
                            apiKeys: [ApiVersion(apiKey: APIKey.apiVersions.rawValue, minVersion: served.lowerBound, maxVersion: served.upperBound)])
    }

    public func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaInt16(error)
        if version >= ApiVersionsRequest.firstFlexibleVersion {
            buf.writeKafkaUnsignedVarint(UInt32(apiKeys.count + 1))
            for k in apiKeys {
                buf.writeKafkaInt16(k.apiKey)
                buf.writeKafkaInt16(k.minVersion)
                buf.writeKafkaInt16(k.maxVersion)
                buf.writeKafkaUnsignedVarint(0)
            }
            buf.writeKafkaInt32(throttleTimeMs)
            buf.writeKafkaUnsignedVarint(0)
            return
        }
        buf.writeKafkaArray(apiKeys) { b, k in
            b.writeKafkaInt16(k.apiKey)
            b.writeKafkaInt16(k.minVersion)
            b.writeKafkaInt16(k.maxVersion)
        }
        if version >= 1 { buf.writeKafkaInt32(throttleTimeMs) }
    }

    /// Decodes a response body written in `version`'s layout (clients, tests).
    public static func decode(from buf: inout ByteBuffer, version: Int16) throws -> ApiVersionsResponse {
        let error = try buf.readKafkaInt16()
        var keys: [ApiVersion] = []
        if version >= ApiVersionsRequest.firstFlexibleVersion {
            let n = try buf.readKafkaUnsignedVarint()
            guard n > 0 else { throw ProtocolError("ApiVersions response with a null api_keys array") }
            let count = Int(n - 1)
            guard count * 7 <= buf.readableBytes else { throw ProtocolError("api_keys count \(count) exceeds remaining \(buf.readableBytes) bytes") }
            for _ in 0..<count {
                keys.append(ApiVersion(apiKey: try buf.readKafkaInt16(), minVersion: try buf.readKafkaInt16(), maxVersion: try buf.readKafkaInt16()))
                try buf.skipKafkaTaggedFields()
            }
            let throttle = try buf.readKafkaInt32()
            try buf.skipKafkaTaggedFields()
            return ApiVersionsResponse(version: version, error: error, apiKeys: keys, throttleTimeMs: throttle)
        }
        keys = try buf.readKafkaArray(minElementSize: 6) { b in
            ApiVersion(apiKey: try b.readKafkaInt16(), minVersion: try b.readKafkaInt16(), maxVersion: try b.readKafkaInt16())
        }
        let throttle = version >= 1 ? try buf.readKafkaInt32() : 0
        return ApiVersionsResponse(version: version, error: error, apiKeys: keys, throttleTimeMs: throttle)
    }
}

// MARK: Flexible-version primitives (KIP-482), used only by ApiVersions v3+.

extension ByteBuffer {
    /// Unsigned LEB128 varint of at most 5 bytes (32 bits).
    public mutating func readKafkaUnsignedVarint() throws -> UInt32 {
        var value: UInt32 = 0
        var shift: UInt32 = 0
        while true {
            guard let byte = readInteger(as: UInt8.self) else { throw ProtocolError("truncated varint") }
            if shift == 28 && byte & 0xF0 != 0 { throw ProtocolError("varint longer than 32 bits") }
            value |= UInt32(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
    }

    public mutating func writeKafkaUnsignedVarint(_ v: UInt32) {
        var v = v
        while v >= 0x80 {
            writeInteger(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        writeInteger(UInt8(v))
    }

    /// Compact string: unsigned varint length + 1 (0 is null), then UTF-8.
    public mutating func readKafkaCompactString() throws -> String? {
        let n = try readKafkaUnsignedVarint()
        if n == 0 { return nil }
        let len = Int(n - 1)
        guard len <= Int(Int16.max) else { throw ProtocolError("compact string length \(len) over 32767") }
        guard let s = readString(length: len) else { throw ProtocolError("truncated compact string of length \(len)") }
        return s
    }

    public mutating func writeKafkaCompactString(_ s: String?) {
        guard let s else { writeKafkaUnsignedVarint(0); return }
        writeKafkaUnsignedVarint(UInt32(s.utf8.count + 1))
        writeString(s)
    }

    /// Tagged fields: a count, then per field its tag, size and bytes. Skipped (none is known here).
    public mutating func skipKafkaTaggedFields() throws {
        let count = try readKafkaUnsignedVarint()
        guard Int(count) * 2 <= readableBytes else { throw ProtocolError("tagged field count \(count) exceeds remaining \(readableBytes) bytes") }
        var previous: Int64 = -1
        for _ in 0..<count {
            let tag = Int64(try readKafkaUnsignedVarint())
            guard tag > previous else { throw ProtocolError("tagged fields out of order (tag \(tag) after \(previous))") }
            previous = tag
            let size = Int(try readKafkaUnsignedVarint())
            guard size <= readableBytes else { throw ProtocolError("tagged field \(tag) of \(size) bytes exceeds remaining \(readableBytes) bytes") }
            moveReaderIndex(forwardBy: size)
        }
    }
}
