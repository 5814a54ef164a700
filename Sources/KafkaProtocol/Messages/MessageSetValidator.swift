/// Result of a shallow walk over a message set (0.8.2 `Log.analyzeAndValidateMessageSet`).
public struct MessageSetInfo: Sendable, Equatable {
    /// Bytes of complete top-level entries; an incomplete trailing entry is not counted.
    public var validBytes: Int
    /// Number of complete top-level entries.
    public var shallowCount: Int
    /// Offset field of the first and last top-level entries as found in the set (-1 when empty).
    public var firstOffset: Int64
    public var lastOffset: Int64
    /// Whether the top-level offsets are strictly increasing.
    public var offsetsMonotonic: Bool
    /// Codec of the last compressed top-level entry, `.none` when there is none.
    public var codec: CompressionCodec
}

/// A validated message set ready to be written to the log.
public struct ValidatedMessageSet: Sendable {
    /// The bytes to append (the input with offsets rewritten, or a single new compressed wrapper).
    /// Empty when `inCallerMemory`.
    public var bytes: [UInt8]
    /// From the variants that work on the caller's memory (`assignOffsets(in:)`,
    /// `validateKeepingOffsets(in:)`): the bytes to append are that memory's first `validBytes`,
    /// not `bytes`.
    public var inCallerMemory = false
    /// First and last offsets of the appended messages (for a set with no messages: first = start, last = start - 1).
    public var firstOffset: Int64
    public var lastOffset: Int64
    /// Messages in the set: the inner (deep) count when recompressed, the top-level count otherwise.
    public var messageCount: Int
    /// Top-level entries in `bytes`.
    public var shallowCount: Int
    /// Codec of the result (`.none` for plain sets).
    public var codec: CompressionCodec
    /// Bytes of the input that were accepted (the trailing partial entry, if any, is dropped).
    public var validBytes: Int
}

/// Leader/follower validation of produced message sets, exactly as 0.8.2 `Log.append` does it.
public enum MessageSetValidator {

    /// Shallow walk: sizes, CRCs of top-level entries, codecs; stops quietly at an incomplete trailing entry.
    /// Allocation-free.
    /// With `requireKeys` (compacted topics) an uncompressed message without a key is rejected (InvalidMessage).
    public static func analyze(_ p: UnsafeRawBufferPointer, maxMessageBytes: Int, requireKeys: Bool = false) throws(MessageSetError) -> MessageSetInfo {
        var pos = 0
        var count = 0
        var first: Int64 = -1
        var last: Int64 = -1
        var monotonic = true
        var codec = CompressionCodec.none
        let n = p.count
        while n - pos >= MessageFormat.logOverhead {
            let offset = BE.i64(p, pos)
            let size = Int(BE.i32(p, pos + 8))
            if size < MessageFormat.minMessageSize { throw .messageTooSmall(position: pos, size: size) }
            if n - pos - MessageFormat.logOverhead < size { break }
            let entry = MessageFormat.logOverhead + size
            if entry > maxMessageBytes {
                throw .messageTooLarge(position: pos, entrySize: entry, maxMessageBytes: maxMessageBytes)
            }
            let stored = BE.u32(p, pos + 12)
            let computed = CRC32.checksum(UnsafeRawBufferPointer(rebasing: p[(pos + 16)..<(pos + entry)]))
            if stored != computed { throw .crcMismatch(position: pos, stored: stored, computed: computed) }
            let attributes = p[pos + 17]
            guard let c = CompressionCodec(attributes: attributes) else {
                throw .unknownCodec(position: pos, attributes: attributes)
            }
            // Structure: magic 0, and key + value lengths that fill the message exactly, so a
            // message with a valid CRC but a bad layout cannot poison the partition for readers.
            if p[pos + 16] != 0 { throw .malformedMessage(position: pos, reason: "magic byte \(p[pos + 16]) (only 0 is supported)") }
            let keyLength = Int(BE.i32(p, pos + 18))
            let valueLengthAt = 22 + max(keyLength, 0)            // relative to the entry start
            guard keyLength >= -1, valueLengthAt + 4 <= entry else {
                throw .malformedMessage(position: pos, reason: "key length \(keyLength) does not fit message size \(size)")
            }
            let valueLength = Int(BE.i32(p, pos + valueLengthAt))
            guard valueLength >= -1, valueLengthAt + 4 + max(valueLength, 0) == entry else {
                throw .malformedMessage(position: pos, reason: "key length \(keyLength) and value length \(valueLength) do not fill message size \(size)")
            }
            if c != .none { codec = c } else if requireKeys && BE.i32(p, pos + 18) < 0 {
                throw .missingKey(position: pos)
            }
            if count == 0 { first = offset }
            if last >= offset && count > 0 { monotonic = false }
            last = offset
            count += 1
            pos += entry
        }
        return MessageSetInfo(validBytes: pos, shallowCount: count, firstOffset: count > 0 ? first : -1,
                              lastOffset: count > 0 ? last : -1, offsetsMonotonic: monotonic, codec: codec)
    }

