/// Kafka 0.8.2's LZ4 frame (codec 3). Not implemented yet: callers get `.unsupported(codec: 3)`.
public enum LZ4Frame {
    public static func compress(_ data: UnsafeRawBufferPointer) throws(CompressionError) -> [UInt8] {
        throw .unsupported(codec: CompressionCodec.lz4.rawValue)
    }

    public static func decompress(_ data: UnsafeRawBufferPointer, maxSize: Int) throws(CompressionError) -> [UInt8] {
        throw .unsupported(codec: CompressionCodec.lz4.rawValue)
    }
}
