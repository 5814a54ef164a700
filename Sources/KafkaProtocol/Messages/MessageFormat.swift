/// Layout constants of a Kafka 0.8 (magic 0) log entry:
/// `offset int64, message_size int32, crc uint32, magic int8, attributes int8, key bytes, value bytes`.
public enum MessageFormat {
    /// offset (8) + message_size (4).
    public static let logOverhead = 12
    /// crc + magic + attributes + key length + value length.
    public static let minMessageSize = 14
    /// Relative to the entry start.
    public static let sizeFieldOffset = 8
    public static let crcFieldOffset = 12
    public static let magicFieldOffset = 16
    public static let attributesFieldOffset = 17
    public static let keyLengthFieldOffset = 18
    public static let currentMagic: UInt8 = 0

    /// Size of a message (without the 12-byte entry header) with the given key and value sizes.
    @inlinable
    public static func messageSize(keyCount: Int?, valueCount: Int?) -> Int {
        minMessageSize + (keyCount ?? 0) + (valueCount ?? 0)
    }
}

/// Everything that can be wrong with a message set. `errorCode` is the 0.8.2 code the broker answers with.
public enum MessageSetError: Error, Sendable, Equatable, CustomStringConvertible {
    /// message_size < 14 (code 2, InvalidMessage).
    case messageTooSmall(position: Int, size: Int)
    /// 12 + message_size > max message bytes (code 10, MessageSizeTooLarge).
    case messageTooLarge(position: Int, entrySize: Int, maxMessageBytes: Int)
    /// Stored CRC differs from the computed one (code 2, InvalidMessage).
    case crcMismatch(position: Int, stored: UInt32, computed: UInt32)
    /// Attributes carry a codec 4-7 (code -1, Unknown, as 0.8.2's UnknownCodecException).
    case unknownCodec(position: Int, attributes: UInt8)
    /// A codec this build does not implement (code -1, Unknown).
    case unsupportedCodec(position: Int, codec: CompressionCodec)
    /// Key/value lengths inconsistent with the message size, or a compressed wrapper without a value (code 2).
    case malformedMessage(position: Int, reason: String)
    /// A compressed wrapper whose value cannot be decompressed (code 2, InvalidMessage).
    /// (0.8.2 itself surfaces this as an I/O error; the broker maps it to InvalidMessage.)
    case corruptCompressedData(position: Int, codec: CompressionCodec, reason: String)
    /// Decompressed data exceeds the configured limit (code 10, MessageSizeTooLarge).
    case decompressedTooLarge(position: Int, limit: Int)
    /// Follower append with offsets not strictly increasing, or starting below the log end (code -1).
    case offsetsNotIncreasing(position: Int, previous: Int64, offset: Int64)
    /// The whole set exceeds the segment size (code 18, MessageSetSizeTooLarge).
    case messageSetTooLarge(size: Int, segmentBytes: Int)
    /// A message without a key sent to a compacted topic (code 2, InvalidMessage).
    case missingKey(position: Int)
    /// Compressing the rebuilt set failed (code -1).
    case compressionFailed(codec: CompressionCodec)

    public var errorCode: ErrorCode {
        switch self {
        case .messageTooSmall, .crcMismatch, .malformedMessage, .corruptCompressedData, .missingKey: return .invalidMessage
        case .messageTooLarge, .decompressedTooLarge: return .messageSizeTooLarge
        case .unknownCodec, .unsupportedCodec, .offsetsNotIncreasing, .compressionFailed: return .unknown
        case .messageSetTooLarge: return .messageSetSizeTooLarge
        }
    }

    public var description: String {
        switch self {
        case let .messageTooSmall(p, s): return "message at byte \(p) has size \(s), smaller than the minimum 14"
        case let .messageTooLarge(p, e, m): return "message at byte \(p) is \(e) bytes with its 12-byte header, larger than the maximum \(m)"
        case let .crcMismatch(p, s, c): return "message at byte \(p) is corrupt (stored crc = \(s), computed crc = \(c))"
        case let .unknownCodec(p, a): return "message at byte \(p) has unknown compression codec \(a & 0x07)"
        case let .unsupportedCodec(p, c): return "message at byte \(p) uses unsupported compression codec \(c)"
        case let .malformedMessage(p, r): return "message at byte \(p) is malformed: \(r)"
        case let .corruptCompressedData(p, c, r): return "compressed (\(c)) message at byte \(p) cannot be decompressed: \(r)"
        case let .decompressedTooLarge(p, l): return "compressed message at byte \(p) decompresses to more than \(l) bytes"
        case let .offsetsNotIncreasing(p, prev, o): return "out of order offsets: \(o) at byte \(p) after \(prev)"
        case let .messageSetTooLarge(s, seg): return "message set of \(s) bytes is larger than the segment size \(seg)"
        case let .missingKey(p): return "message at byte \(p) has no key: compacted topic cannot accept message without key"
        case let .compressionFailed(c): return "\(c) compression failed"
        }
    }

    static func from(_ e: CompressionError, position: Int, codec: CompressionCodec) -> MessageSetError {
        switch e {
        case let .corrupt(_, reason): return .corruptCompressedData(position: position, codec: codec, reason: reason)
        case let .tooLarge(_, limit): return .decompressedTooLarge(position: position, limit: limit)
        case .unsupported: return .unsupportedCodec(position: position, codec: codec)
        case .compressionFailed: return .compressionFailed(codec: codec)
        }
    }
}

/// Internal helpers shared by the validator, decoder and builder.
public enum MessageParsing {
    /// Byte range of the value inside a message that starts at `msg` (the crc field) and is `size` long.
    /// nil range = null value. Also returns the key range.
    @inline(__always)
    static func keyValueRanges(_ p: UnsafeRawBufferPointer, message msg: Int, size: Int, position: Int)
        throws(MessageSetError) -> (key: Range<Int>?, value: Range<Int>?)
    {
        let end = msg + size
        var cur = msg + 6
        let keyLen = Int(BE.i32(p, cur))
        cur += 4
        var key: Range<Int>? = nil
        if keyLen >= 0 {
            guard keyLen <= end - cur - 4 else {
                throw .malformedMessage(position: position, reason: "key length \(keyLen) exceeds the message size \(size)")
            }
            key = cur..<(cur + keyLen)
            cur += keyLen
        } else if keyLen != -1 {
            throw .malformedMessage(position: position, reason: "negative key length \(keyLen)")
        }
        let valueLen = Int(BE.i32(p, cur))
        cur += 4
        var value: Range<Int>? = nil
        if valueLen >= 0 {
            guard valueLen <= end - cur else {
                throw .malformedMessage(position: position, reason: "value length \(valueLen) exceeds the message size \(size)")
            }
            value = cur..<(cur + valueLen)
        } else if valueLen != -1 {
            throw .malformedMessage(position: position, reason: "negative value length \(valueLen)")
        }
        return (key, value)
    }
}

extension MessageParsing {
    /// Key/value ranges of the entry at the start of `entry` (12-byte header included), for other modules.
    public static func keyValueRangesPublic(_ entry: UnsafeRawBufferPointer, size: Int) throws(MessageSetError)
        -> (key: Range<Int>?, value: Range<Int>?)
    {
        try keyValueRanges(entry, message: 12, size: size, position: 0)
    }
}
