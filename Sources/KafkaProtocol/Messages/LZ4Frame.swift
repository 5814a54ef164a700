import CCompression

/// Kafka 0.8.2's LZ4 frame (codec 3): magic 0x184D2204 LE, FLG 0x60, BD 0x40 (64 KiB blocks), a header
/// checksum computed over magic+FLG+BD as 0.8.2 does it, LE-sized blocks (high bit = stored), end mark 0.
/// Reading accepts both header-checksum variants, block checksums, a content size and a content checksum.
public enum LZ4Frame {
    public static func compress(_ data: UnsafeRawBufferPointer) throws(CompressionError) -> [UInt8] {
        var out: UnsafeMutableRawPointer? = nil
        var outLen = 0
        var dummy: UInt8 = 0
        let rc = withUnsafeMutablePointer(to: &dummy) { d in
            kc_lz4f_compress(data.baseAddress ?? UnsafeRawPointer(d), data.count, &out, &outLen)
        }
        guard rc == 0, let buf = out else { throw .compressionFailed(codec: .lz4) }
        defer { kc_free(buf) }
        return Array(UnsafeRawBufferPointer(start: buf, count: outLen))
    }

    public static func decompress(_ data: UnsafeRawBufferPointer, maxSize: Int) throws(CompressionError) -> [UInt8] {
        guard let base = data.baseAddress, data.count > 0 else { throw .corrupt(codec: .lz4, reason: "empty input") }
        var out: UnsafeMutableRawPointer? = nil
        var outLen = 0
        let rc = kc_lz4f_decompress(base, data.count, max(0, maxSize), &out, &outLen)
        if rc == -2 { throw .tooLarge(codec: .lz4, limit: maxSize) }
        guard rc == 0, let buf = out else { throw .corrupt(codec: .lz4, reason: "invalid LZ4 frame") }
        defer { kc_free(buf) }
        return Array(UnsafeRawBufferPointer(start: buf, count: outLen))
    }
}
