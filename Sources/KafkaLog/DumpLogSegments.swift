#if canImport(Glibc)
import Glibc
#endif
import KafkaProtocol

/// `kafka.tools.DumpLogSegments` of 0.8.2: prints every entry of `.log` files (offset, position, validity,
/// sizes, codec, crc, optionally key and payload) and every entry of `.index` files, with index/log mismatches
/// and non-consecutive offsets reported at the end.
public enum DumpLogSegments {
    public static func dump(files: [String], printData: Bool = false, deepIteration: Bool = false,
                            verifyIndexOnly: Bool = false, maxMessageBytes: Int = 5 * 1024 * 1024) -> String {
        var out = ""
        var indexMismatches: [String: [(Int64, Int64)]] = [:]
        var nonConsecutive: [String: [(Int64, Int64)]] = [:]
        for file in files {
            out += "Dumping \(file)\n"
            let name = file.split(separator: "/").last.map(String.init) ?? file
            if name.hasSuffix(".log") {
                out += "Starting offset: \(Int64(name.dropLast(4)) ?? 0)\n"
                dumpLog(file, printData: printData, deep: deepIteration, maxMessageBytes: maxMessageBytes,
                        nonConsecutive: &nonConsecutive, out: &out)
            } else if name.hasSuffix(".index") {
                dumpIndex(file, verifyOnly: verifyIndexOnly, mismatches: &indexMismatches, out: &out)
            } else {
                out += "Ignoring unknown file \(file)\n"
            }
        }
        for (file, list) in indexMismatches.sorted(by: { $0.key < $1.key }) {
            out += "Mismatches in :\(file)\n"
            for (i, l) in list { out += "  Index offset: \(i), log offset: \(l)\n" }
        }
        for (file, list) in nonConsecutive.sorted(by: { $0.key < $1.key }) {
            out += "Non-secutive offsets in :\(file)\n"
            for (a, b) in list { out += "  \(a) is followed by \(b)\n" }
        }
        return out
    }

    static func codecName(_ attributes: UInt8) -> String {
        switch attributes & 0x07 {
        case 0: return "NoCompressionCodec"
        case 1: return "GZIPCompressionCodec"
        case 2: return "SnappyCompressionCodec"
        case 3: return "LZ4CompressionCodec"
        default: return "UnknownCodec(\(attributes & 0x07))"
        }
    }

    private static func text(_ b: [UInt8]?) -> String {
        guard let b else { return "null" }
        return String(decoding: b, as: UTF8.self)
    }

    private static func dumpLog(_ file: String, printData: Bool, deep: Bool, maxMessageBytes: Int,
                                nonConsecutive: inout [String: [(Int64, Int64)]], out: inout String) {
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { out += "Cannot open \(file): \(FS.errnoText())\n"; return }
        defer { close(fd) }
        let size = Int(FS.fileSize(file) ?? 0)
        var lastOffset: Int64 = -1
        var validBytes = 0
        let stop = SegmentEntryReader.forEach(fd: fd, limit: size) { e in
            if e.size > maxMessageBytes {
                out += "Found a message of size \(e.size) larger than the maximum \(maxMessageBytes) at position \(e.position)\n"
                return false
            }
            let messages: [DecodedMessage]
            let attributes = e.bytes[17]
            if deep && attributes & 0x07 != 0 {
                do { messages = try MessageSetDecoder.decode(e.bytes, deep: true) } catch {
                    out += "offset: \(e.offset) position: \(e.position) cannot be decompressed: \(error)\n"
                    validBytes = e.position + e.bytes.count
                    return true
                }
            } else {
                do { messages = try MessageSetDecoder.decode(e.bytes, deep: false) } catch {
                    out += "offset: \(e.offset) position: \(e.position) is malformed: \(error)\n"
                    return false
                }
            }
            for m in messages {
                if lastOffset >= 0 && m.offset != lastOffset + 1 {
                    nonConsecutive[file, default: []].append((lastOffset, m.offset))
                }
                lastOffset = m.offset
                let payloadSize = m.value?.count ?? 0
                var line = "offset: \(m.offset) position: \(e.position) isvalid: \(m.crcValid) payloadsize: \(payloadSize)"
                line += " magic: \(m.magic) compresscodec: \(codecName(m.attributes)) crc: \(m.crc)"
                if let k = m.key { line += " keysize: \(k.count)" }
                if printData {
                    if let k = m.key { line += " key: \(text(k))" }
                    line += " payload: \(text(m.value))"
                }
                out += line + "\n"
            }
            validBytes = e.position + e.bytes.count
            return true
        }
        if case let .badSize(pos, s) = stop {
            out += "Found an entry with invalid size \(s) at position \(pos)\n"
        }
        let trailing = size - validBytes
        if trailing > 0 { out += "Found \(trailing) invalid bytes at the end of \(file.split(separator: "/").last ?? "")\n" }
    }

    /// Offsets an index entry may name for the entry at `position`: its own offset, and for a compressed
    /// wrapper also its first inner offset.
    private static func entryOffsets(fd: Int32, position: Int, logSize: Int) -> [Int64] {
        var result: [Int64] = []
        _ = SegmentEntryReader.forEach(fd: fd, start: position, limit: logSize, chunk: 65536) { e in
            if e.bytes[17] & 0x07 != 0, let first = firstInnerOffset(e.bytes) { result.append(first) }
            result.append(e.offset)
            return false
        }
        return result
    }

    private static func dumpIndex(_ file: String, verifyOnly: Bool, mismatches: inout [String: [(Int64, Int64)]],
                                  out: inout String) {
        let name = file.split(separator: "/").last.map(String.init) ?? file
        let base = Int64(name.dropLast(".index".count)) ?? 0
        let logFile = String(file.dropLast(".index".count)) + ".log"
        guard let bytes = try? FS.readFile(file) else { out += "Cannot read \(file)\n"; return }
        if bytes.count % 8 != 0 { out += "Index file size \(bytes.count) is not a multiple of 8\n" }
        let logFd = open(logFile, O_RDONLY | O_CLOEXEC)
        defer { if logFd >= 0 { close(logFd) } }
        let logSize = Int(FS.fileSize(logFile) ?? 0)
        bytes.withUnsafeBytes { p in
            for i in 0..<(bytes.count / 8) {
                let rel = Int64(loadBE32(p.baseAddress!, i * 8))
                let pos = Int(UInt32(bitPattern: loadBE32(p.baseAddress!, i * 8 + 4)))
                let offset = base + rel
                if rel == 0 && i > 0 { break }   // preallocated zero slots
                if logFd >= 0 {
                    let found = entryOffsets(fd: logFd, position: pos, logSize: logSize)
                    if !found.contains(offset) { mismatches[file, default: []].append((offset, found.last ?? -1)) }
                }
                if !verifyOnly { out += "offset: \(offset) position: \(pos)\n" }
            }
        }
    }
}
