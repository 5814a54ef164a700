import Glibc

extension Log {
    /// Bytes at the end of the active segment taken to be in the page cache without checking.
    static let recentlyWrittenBytes = 256 * 1024

    /// Whether reading up to `maxBytes` from `offset` (bounded by `maxOffset`, a consumer's high
    /// watermark) would wait for the disk: some page that the read may touch is not in the page
    /// cache. Recently written data normally is cached, older segments often are too (consumers
    /// close behind the producers), but evicted or dropped pages are not, and a read of them on
    /// an event loop would stall every connection of that loop. The read touches the headers
    /// from the index entry at or below `offset` up to `offset`'s message (which starts before
    /// the next index entry), then up to `maxBytes` from there; a bound inside the segment is
    /// found by a second scan, from the index entry at or below it. All of that is checked.
    /// Cost: index lookups, mmap + mincore + munmap per range (no data is read, nothing faults
    /// in); none within the last `recentlyWrittenBytes` of the log. False when `offset` is
    /// outside the log (the read answers with an error) or the check itself fails.
    public func readMayMissPageCache(from offset: Int64, maxBytes: Int, upTo maxOffset: Int64? = nil) -> Bool {
        let snap = snapshot
        let segs = snap.segments
        guard maxBytes > 0, let first = segs.first, offset >= first.baseOffset, offset < snap.logEndOffset else { return false }
        let i = Log.floorIndex(segs, offset)
        let segment = segs[i]
        let isLast = i == segs.count - 1
        let size = segment.size
        // The last bytes written: checking them would cost three syscalls (and a TLB flush) on
        // every fetch at the log end.
        func recentlyWritten(_ position: Int) -> Bool { isLast && size - position <= Self.recentlyWrittenBytes }
        let bounds = segment.index.positionBounds(offset)
        let start = bounds.floor
        guard start < size, !recentlyWritten(start) else { return false }
        let entryBefore = bounds.floorOffset == offset ? start : (bounds.ceiling ?? size)
        if !pagesResident(fd: segment.fd, position: start, length: min(size, entryBefore + maxBytes) - start) { return true }
        // The bound's scan (`LogSegment.read`): only when the bound lies inside this segment.
        guard let maxOffset = Log.bound(maxOffset, inside: segs, i), maxOffset > offset else { return false }
        let bound = segment.index.positionBounds(maxOffset)
        let from = max(bound.floor, start)
        guard from < size, !recentlyWritten(from) else { return false }
        // Up to the bound's header, which starts before the next index entry (or the segment's end).
        let to = min(size, (bound.ceiling ?? size) + LogSegment.Scanner.headerWindow)
        return !pagesResident(fd: segment.fd, position: from, length: to - from)
    }
}

private let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

/// True when every page of [position, position + length) of `fd` is in the page cache (or the
/// check could not be made).
private func pagesResident(fd: Int32, position: Int, length: Int) -> Bool {
    let alignedStart = position & ~(pageSize - 1)
    let mappedLength = position + length - alignedStart
    guard let map = mmap(nil, mappedLength, PROT_READ, MAP_SHARED, fd, off_t(alignedStart)), map != MAP_FAILED else {
        return true
    }
    defer { munmap(map, mappedLength) }
    let pages = (mappedLength + pageSize - 1) / pageSize
    return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: pages) { vec in
        guard mincore(map, mappedLength, vec.baseAddress) == 0 else { return true }
        return vec.allSatisfy { $0 & 1 == 1 }
    }
}

extension LogReadSlice {
    /// Whether every page of the slice is in the page cache (mincore; true for an empty slice).
    public var isInPageCache: Bool {
        length <= 0 || pagesResident(fd: fileDescriptor, position: Int(position), length: length)
    }
}
