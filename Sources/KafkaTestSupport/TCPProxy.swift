import ZooKeeper
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A loopback TCP forwarder for simulating network partitions: clients connect to `port`, traffic goes
/// to the target. `cut()` drops every connection and refuses new ones (accepts and closes at once)
/// until `heal()`. Connecting a ZooKeeper client through a proxy and cutting it for longer than the
/// session timeout expires the session for real, deterministically.
///
/// Uses plain threads and blocking sockets (never the Swift concurrency pool).
public final class TCPProxy: Sendable {
    public let port: Int
    public var targetPort: Int { shared.targetPort }
    public var targetHost: String { shared.targetHost }
    private var listenFD: Int32 { shared.listenFD }
    private let shared: Shared

    /// What the accept thread needs (it must not keep the proxy itself alive).
    private final class Shared: Sendable {
        let listenFD: Int32
        let targetHost: String
        let targetPort: Int
        let state = Mutex<(cut: Bool, stopped: Bool, fds: Set<Int32>)>((false, false, []))

        init(listenFD: Int32, targetHost: String, targetPort: Int) {
            self.listenFD = listenFD
            self.targetHost = targetHost
            self.targetPort = targetPort
        }

        /// Accepts one connection; false when the proxy is stopped.
        func acceptOne() -> Bool {
            let client = accept(listenFD, nil, nil)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { return true }
                return false
            }
            let (refuse, stopped) = state.withLock { ($0.cut, $0.stopped) }
            if stopped {
                close(client)
                return false
            }
            if refuse {
                close(client)
                return true
            }
            guard let upstream = TestNetwork.connectSocket(targetPort, host: targetHost, timeout: 0) else {
                close(client)
                return true
            }
            // No timeouts on the forwarding sockets.
            var zero = timeval(tv_sec: 0, tv_usec: 0)
            setsockopt(upstream, SOL_SOCKET, SO_RCVTIMEO, &zero, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(upstream, SOL_SOCKET, SO_SNDTIMEO, &zero, socklen_t(MemoryLayout<timeval>.size))
            state.withLock { s in
                s.fds.insert(client)
                s.fds.insert(upstream)
            }
            // Both directions end here; the second closes the sockets.
            final class Remaining: Sendable { let count = Mutex(2) }
            let remaining = Remaining()
            let finish: @Sendable () -> Void = { [self] in
                let last = remaining.count.withLock { n -> Bool in
                    n -= 1
                    return n == 0
                }
                shutdown(client, Int32(SHUT_RDWR))
                shutdown(upstream, Int32(SHUT_RDWR))
                if last {
                    self.state.withLock { s in
                        s.fds.remove(client)
                        s.fds.remove(upstream)
                    }
                    close(client)
                    close(upstream)
                }
            }
            Thread { Self.pump(from: client, to: upstream); finish() }.start()
            Thread { Self.pump(from: upstream, to: client); finish() }.start()
            return true
        }

        private static func pump(from source: Int32, to destination: Int32) {
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(source, $0.baseAddress, $0.count, 0) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                var offset = 0
                while offset < n {
                    let w = buffer.withUnsafeBytes {
                        send(destination, $0.baseAddress! + offset, n - offset, Int32(MSG_NOSIGNAL))
                    }
                    if w < 0 && errno == EINTR { continue }
                    if w <= 0 { return }
                    offset += w
                }
            }
        }
    }

    /// "127.0.0.1:<port>".
    public var connectString: String { "127.0.0.1:\(port)" }

    private init(port: Int, shared: Shared) {
        self.port = port
        self.shared = shared
    }

    deinit { stop() }

    public static func start(to targetPort: Int, host: String = "127.0.0.1") throws -> TCPProxy {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = FreePort.loopback(port: 0)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw TestSupportError("proxy bind/listen: \(message)")
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        let shared = Shared(listenFD: fd, targetHost: host, targetPort: targetPort)
        Thread { while shared.acceptOne() {} }.start()
        return TCPProxy(port: Int(UInt16(bigEndian: addr.sin_port)), shared: shared)
    }

    /// Drops all connections and refuses new ones until `heal()`.
    public func cut() {
        let fds = shared.state.withLock { s -> Set<Int32> in
            s.cut = true
            return s.fds
        }
        for fd in fds { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    /// Forwards new connections again.
    public func heal() {
        shared.state.withLock { $0.cut = false }
    }

    /// Closes the listener and all connections. Safe to call twice.
    public func stop() {
        let fds = shared.state.withLock { s -> Set<Int32>? in
            if s.stopped { return nil }
            s.stopped = true
            s.cut = true
            return s.fds
        }
        guard let fds else { return }
        for fd in fds { shutdown(fd, Int32(SHUT_RDWR)) }
        shutdown(listenFD, Int32(SHUT_RDWR))
        close(listenFD)
    }
}