    public static func analyze(_ set: [UInt8], maxMessageBytes: Int, requireKeys: Bool = false) throws(MessageSetError) -> MessageSetInfo {
        do {
            return try withBytes(set) { (p) throws(MessageSetError) -> MessageSetInfo in
                try analyze(p, maxMessageBytes: maxMessageBytes, requireKeys: requireKeys)
            }
        }
    }

    /// Leader append (`assignOffsets = true`): validates `set`, then gives it offsets `firstOffset...`.
    /// Uncompressed sets get their offset fields overwritten (no per-message allocation); sets with
    /// any compressed entry are deeply decompressed and rebuilt as ONE wrapper with the last codec seen.
    public static func validateAndAssignOffsets(_ set: [UInt8], firstOffset: Int64, maxMessageBytes: Int,
                                                maxDecompressedBytes: Int = Compression.defaultMaxDecompressedBytes,
                                                requireKeys: Bool = false)
        throws(MessageSetError) -> ValidatedMessageSet
    {
        var copy = set
        let info = try analyze(copy, maxMessageBytes: maxMessageBytes, requireKeys: requireKeys)
        var v = try withMutableBytes(&copy) { (m) throws(MessageSetError) -> ValidatedMessageSet in
            try assignOffsets(in: m, info: info, firstOffset: firstOffset, maxMessageBytes: maxMessageBytes,
                              maxDecompressedBytes: maxDecompressedBytes, requireKeys: requireKeys)
        }
        if v.inCallerMemory {
            copy.removeLast(copy.count - info.validBytes)
            v.bytes = copy
            v.inCallerMemory = false
        }
        return v
    }

    /// Second half of the leader append, for a set already checked by `analyze` (which gave `info`),
    /// in the caller's memory: an uncompressed set gets its offsets written there (the result is
    /// `inCallerMemory`, nothing is copied); a compressed one is rebuilt as one new wrapper.
    /// On error the offsets may be partly rewritten.
    public static func assignOffsets(in m: UnsafeMutableRawBufferPointer, info: MessageSetInfo, firstOffset: Int64,
                                     maxMessageBytes: Int,
                                     maxDecompressedBytes: Int = Compression.defaultMaxDecompressedBytes,
                                     requireKeys: Bool = false)
        throws(MessageSetError) -> ValidatedMessageSet
    {
        if info.codec == .none {
            var pos = 0
            var next = firstOffset
            while pos < info.validBytes {
                BE.put64(m, pos, next)
                next += 1
                pos += MessageFormat.logOverhead + Int(BE.i32(UnsafeRawBufferPointer(m), pos + 8))
            }
            return ValidatedMessageSet(bytes: [], inCallerMemory: true, firstOffset: firstOffset,
                                       lastOffset: firstOffset + Int64(info.shallowCount) - 1,
                                       messageCount: info.shallowCount, shallowCount: info.shallowCount,
                                       codec: .none, validBytes: info.validBytes)
        }
        // Compressed: flatten everything, recompress into a single wrapper.
        var inner: [UInt8] = []
        var next = firstOffset
        var budget = maxDecompressedBytes
        try flatten(UnsafeRawBufferPointer(rebasing: m[0..<info.validBytes]), into: &inner, next: &next, depth: 0,
                    budget: &budget, wrapperPosition: nil, requireKeys: requireKeys)
        let count = Int(next - firstOffset)
        if count == 0 {
            return ValidatedMessageSet(bytes: [], firstOffset: firstOffset, lastOffset: firstOffset - 1,
                                       messageCount: 0, shallowCount: 0, codec: info.codec, validBytes: info.validBytes)
        }
        let compressed: [UInt8]
        do {
            compressed = try Compression.compress(inner, codec: info.codec)
        } catch {
            throw MessageSetError.from(error, position: 0, codec: info.codec)
        }
        var out: [UInt8] = []
        out.reserveCapacity(compressed.count + 26)
        MessageSetBuilder.appendMessage(to: &out, offset: next - 1, key: nil, value: compressed,
                                        attributes: UInt8(info.codec.rawValue))
        if out.count > maxMessageBytes {
            throw .messageTooLarge(position: 0, entrySize: out.count, maxMessageBytes: maxMessageBytes)
        }
        return ValidatedMessageSet(bytes: out, firstOffset: firstOffset, lastOffset: next - 1, messageCount: count,
                                   shallowCount: 1, codec: info.codec, validBytes: info.validBytes)
    }

    /// Follower append (`assignOffsets = false`): keeps the leader's bytes and offsets; requires strictly
    /// increasing top-level offsets, the first one at or above `nextOffset` when given.
    public static func validateKeepingOffsets(_ set: [UInt8], maxMessageBytes: Int, nextOffset: Int64? = nil)
        throws(MessageSetError) -> ValidatedMessageSet
    {
        var v = try withBytes(set) { (p) throws(MessageSetError) -> ValidatedMessageSet in
            try validateKeepingOffsets(in: p, maxMessageBytes: maxMessageBytes, nextOffset: nextOffset)
        }
        v.bytes = v.validBytes == set.count ? set : Array(set[0..<v.validBytes])
        v.inCallerMemory = false
        return v
    }

