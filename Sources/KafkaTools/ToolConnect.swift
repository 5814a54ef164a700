import Foundation
import KafkaClient
import KafkaCluster
import Synchronization
import ZooKeeper

#if canImport(Glibc)
import Glibc
#endif

/// How every tool connects to ZooKeeper: one timeout, a line on stderr while it waits, and a fast
/// failure when nothing listens at the address.
///
/// * The timeout is `ToolZooKeeper.connectionTimeoutMs`: 0.8.2's `zookeeper.connection.timeout.ms`
///   default (6000 ms), or `KAFKA_ZOOKEEPER_CONNECTION_TIMEOUT_MS` from the environment. Consumer
///   tools use `zookeeper.connection.timeout.ms` from their `--consumer.config` when it sets one.
/// * When no session is up after a second, one line says what it waits for:
///   `Waiting for ZooKeeper at localhost:2181 (up to 6 s) ...`.
/// * When every server of the connect string refuses TCP connections (nothing listens there) for
///   `refusedGraceMs`, or a host name does not resolve, it fails at once instead of waiting out
///   the timeout: `cannot connect to ZooKeeper at localhost:2182: connection refused`.
public enum ToolZooKeeper {
    public static let defaultConnectionTimeoutMs = 6000
    /// How long refused connections are tolerated (a ZooKeeper that is just starting).
    static let refusedGraceMs = 1500
    static let probeIntervalMs = 250
    static let firstProbeAfterMs = 200
    static let announceAfterMs = 1000

    public static var connectionTimeoutMs: Int {
        if let raw = ProcessInfo.processInfo.environment["KAFKA_ZOOKEEPER_CONNECTION_TIMEOUT_MS"],
           let v = Int(raw), v > 0 { return v }
        return defaultConnectionTimeoutMs
    }

    /// The `host:port` servers of a connect string (`h1:2181,h2:2181/chroot`), port 2181 when absent.
    public static func servers(_ connectString: String) -> [(host: String, port: Int)] {
        let hosts = connectString.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        return hosts.split(separator: ",").compactMap { raw -> (String, Int)? in
            let s = raw.trimmingCharacters(in: .whitespaces)
            guard !s.isEmpty else { return nil }
            if s.hasPrefix("["), let close = s.firstIndex(of: "]") {   // [v6]:port
                let host = String(s[s.index(after: s.startIndex)..<close])
                let rest = s[s.index(after: close)...]
                return (host, rest.hasPrefix(":") ? Int(rest.dropFirst()) ?? 2181 : 2181)
            }
            if let colon = s.lastIndex(of: ":"), s.firstIndex(of: ":") == colon {
                return (String(s[..<colon]), Int(s[s.index(after: colon)...]) ?? 2181)
            }
            return (s, 2181)
        }
    }

    /// Connects to a Kafka cluster's ZooKeeper for a tool.
    public static func connect(_ connectString: String, timeoutMs: Int? = nil) async throws -> KafkaZooKeeper {
        let t = timeoutMs ?? connectionTimeoutMs
        return try await connect(connectString, timeoutMs: t) { ms in
            try await KafkaZooKeeper.connect(connectString, sessionTimeoutMs: 30000, connectionTimeoutMs: ms)
        }
    }

    /// Runs `open` (which connects with the given timeout) while watching the servers; throws a
    /// `ToolError` naming the address when they refuse connections or the timeout passes.
    public static func connect<T: Sendable>(_ connectString: String, timeoutMs: Int,
                                           _ open: @escaping @Sendable (Int) async throws -> T) async throws -> T {
        let servers = servers(connectString)
        let address = servers.map { "\($0.host):\($0.port)" }.joined(separator: ",")
        let shown = address.isEmpty ? connectString : address
        let (events, sink) = AsyncStream<ConnectEvent<T>>.makeStream()
        let opener = Task {
            do { sink.yield(.opened(.success(try await open(timeoutMs)))) } catch { sink.yield(.opened(.failure(error))) }
        }
        let watcher = Task {
            let start = DispatchTime.now().uptimeNanoseconds
            func elapsedMs() -> Int { Int((DispatchTime.now().uptimeNanoseconds - start) / 1_000_000) }
            // A session on a reachable server is usually up before the first probe, so a normal
            // run opens no extra connection. Once a server accepted a probe, the ticks only time
            // the wait (no more probes).
            try? await Task.sleep(nanoseconds: UInt64(firstProbeAfterMs) * 1_000_000)
            var reached = false
            while !Task.isCancelled {
                let r: ProbeResult = reached ? .reachable : await probeAll(servers)
                if r == .reachable { reached = true }
                sink.yield(.probe(r, elapsedMs: elapsedMs()))
                try? await Task.sleep(nanoseconds: UInt64(probeIntervalMs) * 1_000_000)
            }
        }
        defer { watcher.cancel() }
        var refusedSinceMs: Int?
        var announced = false
        for await event in events {
            switch event {
            case .opened(.success(let value)):
                return value
            case .opened(.failure(let error)):
                if case .connectTimeout? = error as? ZooKeeperError {
                    throw ToolError("cannot connect to ZooKeeper at \(shown): no connection within \(timeoutMs) ms (zookeeper.connection.timeout.ms)")
                }
                switch await probeAll(servers) {
                case .unresolvable(let host): throw ToolError("cannot connect to ZooKeeper at \(shown): unknown host \(host)")
                case .refused: throw ToolError("cannot connect to ZooKeeper at \(shown): connection refused (is ZooKeeper running there?)")
                default: throw ToolError("cannot connect to ZooKeeper at \(shown): \(error)")
                }
            case .probe(let r, let elapsed):
                if elapsed >= timeoutMs + probeIntervalMs {
                    // The opener's own timeout may be longer (a consumer waits for max(connection, session)).
                    opener.cancel()
                    throw ToolError("cannot connect to ZooKeeper at \(shown): no connection within \(timeoutMs) ms (zookeeper.connection.timeout.ms)")
                }
                switch r {
                case .unresolvable(let host):
                    opener.cancel()
                    throw ToolError("cannot connect to ZooKeeper at \(shown): unknown host \(host)")
                case .refused:
                    let since = refusedSinceMs ?? elapsed
                    refusedSinceMs = since
                    if elapsed - since >= refusedGraceMs {
                        opener.cancel()
                        throw ToolError("cannot connect to ZooKeeper at \(shown): connection refused (is ZooKeeper running there?)")
                    }
                case .reachable, .noAnswer:
                    refusedSinceMs = nil
                    if !announced && elapsed >= announceAfterMs {
                        announced = true
                        Console.err("Waiting for ZooKeeper at \(shown) (up to \(max(1, timeoutMs / 1000)) s) ...")
                    }
                }
            }
        }
        throw ToolError("cannot connect to ZooKeeper at \(shown)")
    }

