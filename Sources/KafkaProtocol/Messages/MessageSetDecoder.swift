/// One message read from a message set.
public struct DecodedMessage: Sendable, Equatable {
    /// The entry's offset (for inner messages of a wrapper: the inner offset, absolute in 0.8).
    public var offset: Int64
    /// Byte position of the top-level entry this message came from.
    public var position: Int
    public var crc: UInt32
    public var crcValid: Bool
    public var magic: UInt8
    public var attributes: UInt8
    public var key: [UInt8]?
    public var value: [UInt8]?
    /// True for messages taken out of a compressed wrapper.
    public var isInner: Bool
    /// 12 + message_size.
    public var entrySize: Int

    public var codec: CompressionCodec? { CompressionCodec(attributes: attributes) }
}

/// A top-level entry, without copying its payload.
public struct ShallowEntry: Sendable, Equatable {
    public var offset: Int64
    public var position: Int
    /// message_size (the entry occupies 12 + size bytes).
    public var size: Int
}

/// Client-side message set reading (fetch responses, dump tools, tests).
public enum MessageSetDecoder {

    /// Decodes `bytes`. A partial trailing entry (a fetch may end mid-message) ends the set quietly.
    /// With `deep`, compressed wrappers with a valid CRC are replaced by their (recursively decompressed)
    /// inner messages; a wrapper with a bad CRC is returned as is, flagged `crcValid == false`.
    public static func decode(_ bytes: UnsafeRawBufferPointer, deep: Bool = true,
                              maxDecompressedBytes: Int = Compression.defaultMaxDecompressedBytes)
        throws(MessageSetError) -> [DecodedMessage]
    {
        var out: [DecodedMessage] = []
        try decode(bytes, deep: deep, inner: false, wrapperPosition: nil, depth: 0, limit: maxDecompressedBytes, into: &out)
        return out
    }

    public static func decode(_ bytes: [UInt8], deep: Bool = true,
                              maxDecompressedBytes: Int = Compression.defaultMaxDecompressedBytes)
        throws(MessageSetError) -> [DecodedMessage]
    {
        do {
            return try withBytes(bytes) { (p) throws(MessageSetError) -> [DecodedMessage] in
                try decode(p, deep: deep, maxDecompressedBytes: maxDecompressedBytes)
            }
        }
    }

    /// Top-level entries, stopping quietly at a partial trailing entry; a size < 14 is an error.
    public static func shallowEntries(_ p: UnsafeRawBufferPointer) throws(MessageSetError) -> [ShallowEntry] {
        var out: [ShallowEntry] = []
        var pos = 0
        while p.count - pos >= MessageFormat.logOverhead {
            let size = Int(BE.i32(p, pos + 8))
            if size < MessageFormat.minMessageSize { throw .messageTooSmall(position: pos, size: size) }
            if p.count - pos - MessageFormat.logOverhead < size { break }
            out.append(ShallowEntry(offset: BE.i64(p, pos), position: pos, size: size))
            pos += MessageFormat.logOverhead + size
        }
        return out
    }

    public static func shallowEntries(_ bytes: [UInt8]) throws(MessageSetError) -> [ShallowEntry] {
        do {
            return try withBytes(bytes) { (p) throws(MessageSetError) -> [ShallowEntry] in try shallowEntries(p) }
        }
    }

    /// Length of the prefix made of complete entries, and the offset of the last one
    /// (a consumer's next fetch offset is that + 1).
    public static func completePrefix(_ p: UnsafeRawBufferPointer) -> (validBytes: Int, lastOffset: Int64?) {
        var pos = 0
        var last: Int64? = nil
        while p.count - pos >= MessageFormat.logOverhead {
            let size = Int(BE.i32(p, pos + 8))
            if size < MessageFormat.minMessageSize || p.count - pos - MessageFormat.logOverhead < size { break }
            last = BE.i64(p, pos)
            pos += MessageFormat.logOverhead + size
        }
        return (pos, last)
    }

