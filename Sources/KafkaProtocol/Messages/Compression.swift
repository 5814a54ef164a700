import CCompression

/// Failures of the compression codecs. Garbage input always ends here, never in a crash.
public enum CompressionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The compressed bytes could not be decoded.
    case corrupt(codec: CompressionCodec, reason: String)
    /// The decompressed data would exceed the caller's limit.
    case tooLarge(codec: CompressionCodec, limit: Int)
    /// The codec is not implemented (or is not a codec at all).
    case unsupported(codec: Int8)
    /// The compressor itself failed (out of memory and the like).
    case compressionFailed(codec: CompressionCodec)

    public var description: String {
        switch self {
        case let .corrupt(c, r): return "corrupt \(c) data: \(r)"
        case let .tooLarge(c, l): return "\(c) data decompresses to more than \(l) bytes"
        case let .unsupported(c): return "unsupported compression codec \(c)"
        case let .compressionFailed(c): return "\(c) compression failed"
        }
    }
}

/// gzip, snappy (xerial-framed and raw) and lz4 (Kafka 0.8.2's frame) codecs.
public enum Compression {
    /// Default cap on decompressed output, guarding against decompression bombs.
    public static let defaultMaxDecompressedBytes = 256 << 20

    /// The xerial snappy-java stream magic: 0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0.
    public static let xerialMagic: [UInt8] = [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00]
    /// Input block size used when writing xerial frames (snappy-java's default, and the broker's).
    public static let xerialBlockSize = 32 * 1024

    // MARK: generic

    public static func compress(_ data: UnsafeRawBufferPointer, codec: CompressionCodec) throws(CompressionError) -> [UInt8] {
        switch codec {
        case .none: return Array(data)
        case .gzip: return try gzipCompress(data)
        case .snappy: return try snappyCompressXerial(data)
        case .lz4: return try LZ4Frame.compress(data)
        }
    }

    public static func compress(_ data: [UInt8], codec: CompressionCodec) throws(CompressionError) -> [UInt8] {
        do {
            return try withBytes(data) { (p) throws(CompressionError) -> [UInt8] in try compress(p, codec: codec) }
        }
    }

    public static func decompress(_ data: UnsafeRawBufferPointer, codec: CompressionCodec,
                                  maxSize: Int = defaultMaxDecompressedBytes) throws(CompressionError) -> [UInt8] {
        switch codec {
        case .none:
            if data.count > maxSize { throw .tooLarge(codec: .none, limit: maxSize) }
            return Array(data)
        case .gzip: return try gzipDecompress(data, maxSize: maxSize)
        case .snappy: return try snappyDecompress(data, maxSize: maxSize)
        case .lz4: return try LZ4Frame.decompress(data, maxSize: maxSize)
        }
    }

    public static func decompress(_ data: [UInt8], codec: CompressionCodec,
                                  maxSize: Int = defaultMaxDecompressedBytes) throws(CompressionError) -> [UInt8] {
        do {
            return try withBytes(data) { (p) throws(CompressionError) -> [UInt8] in
                try decompress(p, codec: codec, maxSize: maxSize)
            }
        }
    }

    // MARK: gzip

    /// A single gzip member (RFC 1952), as java.util.zip.GZIPOutputStream writes.
    public static func gzipCompress(_ data: UnsafeRawBufferPointer, level: Int32 = -1) throws(CompressionError) -> [UInt8] {
        var out: UnsafeMutableRawPointer? = nil
        var outLen = 0
        var dummy: UInt8 = 0
        let rc = withUnsafeMutablePointer(to: &dummy) { d in
            kc_gzip_compress(data.baseAddress ?? UnsafeRawPointer(d), data.count, level, &out, &outLen)
        }
        guard rc == 0, let buf = out else { throw .compressionFailed(codec: .gzip) }
        defer { kc_free(buf) }
        return Array(UnsafeRawBufferPointer(start: buf, count: outLen))
    }

    /// Inflates gzip (or zlib) data; concatenated gzip members are accepted.
    public static func gzipDecompress(_ data: UnsafeRawBufferPointer, maxSize: Int = defaultMaxDecompressedBytes) throws(CompressionError) -> [UInt8] {
        guard let base = data.baseAddress, data.count > 0 else { throw .corrupt(codec: .gzip, reason: "empty input") }
        var out: UnsafeMutableRawPointer? = nil
        var outLen = 0
        let rc = kc_gzip_decompress(base, data.count, max(1, maxSize), &out, &outLen)
        if rc == -2 { throw .tooLarge(codec: .gzip, limit: maxSize) }
        guard rc == 0, let buf = out else { throw .corrupt(codec: .gzip, reason: "invalid gzip stream") }
        defer { kc_free(buf) }
        return Array(UnsafeRawBufferPointer(start: buf, count: outLen))
    }

