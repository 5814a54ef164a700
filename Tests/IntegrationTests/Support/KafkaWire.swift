import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// A deliberately small, independent Kafka 0.8 wire client (v0 Metadata, Produce, Fetch, Offsets)
// over a blocking socket. The integration tests use it to check the broker byte for byte without
// going through the project's own KafkaClient, and to send malformed frames.

/// close(2), under a name that `WireConnection.close()` does not shadow.
private func closeDescriptor(_ fd: Int32) {
    #if canImport(Glibc)
    _ = Glibc.close(fd)
    #else
    _ = Darwin.close(fd)
    #endif
}

struct WireError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Big-endian writer for request bodies.
struct WireWriter {
    var bytes: [UInt8] = []

    mutating func int8(_ v: Int8) { bytes.append(UInt8(bitPattern: v)) }
    mutating func int16(_ v: Int16) { append(UInt16(bitPattern: v)) }
    mutating func int32(_ v: Int32) { append(UInt32(bitPattern: v)) }
    mutating func int64(_ v: Int64) { append(UInt64(bitPattern: v)) }
    mutating func string(_ s: String?) {
        guard let s else { int16(-1); return }
        let u = Array(s.utf8)
        int16(Int16(u.count))
        bytes += u
    }
    mutating func bytesField(_ b: [UInt8]?) {
        guard let b else { int32(-1); return }
        int32(Int32(b.count))
        bytes += b
    }
    mutating func raw(_ b: [UInt8]) { bytes += b }

    private mutating func append<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.bigEndian) { bytes += $0 }
    }
}

/// Big-endian reader for responses.
struct WireReader {
    let bytes: [UInt8]
    var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - position }

    mutating func int8() throws -> Int8 { Int8(bitPattern: try take(1)[0]) }
    mutating func int16() throws -> Int16 { Int16(bitPattern: UInt16(try integer(2))) }
    mutating func int32() throws -> Int32 { Int32(bitPattern: UInt32(try integer(4))) }
    mutating func int64() throws -> Int64 { Int64(bitPattern: try integer(8)) }
    mutating func string() throws -> String? {
        let n = Int(try int16())
        if n < 0 { return nil }
        return String(decoding: try take(n), as: UTF8.self)
    }
    mutating func bytesField() throws -> [UInt8]? {
        let n = Int(try int32())
        if n < 0 { return nil }
        return try take(n)
    }
    mutating func take(_ n: Int) throws -> [UInt8] {
        guard n >= 0, remaining >= n else {
            throw WireError("short response: wanted \(n) bytes at \(position), have \(remaining)")
        }
        defer { position += n }
        return Array(bytes[position..<position + n])
    }
    private mutating func integer(_ n: Int) throws -> UInt64 {
        try take(n).reduce(0) { $0 << 8 | UInt64($1) }
    }
}

/// zlib's CRC-32 (the message checksum of Kafka 0.8).
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}

struct WireMessage: Equatable, CustomStringConvertible {
    var offset: Int64
    var key: String?
    var value: String?
    var attributes: Int8 = 0

    var description: String { "\(offset):\(key ?? "null"):\(value ?? "null")" }
}

enum MessageSetCodec {
    /// One uncompressed magic-0 message per (key, value), offsets 0, 1, ... (the broker assigns real ones).
    static func encode(_ messages: [(key: String?, value: String?)], corruptCRC: Bool = false) -> [UInt8] {
        var set = WireWriter()
        for (i, m) in messages.enumerated() {
            var body = WireWriter()
            body.int8(0)   // magic
            body.int8(0)   // attributes: no compression
            body.bytesField(m.key.map { Array($0.utf8) })
            body.bytesField(m.value.map { Array($0.utf8) })
            set.raw(entry(offset: Int64(i), body: body.bytes, crcXor: corruptCRC ? 0xDEAD_BEEF : 0))
        }
        return set.bytes
    }

