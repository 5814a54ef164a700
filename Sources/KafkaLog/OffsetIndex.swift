#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The sparse `.index` of a segment: 8-byte big-endian entries (offset − base, byte position),
/// memory-mapped like 0.8.2's `OffsetIndex`. Preallocated to `maxIndexSize` while active, trimmed on roll/close.
/// Internally locked; lookups are O(log n).
public final class OffsetIndex: @unchecked Sendable {
    private(set) var path: String
    let baseOffset: Int64
    private struct State {
        var map: UnsafeMutableRawPointer? = nil
        var mapLength = 0
        var entries = 0
        var maxEntries = 0

        @inline(__always) func relOffset(_ i: Int) -> Int64 { Int64(loadBE32(map!, i * 8)) }
        @inline(__always) func position(_ i: Int) -> Int { Int(UInt32(bitPattern: loadBE32(map!, i * 8 + 4))) }

        /// Greatest slot whose offset − base ≤ `rel`, or -1.
        func slot(for rel: Int64) -> Int {
            if entries == 0 || rel < relOffset(0) { return -1 }
            var lo = 0, hi = entries - 1
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                if relOffset(mid) <= rel { lo = mid } else { hi = mid - 1 }
            }
            return lo
        }

        mutating func mapFile(fd: Int32, length: Int, path: String) throws(LogError) {
            if let old = map { munmap(old, mapLength); map = nil; mapLength = 0 }
            guard length > 0 else { return }
            let p = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
            if p == MAP_FAILED || p == nil { throw .io("cannot mmap index \(path): \(FS.errnoText())") }
            // No readahead on faults: lookups are binary searches, appends touch one new page at a
            // time, and the file is mostly a hole. With readahead, the first append to a fresh
            // index zero-filled a large folio (megabytes of memset per partition: 67 % of the
            // broker's CPU producing to 1,000 new partitions).
            _ = madvise(p, length, MADV_RANDOM)
            map = p
            mapLength = length
        }
    }
    private let state = Mutex(State())

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
        try state.withLock { st throws(LogError) in
            try st.mapFile(fd: fd, length: length, path: path)
            st.entries = existed ? length / 8 : 0
            st.maxEntries = length / 8
        }
    }

    deinit {
        state.withLock { st in if let map = st.map { munmap(map, st.mapLength) } }
    }



    public var entryCount: Int { state.withLock { st in st.entries } }
    var isFull: Bool { state.withLock { st in st.entries >= st.maxEntries } }
    var sizeInBytes: Int { state.withLock { st in st.entries * 8 } }
    var lastOffset: Int64 { state.withLock { st in st.entries == 0 ? baseOffset : baseOffset + st.relOffset(st.entries - 1) } }

    public func entry(_ i: Int) -> (offset: Int64, position: Int) {
        state.withLock { st in (baseOffset + st.relOffset(i), st.position(i)) }
    }


    /// Greatest entry whose offset ≤ target, or (base offset, 0).
    public func lookup(_ target: Int64) -> (offset: Int64, position: Int) {
        state.withLock { st in
            let s = st.slot(for: target - baseOffset)
            return s < 0 ? (baseOffset, 0) : (baseOffset + st.relOffset(s), st.position(s))
        }
    }

    /// Where `target`'s entry lies in the file: `lookup(target)` (the greatest indexed entry at or
    /// below it, or the segment's start), and the next indexed entry's position (nil after the
    /// last one), which the entry starts before.
    public func positionBounds(_ target: Int64) -> (floorOffset: Int64, floor: Int, ceiling: Int?) {
        state.withLock { st in
            let s = st.slot(for: target - baseOffset)
            let next = s + 1 < st.entries ? st.position(s + 1) : nil
            return s < 0 ? (baseOffset, 0, next) : (baseOffset + st.relOffset(s), st.position(s), next)
        }
    }

    /// Adds an entry; offsets must increase. Returns false when full or out of order.
    @discardableResult
    func append(offset: Int64, position: Int) -> Bool {
        state.withLock { st in
            guard st.entries < st.maxEntries, let map = st.map else { return false }
            let rel = offset - baseOffset
            guard rel >= 0, rel <= Int64(Int32.max), position <= Int(UInt32.max) else { return false }
            if st.entries > 0 && rel <= st.relOffset(st.entries - 1) { return false }
            map.storeBytes(of: Int32(rel).bigEndian, toByteOffset: st.entries * 8, as: Int32.self)
            map.storeBytes(of: UInt32(position).bigEndian, toByteOffset: st.entries * 8 + 4, as: UInt32.self)
            st.entries += 1
            return true
        }
    }

    /// Removes entries with offset ≥ `offset`.
    func truncate(to offset: Int64) {
        state.withLock { st in
            let s = st.slot(for: offset - baseOffset)
            let n: Int
            if s < 0 { n = 0 } else if baseOffset + st.relOffset(s) == offset { n = s } else { n = s + 1 }
            st.entries = min(st.entries, n)
        }
    }

    func truncateAll() { state.withLock { st in st.entries = 0 } }

    /// Sets the file (and mapping) to `size` bytes rounded down to 8.
    func resize(_ size: Int) throws(LogError) {
        try state.withLock { st throws(LogError) in
            let length = size / 8 * 8
            let fd = try FS.open(path, O_RDWR, create: true)
            defer { close(fd) }
            if ftruncate(fd, off_t(length)) != 0 { throw .io("cannot resize index \(path): \(FS.errnoText())") }
            try st.mapFile(fd: fd, length: length, path: path)
            st.maxEntries = length / 8
            st.entries = min(st.entries, st.maxEntries)
        }
    }

    func trimToValidSize() throws(LogError) {
        try resize(entryCount * 8)
    }

    /// msync runs outside the lock, so lookups (on event loops) never wait for the disk. Should
    /// the index be resized or closed meanwhile, msync of a range no longer mapped fails with
    /// ENOMEM (harmless: the new mapping is flushed by its own owner).
    func flush() {
        let range: (UnsafeMutableRawPointer, Int)? = state.withLock { st in
            guard let map = st.map, st.entries > 0 else { return nil }
            return (map, st.mapLength)
        }
        if let (map, length) = range { _ = msync(map, length, MS_SYNC) }
    }

    /// 0.8.2's sanity check, strengthened: entries strictly increasing from ≥ base, positions non-decreasing
    /// and within `logSize`.
    public func sanityCheck(logSize: Int) -> Bool {
        state.withLock { st in
            var prevRel: Int64 = -1
            var prevPos = -1
            for i in 0..<st.entries {
                let r = st.relOffset(i), p = st.position(i)
                if r <= 0 || r <= prevRel || p < prevPos || p > logSize { return false }
                prevRel = r
                prevPos = p
            }
            return true
        }
    }

    func rename(to newPath: String) throws(LogError) {
        try state.withLock { st throws(LogError) in
            try FS.rename(path, newPath)
            path = newPath
        }
    }

    func deleteFile() { state.withLock { st in FS.remove(path) } }
}