    /// Connects a ZooKeeper group consumer the same way. Its timeout is `zookeeper.connection.timeout.ms`
    /// when `properties` (the tool's consumer config) sets it, else the shared one.
    public static func connectConsumer(_ config: ZookeeperConsumerConfig, properties: [String: String] = [:]) async throws -> ZookeeperConsumer {
        var cfg = config
        if properties["zookeeper.connection.timeout.ms"] == nil { cfg.connectionTimeoutMs = connectionTimeoutMs }
        let finalConfig = cfg
        return try await connect(cfg.zookeeperConnect, timeoutMs: cfg.connectionTimeoutMs) { _ in
            try await ZookeeperConsumer.connect(finalConfig)
        }
    }

    enum ConnectEvent<T: Sendable>: Sendable {
        case opened(Result<T, Error>)
        case probe(ProbeResult, elapsedMs: Int)
    }

    enum ProbeResult: Sendable, Equatable {
        /// Some server accepted a TCP connection.
        case reachable
        /// Every server refused (nothing listens).
        case refused
        /// A host name does not resolve.
        case unresolvable(String)
        /// No server accepted, not every one refused (timeouts, unreachable networks).
        case noAnswer
    }

    static func probeAll(_ servers: [(host: String, port: Int)]) async -> ProbeResult {
        await withCheckedContinuation { (c: CheckedContinuation<ProbeResult, Never>) in
            DispatchQueue.global().async {
                var results: [ProbeResult] = []
                for s in servers { results.append(TCPProbe.probe(host: s.host, port: s.port, timeoutMs: 1000)) }
                if let bad = results.first(where: { if case .unresolvable = $0 { return true } else { return false } }) {
                    c.resume(returning: bad)
                } else if results.contains(.reachable) {
                    c.resume(returning: .reachable)
                } else if !results.isEmpty && results.allSatisfy({ $0 == .refused }) {
                    c.resume(returning: .refused)
                } else {
                    c.resume(returning: .noAnswer)
                }
            }
        }
    }
}

/// A blocking TCP connect with a timeout, used to tell "nothing listens" from "slow".
enum TCPProbe {
    static func probe(host: String, port: Int, timeoutMs: Int) -> ToolZooKeeper.ProbeResult {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            return .unresolvable(host)
        }
        defer { freeaddrinfo(first) }
        // "localhost" resolves to ::1 and 127.0.0.1: an address family the machine does not
        // have (no IPv6) says nothing about the server, a refusal on the other one does.
        let unusable: Set<Int32> = [EADDRNOTAVAIL, EAFNOSUPPORT, ENETUNREACH]
        var refused = 0, other = 0
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            defer { ai = a.pointee.ai_next }
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK)
            var err: Int32 = 0
            if connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return polite(fd) }
            err = errno
            if err == EINPROGRESS {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                if poll(&p, 1, Int32(timeoutMs)) <= 0 {   // no answer in time
                    other += 1
                    continue
                }
                var soErr: Int32 = 0
                var len = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soErr, &len)
                if soErr == 0 { return polite(fd) }
                err = soErr
            }
            if err == ECONNREFUSED {
                refused += 1
            } else if !unusable.contains(err) {
                other += 1
            }
        }
        return refused > 0 && other == 0 ? .refused : .noAnswer
    }

    /// A connected probe asks ZooKeeper's `srvr` four-letter word and reads the answer until the
    /// server closes: closing a bare connection makes ZooKeeper log an EndOfStreamException.
    private static func polite(_ fd: Int32) -> ToolZooKeeper.ProbeResult {
        let word: [UInt8] = Array("srvr".utf8)
        _ = word.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var buf = [UInt8](repeating: 0, count: 512)
        let deadline = DispatchTime.now().uptimeNanoseconds + 500_000_000
        while DispatchTime.now().uptimeNanoseconds < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) > 0 else { continue }
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
        }
        return .reachable
    }
}
