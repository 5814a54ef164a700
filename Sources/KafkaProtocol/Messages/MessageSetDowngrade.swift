import NIOCore

/// Kafka 0.10's message format v1 (magic 1) rewritten as 0.8's magic 0, for produced sets.
///
/// A client that learned this broker's versions through ApiVersions (kafka-python 2.1+ without
/// `api_version`) takes the broker for at least 0.10.0 and writes magic-1 messages: after the
/// attributes an 8-byte timestamp, bit 3 of the attributes the timestamp type, and inside a
/// compressed wrapper inner offsets relative to the wrapper. The log keeps 0.8.2's format, so such a
/// set is converted before validation, as a 0.10 broker does with `log.message.format.version=0.8`:
/// the timestamp is dropped, the attributes keep the codec bits, the CRC is computed again, and a
/// compressed wrapper is decompressed, its inner messages converted, and compressed again with the
/// same codec (the validator then assigns offsets as for any compressed set).
///
/// Only messages with magic 1, a valid CRC and a layout that fits are converted; anything else is
/// copied unchanged, so the validator rejects it exactly as before (InvalidMessage).
/// 0.8 clients never send magic 1: for them the cost is one byte read per produced set.
public enum MessageSetDowngrade {
    /// Magic-1 messages carry an 8-byte timestamp between attributes and key.
    static let timestampBytes = 8

    /// Whether the set's first entry is a magic-1 message (clients write one magic per set).
    @inlinable
    public static func startsWithMagic1(_ set: ByteBuffer) -> Bool {
        guard set.readableBytes > MessageFormat.magicFieldOffset else { return false }
        return set.getInteger(at: set.readerIndex + MessageFormat.magicFieldOffset, as: UInt8.self) == 1
    }

    /// `set` with its magic-1 entries converted to magic 0; unchanged when it starts with magic 0.
    public static func downgradeIfNeeded(_ set: ByteBuffer, maxDecompressedBytes: Int = Compression.defaultMaxDecompressedBytes) -> ByteBuffer {
        guard startsWithMagic1(set) else { return set }
        let bytes = set.getBytes(at: set.readerIndex, length: set.readableBytes) ?? []
        return ByteBuffer(bytes: toMagic0(bytes, maxDecompressedBytes: maxDecompressedBytes))
    }

    /// Every top-level magic-1 entry of `set` converted to magic 0 (see the type's description).
    public static func toMagic0(_ set: [UInt8], maxDecompressedBytes: Int = Compression.defaultMaxDecompressedBytes) -> [UInt8] {
        var budget = maxDecompressedBytes
        return set.withUnsafeBytes { convert($0, depth: 0, budget: &budget) }
    }

    private static func convert(_ p: UnsafeRawBufferPointer, depth: Int, budget: inout Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(p.count)
        var pos = 0
        let n = p.count
        while n - pos >= MessageFormat.logOverhead {
            let size = Int(BE.i32(p, pos + MessageFormat.sizeFieldOffset))
            guard size >= MessageFormat.minMessageSize, n - pos - MessageFormat.logOverhead >= size else { break }
            let entry = MessageFormat.logOverhead + size
            if let converted = convertEntry(UnsafeRawBufferPointer(rebasing: p[pos..<(pos + entry)]), depth: depth, budget: &budget) {
                out.append(contentsOf: converted)
            } else {
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[pos..<(pos + entry)]))
            }
            pos += entry
        }
        // A bad or incomplete rest is kept for the validator to judge.
        if pos < n { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[pos..<n])) }
        return out
    }

    /// One complete entry (12-byte header included) as magic 0, or nil to keep it as it is.
    private static func convertEntry(_ e: UnsafeRawBufferPointer, depth: Int, budget: inout Int) -> [UInt8]? {
        guard e[MessageFormat.magicFieldOffset] == 1 else { return nil }
        let crcStart = MessageFormat.magicFieldOffset
        guard BE.u32(e, MessageFormat.crcFieldOffset) == CRC32.checksum(UnsafeRawBufferPointer(rebasing: e[crcStart...])) else { return nil }
        let attributes = e[MessageFormat.attributesFieldOffset]
        guard let codec = CompressionCodec(attributes: attributes) else { return nil }
        // key length, key, value length, value after the timestamp; they must fill the entry exactly.
        var cur = MessageFormat.keyLengthFieldOffset + timestampBytes
        guard e.count >= cur + 8 else { return nil }
        let keyLength = Int(BE.i32(e, cur))
        cur += 4
        guard keyLength >= -1, keyLength <= e.count - cur - 4 else { return nil }
        let key: [UInt8]? = keyLength >= 0 ? Array(UnsafeRawBufferPointer(rebasing: e[cur..<(cur + keyLength)])) : nil
        cur += max(keyLength, 0)
        let valueLength = Int(BE.i32(e, cur))
        cur += 4
        guard valueLength >= -1, cur + max(valueLength, 0) == e.count else { return nil }
        var value: [UInt8]? = valueLength >= 0 ? Array(UnsafeRawBufferPointer(rebasing: e[cur..<(cur + valueLength)])) : nil
        if codec != .none {
            guard depth < 16, let compressed = value,
                  let inner = try? Compression.decompress(compressed, codec: codec, maxSize: budget) else { return nil }
            budget -= inner.count
            let converted = inner.withUnsafeBytes { convert($0, depth: depth + 1, budget: &budget) }
            guard let again = try? Compression.compress(converted, codec: codec) else { return nil }
            value = again
        }
        var out: [UInt8] = []
        MessageSetBuilder.appendMessage(to: &out, offset: BE.i64(e, 0), key: key, value: value,
                                        attributes: attributes & CompressionCodec.attributeMask)
        return out
    }
}
