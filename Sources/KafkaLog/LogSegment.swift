#if canImport(Glibc)
import Glibc
#endif
import KafkaProtocol
import Synchronization

/// The file name of a segment: the base offset as 20 zero-padded decimal digits.
public func segmentFileName(baseOffset: Int64, suffix: String) -> String {
    let digits = String(baseOffset)
    return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + suffix
}

/// Outcome of scanning a segment during recovery.
struct RecoveryResult {
    var validBytes: Int
    var truncatedBytes: Int
    var reason: String?
    var lastOffset: Int64?
}

/// One `.log` file + its `.index`. Appends are serialised by the owning `Log`; reads are lock-free
/// (`size` is an atomic committed size; the data file is opened O_RDWR and read with pread).
public final class LogSegment: @unchecked Sendable {
    public let baseOffset: Int64
    private(set) var logPath: String
    public let index: OffsetIndex
    let fd: Int32
    private let committed: Atomic<Int>
    private let indexIntervalBytes: Int
    let maxIndexSize: Int
    private var bytesSinceLastIndexEntry = 0
    /// When this in-memory segment was created (ms), for time-based rolling.
    var created: Int64
    let rollJitterMs: Int64

    public var size: Int { committed.load(ordering: .acquiring) }

    init(directory: String, baseOffset: Int64, indexIntervalBytes: Int, maxIndexSize: Int, rollJitterMs: Int64,
         suffix: String = "") throws(LogError) {
        self.baseOffset = baseOffset
        self.logPath = directory + "/" + segmentFileName(baseOffset: baseOffset, suffix: ".log" + suffix)
        let indexPath = directory + "/" + segmentFileName(baseOffset: baseOffset, suffix: ".index" + suffix)
        self.fd = try FS.open(logPath, O_RDWR, create: true)
        do {
            self.index = try OffsetIndex(path: indexPath, baseOffset: baseOffset, maxIndexSize: maxIndexSize)
        } catch {
            close(fd)
            throw error
        }
        var st = stat()
        fstat(fd, &st)
        self.committed = Atomic(Int(st.st_size))
        self.indexIntervalBytes = indexIntervalBytes
        self.maxIndexSize = maxIndexSize
        self.created = FS.nowMs()
        self.rollJitterMs = rollJitterMs
    }

    deinit { close(fd) }

    static func indexExists(directory: String, baseOffset: Int64) -> Bool {
        FS.exists(directory + "/" + segmentFileName(baseOffset: baseOffset, suffix: ".index"))
    }

    // MARK: append

    /// Appends a validated set whose first offset is `firstOffset` (one pwrite), then adds an
    /// index entry when more than `index.interval.bytes` were appended since the last one. A
    /// failed or short write (disk full) is cut off the file again, so the segment never holds
    /// bytes that were not acknowledged; the error is rethrown.
    func append(firstOffset: Int64, bytes: UnsafeRawBufferPointer) throws(LogError) {
        guard bytes.count > 0 else { return }
        let pos = size
        do {
            try FS.pwriteAll(fd, bytes, at: Int64(pos), path: logPath)
        } catch {
            if ftruncate(fd, off_t(pos)) != 0 {
                throw .io("\(error); and removing the partial write from \(logPath) failed: \(FS.errnoText())")
            }
            throw error
        }
        if bytesSinceLastIndexEntry > indexIntervalBytes {
            index.append(offset: firstOffset, position: pos)
            bytesSinceLastIndexEntry = 0
        }
        committed.store(pos + bytes.count, ordering: .releasing)
        bytesSinceLastIndexEntry += bytes.count
    }

    // MARK: reading

    /// Header scanner over the file with a reusable buffer.
    struct Scanner {
        let fd: Int32
        let limit: Int
        var buffer: UnsafeMutableRawBufferPointer
        var bufStart = 0
        var bufCount = 0
        /// Whether headers far apart are read one by one (scans that look only at headers).
        let readsSparseHeadersAlone: Bool
        /// The position asked for last, to tell headers far apart from headers close together.
        private var lastPos = -1

        /// Headers further apart than this are read alone, `headerWindow` bytes at a time.
        static let sparseStride = 4096
        static let headerWindow = 64

