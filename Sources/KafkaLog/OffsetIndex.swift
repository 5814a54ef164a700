#if canImport(Glibc)
import Glibc
#endif

/// The sparse `.index` of a segment: 8-byte big-endian entries (offset − base, byte position),
/// memory-mapped like 0.8.2's `OffsetIndex`. Preallocated to `maxIndexSize` while active, trimmed on roll/close.
/// Internally locked; lookups are O(log n).
public final class OffsetIndex: @unchecked Sendable {
    private(set) var path: String
    let baseOffset: Int64
    private let lock = Lock()
    private var map: UnsafeMutableRawPointer? = nil
    private var mapLength = 0
    private var entries = 0
    private var maxEntries = 0

    /// Opens `path`; a new file is preallocated to `maxIndexSize` (rounded down to 8), an existing one is
    /// mapped with every 8-byte slot treated as an entry (as 0.8.2 does); `sanityCheck` tells whether to trust it.
    init(path: String, baseOffset: Int64, maxIndexSize: Int) throws(LogError) {
        self.path = path
        self.baseOffset = baseOffset
        let existed = FS.exists(path)
        let fd = try FS.open(path, O_RDWR, create: true)
        defer { close(fd) }
        var length: Int
        if !existed {
            length = max(8, maxIndexSize / 8 * 8)
            if ftruncate(fd, off_t(length)) != 0 { throw .io("cannot size index \(path): \(FS.errnoText())") }
        } else {
            length = Int(FS.fileSize(path) ?? 0)
        }
        try mapFile(fd: fd, length: length)
        entries = existed ? length / 8 : 0
        maxEntries = length / 8
    }

    deinit {
        if let map { munmap(map, mapLength) }
    }

    private func mapFile(fd: Int32, length: Int) throws(LogError) {
        if let old = map { munmap(old, mapLength); map = nil; mapLength = 0 }
        guard length > 0 else { return }
        let p = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        if p == MAP_FAILED || p == nil { throw .io("cannot mmap index \(path): \(FS.errnoText())") }
        map = p
        mapLength = length
    }

    @inline(__always) private func relOffset(_ i: Int) -> Int64 { Int64(loadBE32(map!, i * 8)) }
    @inline(__always) private func position(_ i: Int) -> Int { Int(UInt32(bitPattern: loadBE32(map!, i * 8 + 4))) }

    public var entryCount: Int { lock.withLock { entries } }
    var isFull: Bool { lock.withLock { entries >= maxEntries } }
    var sizeInBytes: Int { lock.withLock { entries * 8 } }
    var lastOffset: Int64 { lock.withLock { entries == 0 ? baseOffset : baseOffset + relOffset(entries - 1) } }

    public func entry(_ i: Int) -> (offset: Int64, position: Int) {
        lock.withLock { (baseOffset + relOffset(i), position(i)) }
    }

    /// Greatest slot whose offset ≤ target, or -1.
    private func slot(for target: Int64) -> Int {
        let rel = target - baseOffset
        if entries == 0 || rel < relOffset(0) { return -1 }
        var lo = 0, hi = entries - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if relOffset(mid) <= rel { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    /// Greatest entry whose offset ≤ target, or (base offset, 0).
    public func lookup(_ target: Int64) -> (offset: Int64, position: Int) {
        lock.withLock {
            let s = slot(for: target)
            return s < 0 ? (baseOffset, 0) : (baseOffset + relOffset(s), position(s))
        }
    }

    /// Adds an entry; offsets must increase. Returns false when full or out of order.
    @discardableResult
    func append(offset: Int64, position: Int) -> Bool {
        lock.withLock {
            guard entries < maxEntries, let map else { return false }
            let rel = offset - baseOffset
            guard rel >= 0, rel <= Int64(Int32.max), position <= Int(UInt32.max) else { return false }
            if entries > 0 && rel <= relOffset(entries - 1) { return false }
            map.storeBytes(of: Int32(rel).bigEndian, toByteOffset: entries * 8, as: Int32.self)
            map.storeBytes(of: UInt32(position).bigEndian, toByteOffset: entries * 8 + 4, as: UInt32.self)
            entries += 1
            return true
        }
    }

    /// Removes entries with offset ≥ `offset`.
    func truncate(to offset: Int64) {
        lock.withLock {
            let s = slot(for: offset)
            let n: Int
            if s < 0 { n = 0 } else if baseOffset + relOffset(s) == offset { n = s } else { n = s + 1 }
            entries = min(entries, n)
        }
    }

    func truncateAll() { lock.withLock { entries = 0 } }

    /// Sets the file (and mapping) to `size` bytes rounded down to 8.
    func resize(_ size: Int) throws(LogError) {
        try lock.withLock { () throws(LogError) in
            let length = size / 8 * 8
            let fd = try FS.open(path, O_RDWR, create: true)
            defer { close(fd) }
            if ftruncate(fd, off_t(length)) != 0 { throw .io("cannot resize index \(path): \(FS.errnoText())") }
            try mapFile(fd: fd, length: length)
            maxEntries = length / 8
            entries = min(entries, maxEntries)
        }
    }

    func trimToValidSize() throws(LogError) {
        try resize(entryCount * 8)
    }

    func flush() {
        lock.withLock {
            if let map, entries > 0 { _ = msync(map, mapLength, MS_SYNC) }
        }
    }

    /// 0.8.2's sanity check, strengthened: entries strictly increasing from ≥ base, positions non-decreasing
    /// and within `logSize`.
    public func sanityCheck(logSize: Int) -> Bool {
        lock.withLock {
            var prevRel: Int64 = -1
            var prevPos = -1
            for i in 0..<entries {
                let r = relOffset(i), p = position(i)
                if r <= 0 || r <= prevRel || p < prevPos || p > logSize { return false }
                prevRel = r
                prevPos = p
            }
            return true
        }
    }

    func rename(to newPath: String) throws(LogError) {
        try lock.withLock { () throws(LogError) in
            try FS.rename(path, newPath)
            path = newPath
        }
    }

    func deleteFile() { lock.withLock { FS.remove(path) } }
}