    // MARK: snappy

    /// One raw snappy block (what librdkafka and pykafka send).
    public static func snappyCompressRaw(_ data: UnsafeRawBufferPointer) throws(CompressionError) -> [UInt8] {
        var out: [UInt8] = []
        try appendSnappyBlock(data, to: &out, lengthPrefix: false)
        return out
    }

    /// The xerial snappy-java stream: 16-byte header then [int32 BE length][raw snappy] blocks of
    /// at most `blockSize` input bytes each.
    public static func snappyCompressXerial(_ data: UnsafeRawBufferPointer, blockSize: Int = xerialBlockSize) throws(CompressionError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16 + data.count / 2 + 64)
        out.append(contentsOf: xerialMagic)
        BE.append32(&out, 1)   // version
        BE.append32(&out, 1)   // minimum compatible version
        var pos = 0
        let step = max(1, blockSize)
        while pos < data.count {
            let n = min(step, data.count - pos)
            try appendSnappyBlock(UnsafeRawBufferPointer(rebasing: data[pos..<(pos + n)]), to: &out, lengthPrefix: true)
            pos += n
        }
        return out
    }

    private static func appendSnappyBlock(_ data: UnsafeRawBufferPointer, to out: inout [UInt8], lengthPrefix: Bool) throws(CompressionError) {
        let bound = kc_snappy_max_compressed_length(data.count)
        let start = out.count
        let header = lengthPrefix ? 4 : 0
        out.append(contentsOf: repeatElement(0, count: header + bound))
        var written = bound
        var dummy: UInt8 = 0
        let rc = out.withUnsafeMutableBytes { o in
            withUnsafeMutablePointer(to: &dummy) { d in
                kc_snappy_compress(data.baseAddress ?? UnsafeRawPointer(d), data.count, o.baseAddress! + start + header, &written)
            }
        }
        guard rc == 0 else { throw .compressionFailed(codec: .snappy) }
        out.removeLast(bound - written)
        if lengthPrefix {
            out.withUnsafeMutableBytes { BE.put32($0, start, Int32(written)) }
        }
    }

    /// Whether `data` starts with a xerial snappy-java header (the snappy-java 1.1.1.7 test:
    /// at least 16 bytes and the 8 magic bytes).
    public static func isXerialFramed(_ data: UnsafeRawBufferPointer) -> Bool {
        guard data.count >= 16 else { return false }
        for i in 0..<8 where data[i] != xerialMagic[i] { return false }
        return true
    }

    /// Decodes xerial-framed snappy (detected by its header) or, otherwise, one raw snappy block.
    public static func snappyDecompress(_ data: UnsafeRawBufferPointer, maxSize: Int = defaultMaxDecompressedBytes) throws(CompressionError) -> [UInt8] {
        var out: [UInt8] = []
        if isXerialFramed(data) {
            let version = BE.i32(data, 8)
            if version < 1 { throw .corrupt(codec: .snappy, reason: "xerial header version \(version) < 1") }
            var pos = 16
            while pos < data.count {
                guard data.count - pos >= 4 else { throw .corrupt(codec: .snappy, reason: "truncated xerial block length at \(pos)") }
                let len = Int(BE.i32(data, pos))
                pos += 4
                guard len >= 0, len <= data.count - pos else {
                    throw .corrupt(codec: .snappy, reason: "xerial block length \(len) at \(pos - 4) exceeds the input")
                }
                try appendSnappyUncompressed(UnsafeRawBufferPointer(rebasing: data[pos..<(pos + len)]), to: &out, maxSize: maxSize)
                pos += len
            }
        } else {
            try appendSnappyUncompressed(data, to: &out, maxSize: maxSize)
        }
        return out
    }

    private static func appendSnappyUncompressed(_ block: UnsafeRawBufferPointer, to out: inout [UInt8], maxSize: Int) throws(CompressionError) {
        guard let base = block.baseAddress, block.count > 0 else {
            throw .corrupt(codec: .snappy, reason: "empty snappy block")
        }
        var n = 0
        guard kc_snappy_uncompressed_length(base, block.count, &n) == 0 else {
            throw .corrupt(codec: .snappy, reason: "invalid snappy block header")
        }
        guard n <= maxSize - out.count else { throw .tooLarge(codec: .snappy, limit: maxSize) }
        if n == 0 { return }
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: n))
        var got = n
        let rc = out.withUnsafeMutableBytes { o in kc_snappy_uncompress(base, block.count, o.baseAddress! + start, &got) }
        guard rc == 0, got == n else {
            out.removeLast(n)
            throw .corrupt(codec: .snappy, reason: "invalid snappy block")
        }
    }
}
