import NIOCore

/// A request or response that does not follow the wire format. The broker answers it by
/// closing the connection, as Kafka 0.8.2 does.
public struct ProtocolError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Big-endian Kafka primitives over NIO's ByteBuffer.
extension ByteBuffer {
    @inlinable public mutating func readKafkaInt8() throws -> Int8 {
        guard let v = readInteger(as: Int8.self) else { throw ProtocolError("truncated int8") }
        return v
    }
    @inlinable public mutating func readKafkaInt16() throws -> Int16 {
        guard let v = readInteger(endianness: .big, as: Int16.self) else { throw ProtocolError("truncated int16") }
        return v
    }
    @inlinable public mutating func readKafkaInt32() throws -> Int32 {
        guard let v = readInteger(endianness: .big, as: Int32.self) else { throw ProtocolError("truncated int32") }
        return v
    }
    @inlinable public mutating func readKafkaInt64() throws -> Int64 {
        guard let v = readInteger(endianness: .big, as: Int64.self) else { throw ProtocolError("truncated int64") }
        return v
    }

    /// int16 length + UTF-8; -1 is null.
    public mutating func readKafkaString() throws -> String? {
        let len = try readKafkaInt16()
        if len == -1 { return nil }
        guard len >= 0 else { throw ProtocolError("negative string length \(len)") }
        guard let s = readString(length: Int(len)) else { throw ProtocolError("truncated string of length \(len)") }
        return s
    }

    /// A string field that Kafka requires to be present; null reads as "".
    public mutating func readKafkaNonNullString() throws -> String { try readKafkaString() ?? "" }

    /// int32 length + bytes; -1 is null. The result is a slice sharing storage (no copy).
    public mutating func readKafkaBytes() throws -> ByteBuffer? {
        let len = try readKafkaInt32()
        if len == -1 { return nil }
        guard len >= 0 else { throw ProtocolError("negative bytes length \(len)") }
        guard let s = readSlice(length: Int(len)) else { throw ProtocolError("truncated bytes of length \(len)") }
        return s
    }

    /// int32 count then elements. A negative count is rejected; the count is sanity-checked
    /// against the bytes left so a hostile count cannot make us reserve huge arrays.
    public mutating func readKafkaArray<T>(minElementSize: Int = 1, _ element: (inout ByteBuffer) throws -> T) throws -> [T] {
        let count = try readKafkaInt32()
        guard count >= 0 else { throw ProtocolError("negative array count \(count)") }
        guard Int(count) * max(minElementSize, 1) <= readableBytes else {
            throw ProtocolError("array count \(count) exceeds remaining \(readableBytes) bytes")
        }
        var out: [T] = []
        // A count that fits the bytes can still ask for far more memory than the request holds
        // (an element in memory is larger than its smallest encoding): grow as elements arrive.
        out.reserveCapacity(min(Int(count), 1024))
        for _ in 0..<count { out.append(try element(&self)) }
        return out
    }

    public mutating func readKafkaInt32Array() throws -> [Int32] {
        try readKafkaArray(minElementSize: 4) { try $0.readKafkaInt32() }
    }

    @inlinable public mutating func writeKafkaInt8(_ v: Int8) { writeInteger(v) }
    @inlinable public mutating func writeKafkaInt16(_ v: Int16) { writeInteger(v, endianness: .big) }
    @inlinable public mutating func writeKafkaInt32(_ v: Int32) { writeInteger(v, endianness: .big) }
    @inlinable public mutating func writeKafkaInt64(_ v: Int64) { writeInteger(v, endianness: .big) }

    public mutating func writeKafkaString(_ s: String?) {
        guard let s else { writeKafkaInt16(-1); return }
        let lenIndex = writerIndex
        writeKafkaInt16(0)
        let n = writeString(s)
        setInteger(Int16(truncatingIfNeeded: n), at: lenIndex, endianness: .big)
    }

    public mutating func writeKafkaBytes(_ b: [UInt8]?) {
        guard let b else { writeKafkaInt32(-1); return }
        writeKafkaInt32(Int32(b.count))
        writeBytes(b)
    }

    public mutating func writeKafkaBytes(_ b: ByteBuffer?) {
        guard var b else { writeKafkaInt32(-1); return }
        writeKafkaInt32(Int32(b.readableBytes))
        writeBuffer(&b)
    }

    public mutating func writeKafkaArray<T>(_ items: [T], _ element: (inout ByteBuffer, T) -> Void) {
        writeKafkaInt32(Int32(items.count))
        for item in items { element(&self, item) }
    }

    public mutating func writeKafkaInt32Array(_ items: [Int32]) {
        writeKafkaArray(items) { $0.writeKafkaInt32($1) }
    }
}
