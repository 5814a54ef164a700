import CCompression

/// The compression codec carried in bits 0-2 of a message's attributes (Kafka 0.8.2).
public enum CompressionCodec: Int8, Sendable, CaseIterable, CustomStringConvertible {
    case none = 0
    case gzip = 1
    case snappy = 2
    case lz4 = 3

    /// Mask of the codec bits in the attributes byte.
    public static let attributeMask: UInt8 = 0x07

    /// The codec encoded in an attributes byte, or nil for an unknown codec (4-7).
    public init?(attributes: UInt8) {
        self.init(rawValue: Int8(attributes & CompressionCodec.attributeMask))
    }

    /// Kafka's configuration names (`compression.codec`/`compression.type`).
    public init?(name: String) {
        switch name.lowercased() {
        case "none", "uncompressed": self = .none
        case "gzip": self = .gzip
        case "snappy": self = .snappy
        case "lz4": self = .lz4
        default: return nil
        }
    }

    public var name: String {
        switch self {
        case .none: return "none"
        case .gzip: return "gzip"
        case .snappy: return "snappy"
        case .lz4: return "lz4"
        }
    }

    public var description: String { name }
}

/// CRC-32 (zlib / java.util.zip polynomial) as used for Kafka message checksums.
public enum CRC32 {
    @inlinable
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return 0 }
        return kc_crc32(0, base, bytes.count)
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }

    public static func checksum<S: Sequence>(_ bytes: S) -> UInt32 where S.Element == UInt8 {
        checksum(Array(bytes))
    }

    /// Continues a running CRC.
    public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        return kc_crc32(crc, base, bytes.count)
    }
}