    /// One log entry around a message body (magic, attributes, ...): offset, size, the body's CRC
    /// (xor `crcXor`, to corrupt it), body.
    static func entry(offset: Int64, body: [UInt8], crcXor: UInt32 = 0) -> [UInt8] {
        var w = WireWriter()
        w.int64(offset)
        w.int32(Int32(4 + body.count))
        w.int32(Int32(bitPattern: CRC32.checksum(body) ^ crcXor))
        w.raw(body)
        return w.bytes
    }

    /// Decodes a fetched message set; a partial trailing message is ignored (as Kafka clients do).
    /// Throws on a CRC mismatch. Compressed wrappers are returned as they are (attributes != 0).
    static func decode(_ bytes: [UInt8]) throws -> [WireMessage] {
        var r = WireReader(bytes)
        var out: [WireMessage] = []
        while r.remaining >= 12 {
            let offset = try r.int64()
            let size = Int(try r.int32())
            guard size >= 14, r.remaining >= size else { break }   // partial last message
            var m = WireReader(try r.take(size))
            let crc = UInt32(bitPattern: try m.int32())
            let rest = Array(m.bytes[4...])
            guard CRC32.checksum(rest) == crc else {
                throw WireError("CRC mismatch in fetched message at offset \(offset)")
            }
            let magic = try m.int8()
            guard magic == 0 else { throw WireError("message at offset \(offset) has magic \(magic), expected 0") }
            let attributes = try m.int8()
            let key = try m.bytesField().map { String(decoding: $0, as: UTF8.self) }
            let value = try m.bytesField().map { String(decoding: $0, as: UTF8.self) }
            out.append(WireMessage(offset: offset, key: key, value: value, attributes: attributes))
        }
        return out
    }
}

struct MetadataResponse {
    struct Broker: Equatable { var id: Int32; var host: String; var port: Int32 }
    struct Partition { var error: Int16; var id: Int32; var leader: Int32; var replicas: [Int32]; var isr: [Int32] }
    struct Topic { var error: Int16; var name: String; var partitions: [Partition] }
    var brokers: [Broker]
    var topics: [Topic]

    func topic(_ name: String) -> Topic? { topics.first { $0.name == name } }
}

struct FetchResult {
    var error: Int16
    var highWatermark: Int64
    var messages: [WireMessage]
    var messageSetSize: Int
}

/// One TCP connection to a broker.
final class WireConnection {
    let host: String
    let port: Int
    private var fd: Int32
    private var nextCorrelationId: Int32 = 1

    /// Connects with a send/receive timeout of `timeout` seconds.
    init(host: String = "127.0.0.1", port: Int, timeout: Double = 10) throws {
        self.host = host
        self.port = port
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw WireError("socket: \(String(cString: strerror(errno)))") }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        inet_pton(AF_INET, host, &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 {
            let msg = String(cString: strerror(errno))
            closeDescriptor(fd)
            fd = -1
            throw WireError("connect \(host):\(port): \(msg)")
        }
    }

    deinit { close() }

    func close() {
        if fd >= 0 {
            closeDescriptor(fd)
            fd = -1
        }
    }

    // MARK: raw frames