        init(fd: Int32, limit: Int, capacity: Int = 16384, readsSparseHeadersAlone: Bool = true) {
            self.fd = fd
            self.limit = limit
            self.readsSparseHeadersAlone = readsSparseHeadersAlone
            buffer = .allocate(byteCount: capacity, alignment: 8)
        }
        func free() { buffer.deallocate() }

        /// Ensures bytes [pos, pos+n) are buffered; returns false when past `limit` or EOF.
        mutating func ensure(_ pos: Int, _ n: Int) -> Bool {
            let stride = lastPos < 0 ? 0 : pos - lastPos
            lastPos = pos
            if pos + n > limit { return false }
            if pos >= bufStart && pos + n <= bufStart + bufCount { return true }
            if n > buffer.count {
                buffer.deallocate()
                buffer = .allocate(byteCount: max(n, buffer.count * 2), alignment: 8)
            }
            // Headers far apart (large messages): read just this header, not a buffer of bodies
            // nobody looks at. A scan over 1 MB of 10 KB messages costs ~100 small reads instead
            // of a 1 MB copy (on an event loop, for every fetch that starts mid-batch).
            let sparse = readsSparseHeadersAlone && stride > Self.sparseStride && n <= Self.headerWindow
            let want = min(sparse ? Self.headerWindow : buffer.count, limit - pos)
            bufCount = FS.preadFully(fd, buffer.baseAddress!, count: want, at: Int64(pos))
            bufStart = pos
            return bufCount >= n
        }
        func ptr(_ pos: Int) -> UnsafeRawPointer { UnsafeRawPointer(buffer.baseAddress! + (pos - bufStart)) }
    }

    /// The first entry at or after `startingPosition` whose offset ≥ `offset` (0.8.2 `translateOffset`).
    public func translateOffset(_ offset: Int64, startingPosition: Int = 0, sizeLimit: Int? = nil) -> (offset: Int64, position: Int)? {
        let limit = sizeLimit ?? size
        let mapping = index.lookup(offset)
        var pos = max(mapping.position, startingPosition)
        var sc = Scanner(fd: fd, limit: limit)
        defer { sc.free() }
        while sc.ensure(pos, 12) {
            let o = loadBE64(sc.ptr(pos), 0)
            let s = Int(loadBE32(sc.ptr(pos), 8))
            if o >= offset { return (o, pos) }
            if s < MessageFormat.minMessageSize { return nil }
            pos += 12 + s
        }
        return nil
    }

    /// 0.8.2 `LogSegment.read`: (position, length) of the bytes to send, or nil when `startOffset` is past
    /// the end of this segment. `maxOffset` is an exclusive upper bound.
    func read(startOffset: Int64, maxOffset: Int64?, maxSize: Int) -> (position: Int, length: Int)? {
        let logSize = size
        guard let start = translateOffset(startOffset, sizeLimit: logSize) else { return nil }
        if maxSize <= 0 { return (start.position, 0) }
        let end: Int
        if let maxOffset {
            if maxOffset <= startOffset { return (start.position, 0) }
            end = translateOffset(maxOffset, startingPosition: start.position, sizeLimit: logSize)?.position ?? logSize
        } else {
            end = logSize
        }
        return (start.position, max(0, min(end - start.position, maxSize)))
    }

