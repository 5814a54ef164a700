#if canImport(Glibc)
import Glibc
#endif
import KafkaProtocol

/// Sequential walk over the entries of a segment file, reading large chunks.
struct SegmentEntryReader {
    struct Entry {
        var offset: Int64
        var position: Int
        /// message_size
        var size: Int
        /// The whole entry (12-byte header + message), valid only inside the callback.
        var bytes: UnsafeRawBufferPointer
    }

    enum Stop: Equatable {
        case end                          // clean end of data
        case partial(position: Int)       // incomplete trailing entry
        case badSize(position: Int, size: Int)
    }

    /// Calls `body` for each complete entry from `start` up to `limit` bytes; `body` returns false to stop.
    static func forEach(fd: Int32, start: Int = 0, limit: Int, chunk: Int = 1 << 20,
                        _ body: (Entry) throws -> Bool) rethrows -> Stop {
        var buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 8)
        defer { buffer.deallocate() }
        var bufStart = start
        var bufCount = 0
        var pos = start
        func fill(_ need: Int) -> Bool {
            if pos + need > limit { return false }
            if pos >= bufStart && pos + need <= bufStart + bufCount { return true }
            if need > buffer.count {
                buffer.deallocate()
                buffer = .allocate(byteCount: need, alignment: 8)
            }
            bufStart = pos
            bufCount = FS.preadFully(fd, buffer.baseAddress!, count: min(buffer.count, limit - pos), at: Int64(pos))
            return bufCount >= need
        }
        while pos < limit {
            guard fill(12) else { return .partial(position: pos) }
            let p = UnsafeRawPointer(buffer.baseAddress! + (pos - bufStart))
            let offset = loadBE64(p, 0)
            let size = Int(loadBE32(p, 8))
            if size < MessageFormat.minMessageSize { return .badSize(position: pos, size: size) }
            guard fill(12 + size) else { return .partial(position: pos) }
            let q = UnsafeRawPointer(buffer.baseAddress! + (pos - bufStart))
            let go = try body(Entry(offset: offset, position: pos, size: size,
                                    bytes: UnsafeRawBufferPointer(start: q, count: 12 + size)))
            pos += 12 + size
            if !go { return .end }
        }
        return .end
    }
}