    /// `validateKeepingOffsets` in the caller's memory: the result is `inCallerMemory`.
    public static func validateKeepingOffsets(in p: UnsafeRawBufferPointer, maxMessageBytes: Int, nextOffset: Int64? = nil)
        throws(MessageSetError) -> ValidatedMessageSet
    {
        try keepOffsets(info: try analyze(p, maxMessageBytes: maxMessageBytes), nextOffset: nextOffset)
    }

    /// Second half of the follower append, for a set already checked by `analyze` (which gave
    /// `info`): its offsets must increase, from `nextOffset` on. The result is `inCallerMemory`.
    public static func keepOffsets(info: MessageSetInfo, nextOffset: Int64? = nil) throws(MessageSetError) -> ValidatedMessageSet {
        if info.shallowCount > 0 {
            if !info.offsetsMonotonic {
                throw .offsetsNotIncreasing(position: 0, previous: info.firstOffset, offset: info.lastOffset)
            }
            if let n = nextOffset, info.firstOffset < n {
                throw .offsetsNotIncreasing(position: 0, previous: n - 1, offset: info.firstOffset)
            }
        }
        return ValidatedMessageSet(bytes: [], inCallerMemory: true,
                                   firstOffset: info.shallowCount > 0 ? info.firstOffset : (nextOffset ?? 0),
                                   lastOffset: info.shallowCount > 0 ? info.lastOffset : (nextOffset ?? 0) - 1,
                                   messageCount: info.shallowCount, shallowCount: info.shallowCount,
                                   codec: info.codec, validBytes: info.validBytes)
    }

    /// Deep iteration (0.8.2 `internalIterator(isShallow = false)`): appends every uncompressed message of `p`
    /// (decompressing wrappers recursively) to `inner` with consecutive offsets. An incomplete trailing inner
    /// entry is dropped, an inner size < 14 is an error. Unlike 0.8.2 (which copied inner messages unchecked,
    /// leaving consumers to fail on them), messages taken out of a wrapper must have a valid CRC, magic 0 and
    /// key/value lengths that fill their size exactly (InvalidMessage otherwise), as issue 4 asks.
    private static func flatten(_ p: UnsafeRawBufferPointer, into inner: inout [UInt8], next: inout Int64,
                                depth: Int, budget: inout Int, wrapperPosition: Int?, requireKeys: Bool) throws(MessageSetError)
    {
        var pos = 0
        let n = p.count
        while n - pos >= MessageFormat.logOverhead {
            let where_ = wrapperPosition ?? pos
            let size = Int(BE.i32(p, pos + 8))
            if size < MessageFormat.minMessageSize { throw .messageTooSmall(position: where_, size: size) }
            if n - pos - MessageFormat.logOverhead < size { break }
            let entry = MessageFormat.logOverhead + size
            let attributes = p[pos + 17]
            guard let codec = CompressionCodec(attributes: attributes) else {
                throw .unknownCodec(position: where_, attributes: attributes)
            }
            if codec == .none {
                if wrapperPosition != nil {
                    let stored = BE.u32(p, pos + 12)
                    let computed = CRC32.checksum(UnsafeRawBufferPointer(rebasing: p[(pos + 16)..<(pos + entry)]))
                    if stored != computed { throw .crcMismatch(position: where_, stored: stored, computed: computed) }
                    if p[pos + 16] != MessageFormat.currentMagic {
                        throw .malformedMessage(position: where_, reason: "inner message with magic \(p[pos + 16])")
                    }
                    let kv = try MessageParsing.keyValueRanges(p, message: pos + 12, size: size, position: where_)
                    let valueEnd = kv.value?.upperBound ?? ((kv.key?.upperBound ?? (pos + 12 + 10)) + 4)
                    if valueEnd != pos + entry {   // librdkafka reads on right after the value
                        throw .malformedMessage(position: where_, reason: "inner message with \(pos + entry - valueEnd) bytes after its value")
                    }
                }
                if requireKeys && BE.i32(p, pos + 18) < 0 { throw .missingKey(position: where_) }
                let start = inner.count
                inner.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[pos..<(pos + entry)]))
                inner.withUnsafeMutableBytes { BE.put64($0, start, next) }
                next += 1
            } else {
                if depth > 16 { throw .malformedMessage(position: where_, reason: "compressed messages nested too deeply") }
                let kv = try MessageParsing.keyValueRanges(p, message: pos + 12, size: size, position: where_)
                guard let v = kv.value else {
                    throw .malformedMessage(position: where_, reason: "compressed message without a value")
                }
                let decompressed: [UInt8]
                do {
                    decompressed = try Compression.decompress(UnsafeRawBufferPointer(rebasing: p[v]), codec: codec,
                                                              maxSize: budget)
                } catch {
                    throw MessageSetError.from(error, position: where_, codec: codec)
                }
                budget -= decompressed.count
                try withBytes(decompressed) { (d) throws(MessageSetError) in
                    try flatten(d, into: &inner, next: &next, depth: depth + 1, budget: &budget,
                                wrapperPosition: where_, requireKeys: requireKeys)
                }
            }
            pos += entry
        }
    }
}
