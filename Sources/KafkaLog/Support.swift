#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Locks: the project has one lock type, the standard library's `Synchronization.Mutex`, with the
// fields a lock guards moved into its state (`Mutex<State>`), so they cannot be touched without it.
// Why this one: it ships with the toolchain, so every module (this one, ZooKeeper, the server, the
// client, tools and tests) can use it without pulling NIO into modules that do not otherwise need it
// (NIO's `NIOLockedValueBox` would); it is non-copyable and not reentrant; an uncontended lock is one
// atomic. A `Mutex<Void>` serves only where a lock orders steps rather than guarding fields
// (`Partition.leadershipLock`). Never hold one across an `await`. Trade-off: on Linux it sits on
// raw futexes, which ThreadSanitizer does not model; the project runs AddressSanitizer (fuzzing)
// but not TSan, where a pthread-based lock would have been needed.

/// Small POSIX file helpers. All failures are `LogError.io` naming the path and errno text.
public enum FS {
    static func errnoText(_ e: Int32 = errno) -> String { String(cString: strerror(e)) }

    public static func nowMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    public static func fileSize(_ path: String) -> Int64? {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : nil
    }

    static func mtimeMs(fd: Int32) -> Int64 {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return 0 }
        return Int64(st.st_mtim.tv_sec) * 1000 + Int64(st.st_mtim.tv_nsec) / 1_000_000
    }

    static func mtimeMs(path: String) -> Int64? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Int64(st.st_mtim.tv_sec) * 1000 + Int64(st.st_mtim.tv_nsec) / 1_000_000
    }

    public static func setMtime(path: String, ms: Int64) {
        var times = [timespec(tv_sec: Int(ms / 1000), tv_nsec: Int((ms % 1000) * 1_000_000)),
                     timespec(tv_sec: Int(ms / 1000), tv_nsec: Int((ms % 1000) * 1_000_000))]
        _ = utimensat(AT_FDCWD, path, &times, 0)
    }

    static func mkdirs(_ path: String) throws(LogError) {
        if isDirectory(path) { return }
        var cur = path.hasPrefix("/") ? "" : "."
        for comp in path.split(separator: "/") {
            cur += "/" + comp
            if !isDirectory(cur) {
                if mkdir(cur, 0o755) != 0 && errno != EEXIST {
                    throw .io("cannot create directory \(cur): \(errnoText())")
                }
            }
        }
    }

    static func listDirectory(_ path: String) throws(LogError) -> [String] {
        guard let d = opendir(path) else { throw .io("cannot list directory \(path): \(errnoText())") }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func open(_ path: String, _ flags: Int32, create: Bool = false) throws(LogError) -> Int32 {
        let fd = create ? Glibc.open(path, flags | O_CREAT | O_CLOEXEC, 0o644) : Glibc.open(path, flags | O_CLOEXEC)
        if fd < 0 { throw .io("cannot open \(path): \(errnoText())") }
        return fd
    }

    static func pwriteAll(_ fd: Int32, _ p: UnsafeRawBufferPointer, at offset: Int64, path: String) throws(LogError) {
        var done = 0
        while done < p.count {
            let n = pwrite(fd, p.baseAddress! + done, p.count - done, off_t(offset + Int64(done)))
            if n < 0 {
                if errno == EINTR { continue }
                throw .io("write to \(path) failed: \(errnoText())")
            }
            done += n
        }
    }

    /// Reads up to `count` bytes at `offset`; returns the number read (short at EOF).
    static func preadFully(_ fd: Int32, _ p: UnsafeMutableRawPointer, count: Int, at offset: Int64) -> Int {
        var done = 0
        while done < count {
            let n = pread(fd, p + done, count - done, off_t(offset + Int64(done)))
            if n < 0 { if errno == EINTR { continue }; return done }
            if n == 0 { break }
            done += n
        }
        return done
    }

    static func rename(_ from: String, _ to: String) throws(LogError) {
        if Glibc.rename(from, to) != 0 { throw .io("cannot rename \(from) to \(to): \(errnoText())") }
    }

    static func remove(_ path: String) { _ = unlink(path) }

    static func fsyncDirectory(_ path: String) {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { _ = fsync(fd); close(fd) }
    }

    static func writeFileAtomically(_ path: String, _ bytes: [UInt8]) throws(LogError) {
        let tmp = path + ".tmp"
        let fd = try open(tmp, O_WRONLY | O_TRUNC, create: true)
        let ok: LogError? = bytes.withUnsafeBytes { p in
            do throws(LogError) { try pwriteAll(fd, p, at: 0, path: tmp); return nil } catch { return error }
        }
        if let ok { close(fd); throw ok }
        if fsync(fd) != 0 { let t = errnoText(); close(fd); throw .io("fsync of \(tmp) failed: \(t)") }
        close(fd)
        try rename(tmp, path)
        let dir = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        fsyncDirectory(dir.isEmpty ? "." : dir)
    }

    static func readFile(_ path: String) throws(LogError) -> [UInt8] {
        let fd = try open(path, O_RDONLY)
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw .io("cannot read \(path): \(errnoText())") }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }
}

@inline(__always) func loadBE64(_ p: UnsafeRawPointer, _ at: Int) -> Int64 {
    Int64(bigEndian: p.loadUnaligned(fromByteOffset: at, as: Int64.self))
}
@inline(__always) func loadBE32(_ p: UnsafeRawPointer, _ at: Int) -> Int32 {
    Int32(bigEndian: p.loadUnaligned(fromByteOffset: at, as: Int32.self))
}
@inline(__always) func loadBEU32(_ p: UnsafeRawPointer, _ at: Int) -> UInt32 {
    UInt32(bigEndian: p.loadUnaligned(fromByteOffset: at, as: UInt32.self))
}

/// `withUnsafeBytes` keeping a typed error.
@inline(__always)
func withBytes<R, E: Error>(_ a: [UInt8], _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
    let r: Result<R, E> = a.withUnsafeBytes { p in
        do throws(E) { return .success(try body(p)) } catch { return .failure(error) }
    }
    return try r.get()
}