    private static func decode(_ p: UnsafeRawBufferPointer, deep: Bool, inner: Bool, wrapperPosition: Int?,
                               depth: Int, limit: Int, into out: inout [DecodedMessage]) throws(MessageSetError)
    {
        var pos = 0
        while p.count - pos >= MessageFormat.logOverhead {
            let position = wrapperPosition ?? pos
            let offset = BE.i64(p, pos)
            let size = Int(BE.i32(p, pos + 8))
            if size < MessageFormat.minMessageSize { throw .messageTooSmall(position: position, size: size) }
            if p.count - pos - MessageFormat.logOverhead < size { break }
            let entry = MessageFormat.logOverhead + size
            let stored = BE.u32(p, pos + 12)
            let computed = CRC32.checksum(UnsafeRawBufferPointer(rebasing: p[(pos + 16)..<(pos + entry)]))
            let attributes = p[pos + 17]
            let kv = try MessageParsing.keyValueRanges(p, message: pos + 12, size: size, position: position)
            let codec = CompressionCodec(attributes: attributes)
            if deep, stored == computed, let codec, codec != .none {
                guard let v = kv.value else {
                    throw .malformedMessage(position: position, reason: "compressed message without a value")
                }
                if depth > 16 { throw .malformedMessage(position: position, reason: "compressed messages nested too deeply") }
                let data: [UInt8]
                do {
                    data = try Compression.decompress(UnsafeRawBufferPointer(rebasing: p[v]), codec: codec, maxSize: limit)
                } catch {
                    throw MessageSetError.from(error, position: position, codec: codec)
                }
                try withBytes(data) { (d) throws(MessageSetError) in
                    try decode(d, deep: true, inner: true, wrapperPosition: position, depth: depth + 1, limit: limit, into: &out)
                }
            } else {
                out.append(DecodedMessage(
                    offset: offset, position: position, crc: stored, crcValid: stored == computed,
                    magic: p[pos + 16], attributes: attributes,
                    key: kv.key.map { Array(UnsafeRawBufferPointer(rebasing: p[$0])) },
                    value: kv.value.map { Array(UnsafeRawBufferPointer(rebasing: p[$0])) },
                    isInner: inner, entrySize: entry))
            }
            pos += entry
        }
    }
}

/// Builds message sets the way 0.8.2 producers do.
public enum MessageSetBuilder {
    /// Plain entries with offsets `firstOffset...` (codec none), or one wrapper whose inner offsets are
    /// `firstOffset..<firstOffset+n` and whose own offset is the last inner offset.
    public static func build(_ messages: [(key: [UInt8]?, value: [UInt8]?)], codec: CompressionCodec = .none,
                             firstOffset: Int64 = 0) throws(MessageSetError) -> [UInt8]
    {
        var plain: [UInt8] = []
        var total = 0
        for m in messages { total += MessageFormat.logOverhead + MessageFormat.messageSize(keyCount: m.key?.count, valueCount: m.value?.count) }
        plain.reserveCapacity(total)
        var offset = firstOffset
        for m in messages {
            appendMessage(to: &plain, offset: offset, key: m.key, value: m.value)
            offset += 1
        }
        if codec == .none || messages.isEmpty { return plain }
        let compressed: [UInt8]
        do {
            compressed = try Compression.compress(plain, codec: codec)
        } catch {
            throw MessageSetError.from(error, position: 0, codec: codec)
        }
        var out: [UInt8] = []
        appendMessage(to: &out, offset: offset - 1, key: nil, value: compressed, attributes: UInt8(codec.rawValue))
        return out
    }

    /// Appends one log entry (offset, size, crc, magic 0, attributes, key, value) to `out`.
    public static func appendMessage(to out: inout [UInt8], offset: Int64, key: [UInt8]?, value: [UInt8]?,
                                     attributes: UInt8 = 0)
    {
        let size = MessageFormat.messageSize(keyCount: key?.count, valueCount: value?.count)
        let start = out.count
        BE.append64(&out, offset)
        BE.append32(&out, Int32(size))
        BE.appendU32(&out, 0)   // crc, filled below
        out.append(MessageFormat.currentMagic)
        out.append(attributes)
        if let key {
            BE.append32(&out, Int32(key.count))
            out.append(contentsOf: key)
        } else {
            BE.append32(&out, -1)
        }
        if let value {
            BE.append32(&out, Int32(value.count))
            out.append(contentsOf: value)
        } else {
            BE.append32(&out, -1)
        }
        out.withUnsafeMutableBytes { m in
            let crc = CRC32.checksum(UnsafeRawBufferPointer(rebasing: m[(start + 16)..<(start + 12 + size)]))
            m.storeBytes(of: crc.bigEndian, toByteOffset: start + 12, as: UInt32.self)
        }
    }

    /// The message bytes (crc .. value) alone, without the 12-byte entry header.
    public static func encodeMessage(key: [UInt8]?, value: [UInt8]?, attributes: UInt8 = 0) -> [UInt8] {
        var out: [UInt8] = []
        appendMessage(to: &out, offset: 0, key: key, value: value, attributes: attributes)
        return Array(out[12...])
    }
}