    /// Writes bytes as they are (no size prefix added).
    func sendRaw(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw WireError("send: \(String(cString: strerror(errno)))") }
            off += n
        }
    }

    /// Sends one request frame: size, api key, version, correlation id, client id, body.
    func sendRequest(apiKey: Int16, apiVersion: Int16 = 0, correlationId: Int32? = nil,
                     clientId: String? = "swift-integration-test", body: [UInt8]) throws -> Int32 {
        let cid = correlationId ?? nextId()
        var w = WireWriter()
        w.int16(apiKey)
        w.int16(apiVersion)
        w.int32(cid)
        w.string(clientId)
        w.raw(body)
        var frame = WireWriter()
        frame.int32(Int32(w.bytes.count))
        frame.raw(w.bytes)
        try sendRaw(frame.bytes)
        return cid
    }

    /// Reads one size-prefixed response frame; returns (correlation id, rest).
    func receiveResponse() throws -> (correlationId: Int32, body: WireReader) {
        let sizeBytes = try readExactly(4)
        let size = Int(Int32(bitPattern: sizeBytes.reduce(0) { $0 << 8 | UInt32($1) }))
        guard size >= 4, size < 512 * 1024 * 1024 else { throw WireError("bad response size \(size)") }
        var r = WireReader(try readExactly(size))
        let cid = try r.int32()
        return (cid, r)
    }

    /// Waits up to the socket timeout for the peer to close the connection. True when it did
    /// (EOF or reset); false when data arrived instead or the wait timed out.
    func waitForClose() -> (closed: Bool, detail: String) {
        var buf = [UInt8](repeating: 0, count: 4096)
        var received = 0
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return (true, "EOF after \(received) bytes") }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == ECONNRESET || errno == EPIPE { return (true, "reset after \(received) bytes") }
                if errno == EAGAIN || errno == EWOULDBLOCK { return (false, "still open (timed out) after \(received) bytes") }
                return (true, "error \(String(cString: strerror(errno)))")
            }
            received += n
        }
    }

    private func readExactly(_ n: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n)
        var got = 0
        while got < n {
            let r = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, n - got, 0) }
            if r < 0 && errno == EINTR { continue }
            if r == 0 { throw WireError("connection closed by the broker") }
            if r < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK { throw WireError("timed out waiting for a response") }
                throw WireError("recv: \(String(cString: strerror(errno)))")
            }
            got += r
        }
        return out
    }

    private func nextId() -> Int32 {
        defer { nextCorrelationId &+= 1 }
        return nextCorrelationId
    }

    private func roundTrip(apiKey: Int16, body: [UInt8]) throws -> WireReader {
        let cid = try sendRequest(apiKey: apiKey, body: body)
        let (got, reader) = try receiveResponse()
        guard got == cid else { throw WireError("correlation id \(got) in the response to request \(cid)") }
        return reader
    }

    // MARK: requests

    static func metadataBody(_ topics: [String]) -> [UInt8] {
        var w = WireWriter()
        w.int32(Int32(topics.count))
        for t in topics { w.string(t) }
        return w.bytes
    }

    static func decodeMetadata(_ reader: WireReader) throws -> MetadataResponse {
        var r = reader
        var brokers: [MetadataResponse.Broker] = []
        for _ in 0..<Int(try r.int32()) {
            brokers.append(.init(id: try r.int32(), host: try r.string() ?? "", port: try r.int32()))
        }
        var topics: [MetadataResponse.Topic] = []
        for _ in 0..<Int(try r.int32()) {
            let error = try r.int16()
            let name = try r.string() ?? ""
            var parts: [MetadataResponse.Partition] = []
            for _ in 0..<Int(try r.int32()) {
                let pe = try r.int16()
                let id = try r.int32()
                let leader = try r.int32()
                var replicas: [Int32] = []
                for _ in 0..<Int(try r.int32()) { replicas.append(try r.int32()) }
                var isr: [Int32] = []
                for _ in 0..<Int(try r.int32()) { isr.append(try r.int32()) }
                parts.append(.init(error: pe, id: id, leader: leader, replicas: replicas, isr: isr))
            }
            topics.append(.init(error: error, name: name, partitions: parts.sorted { $0.id < $1.id }))
        }
        return MetadataResponse(brokers: brokers, topics: topics)
    }

    func metadata(_ topics: [String] = []) throws -> MetadataResponse {
        try Self.decodeMetadata(try roundTrip(apiKey: 3, body: Self.metadataBody(topics)))
    }

    static func produceBody(topic: String, partition: Int32, messageSet: [UInt8], acks: Int16, timeoutMs: Int32) -> [UInt8] {
        var w = WireWriter()
        w.int16(acks)
        w.int32(timeoutMs)
        w.int32(1)
        w.string(topic)
        w.int32(1)
        w.int32(partition)
        w.int32(Int32(messageSet.count))
        w.raw(messageSet)
        return w.bytes
    }

    /// Produce with acks 1 (or -1); returns (error code, base offset).
    func produce(topic: String, partition: Int32 = 0, messages: [(key: String?, value: String?)],
                 acks: Int16 = 1, timeoutMs: Int32 = 10_000, corruptCRC: Bool = false) throws -> (error: Int16, offset: Int64) {
        precondition(acks != 0, "acks=0 has no response: use sendRequest")
        let set = MessageSetCodec.encode(messages, corruptCRC: corruptCRC)
        var r = try roundTrip(apiKey: 0, body: Self.produceBody(topic: topic, partition: partition, messageSet: set,
                                                               acks: acks, timeoutMs: timeoutMs))
        guard try r.int32() == 1, try r.string() == topic, try r.int32() == 1, try r.int32() == partition else {
            throw WireError("produce response does not echo \(topic)/\(partition)")
        }
        let error = try r.int16()
        let offset = try r.int64()
        return (error, offset)
    }

    /// `replicaId`: -1 a consumer, -2 the debugging consumer (served by any replica).
    static func fetchBody(replicaId: Int32 = -1, topic: String, partition: Int32, offset: Int64, maxBytes: Int32,
                          maxWaitMs: Int32, minBytes: Int32) -> [UInt8] {
        var w = WireWriter()
        w.int32(replicaId)
        w.int32(maxWaitMs)
        w.int32(minBytes)
        w.int32(1)
        w.string(topic)
        w.int32(1)
        w.int32(partition)
        w.int64(offset)
        w.int32(maxBytes)
        return w.bytes
    }

    func fetch(replicaId: Int32 = -1, topic: String, partition: Int32 = 0, offset: Int64, maxBytes: Int32 = 1 << 20,
               maxWaitMs: Int32 = 100, minBytes: Int32 = 0) throws -> FetchResult {
        var r = try roundTrip(apiKey: 1, body: Self.fetchBody(replicaId: replicaId, topic: topic, partition: partition, offset: offset,
                                                             maxBytes: maxBytes, maxWaitMs: maxWaitMs, minBytes: minBytes))
        guard try r.int32() == 1, try r.string() == topic, try r.int32() == 1, try r.int32() == partition else {
            throw WireError("fetch response does not echo \(topic)/\(partition)")
        }
        let error = try r.int16()
        let hw = try r.int64()
        let set = try r.bytesField() ?? []
        return FetchResult(error: error, highWatermark: hw, messages: try MessageSetCodec.decode(set), messageSetSize: set.count)
    }

    /// Every message from `from` up to the high watermark (several fetches if needed).
    func fetchAll(topic: String, partition: Int32 = 0, from: Int64 = 0) throws -> [WireMessage] {
        var out: [WireMessage] = []
        var next = from
        for _ in 0..<1000 {
            let f = try fetch(topic: topic, partition: partition, offset: next)
            guard f.error == 0 else { throw WireError("fetch \(topic)/\(partition) at \(next): error \(f.error)") }
            let fresh = f.messages.filter { $0.offset >= next }
            out += fresh
            if let last = fresh.last { next = last.offset + 1 }
            if next >= f.highWatermark || fresh.isEmpty { break }
        }
        return out
    }

    /// Offsets request (time -1 latest, -2 earliest).
    func offsets(topic: String, partition: Int32 = 0, time: Int64, maxNumber: Int32 = 1) throws -> (error: Int16, offsets: [Int64]) {
        var w = WireWriter()
        w.int32(-1)
        w.int32(1)
        w.string(topic)
        w.int32(1)
        w.int32(partition)
        w.int64(time)
        w.int32(maxNumber)
        var r = try roundTrip(apiKey: 2, body: w.bytes)
        guard try r.int32() == 1, try r.string() == topic, try r.int32() == 1, try r.int32() == partition else {
            throw WireError("offsets response does not echo \(topic)/\(partition)")
        }
        let error = try r.int16()
        var offsets: [Int64] = []
        for _ in 0..<Int(try r.int32()) { offsets.append(try r.int64()) }
        return (error, offsets)
    }
}
