import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum FreePort {
    /// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read back, released).
    public static func allocate() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var addr = loopback(port: 0)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw TestSupportError("bind: \(String(cString: strerror(errno)))") }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard named == 0 else { throw TestSupportError("getsockname: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func loopback(port: Int, host: String = "127.0.0.1") -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        inet_pton(AF_INET, host, &addr.sin_addr)
        return addr
    }
}

public enum TestNetwork {
    /// Polls until something accepts TCP connections on host:port (IPv4 literal), up to `timeout` seconds.
    public static func waitForPort(_ port: Int, host: String = "127.0.0.1", timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if isOpen(port, host: host) { return true }
            if Date() >= deadline { return false }
            usleep(50_000)
        }
    }

    /// True if a TCP connection to host:port succeeds right now.
    public static func isOpen(_ port: Int, host: String = "127.0.0.1") -> Bool {
        guard let fd = connectSocket(port, host: host, timeout: 1) else { return false }
        close(fd)
        return true
    }

    /// Sends a ZooKeeper four-letter word ("ruok", "srvr", "stat", ...) and returns the reply, or nil.
    /// The server must whitelist it (the test ZooKeeperServer whitelists all).
    public static func fourLetterWord(_ word: String, port: Int, host: String = "127.0.0.1",
                                      timeout: Double = 2) -> String? {
        guard let fd = connectSocket(port, host: host, timeout: timeout) else { return nil }
        defer { close(fd) }
        let bytes = Array(word.utf8)
        let sent = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == bytes.count else { return nil }
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                reply.append(contentsOf: buffer[0..<n])
            } else {
                break   // EOF, error or timeout
            }
        }
        return reply.isEmpty ? nil : String(decoding: reply, as: UTF8.self)
    }

    /// A connected blocking socket with send/receive timeouts, or nil.
    static func connectSocket(_ port: Int, host: String, timeout: Double) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = FreePort.loopback(port: port, host: host)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 {
            close(fd)
            return nil
        }
        return fd
    }
}

public enum ProjectPaths {
    /// The repository root (the directory holding Package.swift), found from this source file's
    /// location, else from the current directory upwards.
    public static var root: String {
        if let found = searchUp(from: URL(fileURLWithPath: #filePath).deletingLastPathComponent()) { return found }
        if let found = searchUp(from: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) { return found }
        return FileManager.default.currentDirectoryPath
    }

    /// root/.build/release (where `swift build -c release` puts the executables).
    public static var releaseBinDir: String {
        root + "/.build/release"
    }

    private static func searchUp(from start: URL) -> String? {
        var dir = start.standardizedFileURL
        while true {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
                return dir.path
            }
            let parent = dir.deletingLastPathComponent()
            if parent.path == dir.path { return nil }
            dir = parent
        }
    }
}