    func readBytes(position: Int, length: Int) -> [UInt8] {
        guard length > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: length) { buf, n in
            n = FS.preadFully(fd, buf.baseAddress!, count: length, at: Int64(position))
        }
    }

    /// Offset after the last entry (scanning from the last index entry), or baseOffset when empty.
    func nextOffset() -> Int64 {
        let logSize = size
        let last = index.entryCount > 0 ? index.entry(index.entryCount - 1) : (offset: baseOffset, position: 0)
        var pos = min(last.position, logSize)
        var sc = Scanner(fd: fd, limit: logSize)
        defer { sc.free() }
        var next = baseOffset
        while sc.ensure(pos, 12) {
            let o = loadBE64(sc.ptr(pos), 0)
            let s = Int(loadBE32(sc.ptr(pos), 8))
            if s < MessageFormat.minMessageSize || pos + 12 + s > logSize { break }
            next = o + 1
            pos += 12 + s
        }
        return next
    }

    // MARK: recovery

    /// Rebuilds the index from the data and truncates the file at the first invalid entry
    /// (short/partial entry, size < 14, size > maxMessageBytes, CRC mismatch, offset not increasing).
    func recover(maxMessageBytes: Int) throws(LogError) -> RecoveryResult {
        index.truncateAll()
        try index.resize(max(8, maxIndexSize))
        let logSize = size
        var sc = Scanner(fd: fd, limit: logSize, capacity: 1 << 20, readsSparseHeadersAlone: false)
        defer { sc.free() }
        var pos = 0
        var lastIndexEntry = 0
        var prevOffset: Int64 = baseOffset - 1
        var reason: String? = nil
        var lastOffset: Int64? = nil
        while pos < logSize {
            guard sc.ensure(pos, 12) else { reason = "partial entry header at end of file"; break }
            let o = loadBE64(sc.ptr(pos), 0)
            let s = Int(loadBE32(sc.ptr(pos), 8))
            if s < MessageFormat.minMessageSize { reason = "message size \(s) < 14"; break }
            if s > maxMessageBytes { reason = "message size \(s) exceeds max.message.bytes \(maxMessageBytes)"; break }
            guard sc.ensure(pos, 12 + s) else { reason = "partial message (size \(s)) at end of file"; break }
            let p = sc.ptr(pos)
            let stored = loadBEU32(p, 12)
            let computed = CRC32.checksum(UnsafeRawBufferPointer(start: p + 16, count: s - 4))
            if stored != computed {
                reason = "CRC mismatch at offset \(o) (stored \(stored), computed \(computed))"
                break
            }
            if o <= prevOffset {
                reason = "offset \(o) not greater than the previous offset \(prevOffset)"
                break
            }
            if pos - lastIndexEntry > indexIntervalBytes {
                // As 0.8.2: a compressed entry is indexed by its first inner offset.
                let indexed = p.load(fromByteOffset: 17, as: UInt8.self) & 0x07 != 0
                    ? (firstInnerOffset(UnsafeRawBufferPointer(start: p, count: 12 + s)) ?? o) : o
                index.append(offset: indexed, position: pos)
                lastIndexEntry = pos
            }
            prevOffset = o
            lastOffset = o
            pos += 12 + s
        }
        let truncated = logSize - pos
        if truncated > 0 {
            try truncateFile(to: pos)
        }
        bytesSinceLastIndexEntry = pos - lastIndexEntry
        try index.trimToValidSize()
        return RecoveryResult(validBytes: pos, truncatedBytes: truncated, reason: truncated > 0 ? reason : nil,
                              lastOffset: lastOffset)
    }


    private func truncateFile(to position: Int) throws(LogError) {
        if ftruncate(fd, off_t(position)) != 0 { throw .io("cannot truncate \(logPath): \(FS.errnoText())") }
        committed.store(position, ordering: .releasing)
    }

    /// Removes every entry with offset ≥ `offset`; returns the bytes removed.
    @discardableResult
    func truncate(to offset: Int64) throws(LogError) -> Int {
        guard let mapping = translateOffset(offset) else { return 0 }
        index.truncate(to: offset)
        let old = size
        try truncateFile(to: mapping.position)
        bytesSinceLastIndexEntry = 0
        created = FS.nowMs()
        return old - mapping.position
    }

    // MARK: maintenance

    func flush() throws(LogError) {
        if fsync(fd) != 0 { throw .io("fsync of \(logPath) failed: \(FS.errnoText())") }
        index.flush()
    }

    var lastModified: Int64 { FS.mtimeMs(fd: fd) }

    func changeSuffix(from old: String, to new: String) throws(LogError) {
        let newLog = String(logPath.dropLast(old.count)) + new
        try FS.rename(logPath, newLog)
        logPath = newLog
        let ip = index.path
        if FS.exists(ip) { try index.rename(to: String(ip.dropLast(old.count)) + new) }
    }

    func deleteFiles() {
        FS.remove(logPath)
        index.deleteFile()
    }
}

/// First inner offset of a compressed wrapper entry (nil when it cannot be decompressed).
func firstInnerOffset(_ entry: UnsafeRawBufferPointer) -> Int64? {
    guard let ranges = try? MessageParsing.keyValueRangesPublic(entry, size: entry.count - 12), let v = ranges.value,
          let codec = CompressionCodec(attributes: entry[17]), codec != .none,
          let inner = try? Compression.decompress(UnsafeRawBufferPointer(rebasing: entry[v]), codec: codec),
          inner.count >= 12 else { return nil }
    return inner.withUnsafeBytes { loadBE64($0.baseAddress!, 0) }
}
