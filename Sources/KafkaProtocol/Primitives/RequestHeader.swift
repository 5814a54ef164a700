import NIOCore

/// API keys served: a 0.8.2 broker's (0-10); beyond 0.8.2, 0.9's group membership (11-14,
/// GroupCoordination.swift) and ApiVersions (18), so that modern clients learn what is served.
public enum APIKey: Int16, Sendable, CaseIterable {
    case produce = 0
    case fetch = 1
    case offsets = 2
    case metadata = 3
    case leaderAndIsr = 4
    case stopReplica = 5
    case updateMetadata = 6
    case controlledShutdown = 7
    case offsetCommit = 8
    case offsetFetch = 9
    case consumerMetadata = 10
    case joinGroup = 11
    case heartbeat = 12
    case leaveGroup = 13
    case syncGroup = 14
    case apiVersions = 18
}

/// The common request header. ControlledShutdown v0 has no client id.
public struct RequestHeader: Sendable, Equatable {
    public var apiKey: Int16
    public var apiVersion: Int16
    public var correlationId: Int32
    public var clientId: String

    public init(apiKey: Int16, apiVersion: Int16 = 0, correlationId: Int32, clientId: String) {
        self.apiKey = apiKey
        self.apiVersion = apiVersion
        self.correlationId = correlationId
        self.clientId = clientId
    }

    public static func decode(from buf: inout ByteBuffer) throws -> RequestHeader {
        let key = try buf.readKafkaInt16()
        let version = try buf.readKafkaInt16()
        let corr = try buf.readKafkaInt32()
        let client = key == APIKey.controlledShutdown.rawValue ? "" : try buf.readKafkaNonNullString()
        return RequestHeader(apiKey: key, apiVersion: version, correlationId: corr, clientId: client)
    }

    public func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaInt16(apiKey)
        buf.writeKafkaInt16(apiVersion)
        buf.writeKafkaInt32(correlationId)
        if apiKey != APIKey.controlledShutdown.rawValue { buf.writeKafkaString(clientId) }
    }
}

/// A request body that can be framed by a client.
public protocol KafkaRequest: Sendable {
    static var apiKey: APIKey { get }
    var apiVersion: Int16 { get }
    func encode(into buf: inout ByteBuffer)
}

extension KafkaRequest {
    public var apiVersion: Int16 { 0 }

    /// The full frame: size prefix, header, body.
    public func frame(correlationId: Int32, clientId: String, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buf = allocator.buffer(capacity: 64)
        SizePrefixedFrame.write(into: &buf) { buf in
            RequestHeader(apiKey: Self.apiKey.rawValue, apiVersion: apiVersion, correlationId: correlationId, clientId: clientId).encode(into: &buf)
            encode(into: &buf)
        }
        return buf
    }
}

/// A response body (after the correlation id), encoded by the broker and decoded by clients.
public protocol KafkaResponse: Sendable {
    func encode(into buf: inout ByteBuffer)
}

/// Writes a response frame: size prefix, correlation id, body.
public enum ResponseFramer {
    /// The one place a typed response becomes bytes.
    public static func frame(correlationId: Int32, response: some KafkaResponse, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        frame(correlationId: correlationId, allocator: allocator) { response.encode(into: &$0) }
    }

    public static func frame(correlationId: Int32, allocator: ByteBufferAllocator = ByteBufferAllocator(), body: (inout ByteBuffer) -> Void) -> ByteBuffer {
        var buf = allocator.buffer(capacity: 64)
        SizePrefixedFrame.write(into: &buf) { buf in
            buf.writeKafkaInt32(correlationId)
            body(&buf)
        }
        return buf
    }
}
