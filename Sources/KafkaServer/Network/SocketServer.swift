import Foundation
import Logging
import KafkaProtocol
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Bounds of the network layer (Kafka 0.8.2 names where there is one).
public struct SocketServerLimits: Sendable {
    /// `queued.max.requests`: connections with a complete request waiting behind one in progress.
    /// At the bound, connections stop reading until one drains.
    public var queuedMaxRequests = 500
    /// `max.connections.per.ip` and `max.connections.per.ip.overrides` (host or IP → maximum).
    public var maxConnectionsPerIp = Int.max
    public var maxConnectionsPerIpOverrides: [String: Int] = [:]
    /// `connections.max.idle.ms`: a connection from which nothing was read for this long, and
    /// that has no request being processed, is closed.
    public var connectionsMaxIdleMs: Int64 = 600_000
    /// Per connection: unsent response bytes (byte buffers and file regions) above which the next
    /// request is not processed and the connection is not read, until they drain below the low mark.
    public var unsentResponseHighBytes = 4 << 20
    public var unsentResponseLowBytes = 1 << 20
    /// Per connection: received bytes (requests waiting behind the one in progress) above which
    /// the connection is not read; a larger request is read whole.
    public var maxQueuedBytesPerConnection = 1 << 20

    public init() {}
}

/// `queued.max.requests` across connections. In 0.8.2 a connection is not read while its request
/// is queued or in progress, so the queue holds at most one request per connection; here a
/// connection counts while it has a complete request waiting behind one in progress. At the
/// bound, connections stop reading until one drains (they register to be woken).
final class RequestGate: @unchecked Sendable {
    let limit: Int
    private struct State {
        var queued = 0
        var waiters: [ObjectIdentifier: @Sendable () -> Void] = [:]
    }
    private let state = Mutex(State())

    init(limit: Int) { self.limit = max(limit, 1) }

    var isFull: Bool { state.withLock { st in st.queued >= limit } }
    var count: Int { state.withLock { st in st.queued } }

    func added(_ n: Int = 1) { state.withLock { st in st.queued += n } }

    /// Requests left the queue (started or dropped with their connection); wakes waiters below the limit.
    func removed(_ n: Int = 1) {
        guard n > 0 else { return }
        let wake: [@Sendable () -> Void] = state.withLock { st in
            st.queued -= n
            guard st.queued < limit, !st.waiters.isEmpty else { return [] }
            let w = Array(st.waiters.values)
            st.waiters.removeAll()
            return w
        }
        for w in wake { w() }
    }

    /// Registers `wake` to run once the gate has room; runs it at once if it has room already.
    func waitForRoom(_ id: ObjectIdentifier, _ wake: @escaping @Sendable () -> Void) {
        let now: Bool = state.withLock { st in
            if st.queued < limit { return true }
            st.waiters[id] = wake
            return false
        }
        if now { wake() }
    }

    func cancelWait(_ id: ObjectIdentifier) { state.withLock { st in _ = st.waiters.removeValue(forKey: id) } }
}

/// `max.connections.per.ip` (Kafka's `ConnectionQuotas`).
final class ConnectionQuotas: @unchecked Sendable {
    let defaultMax: Int
    let overrides: [String: Int]
    private let counts = Mutex<[String: Int]>([:])

    init(defaultMax: Int, overrides: [String: Int]) {
        self.defaultMax = defaultMax
        var byAddress: [String: Int] = [:]
        for (host, n) in overrides {
            for ip in ConnectionQuotas.resolve(host) { byAddress[ip] = n }
        }
        self.overrides = byAddress
    }

    /// Counts a new connection from `ip`; false (and not counted) when `ip` is at its maximum.
    func inc(_ ip: String) -> Bool {
        counts.withLock { counts in
            let n = counts[ip, default: 0]
            if n >= (overrides[ip] ?? defaultMax) { return false }
            counts[ip] = n + 1
            return true
        }
    }

    func dec(_ ip: String) {
        counts.withLock { counts in
            guard let n = counts[ip] else { return }
            counts[ip] = n > 1 ? n - 1 : nil
        }
    }

    func count(_ ip: String) -> Int { counts.withLock { counts in counts[ip] ?? 0 } }

    func maximum(_ ip: String) -> Int { overrides[ip] ?? defaultMax }

    /// The addresses of `host` (an IP literal resolves to itself).
    static func resolve(_ host: String) -> [String] {
        if (try? SocketAddress(ipAddress: host, port: 0)) != nil { return [host] }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &res) == 0, let first = res else { return [] }
        defer { freeaddrinfo(first) }
        var out: [String] = []
        var p: UnsafeMutablePointer<addrinfo>? = first
        while let ai = p {
            if let sa = ai.pointee.ai_addr,
               let addr = try? SocketAddress(sockaddr: sa, length: ai.pointee.ai_addrlen), let ip = addr.ipAddress {
                out.append(ip)
            }
            p = ai.pointee.ai_next
        }
        return out
    }
}

extension SocketAddress {
    fileprivate init(sockaddr sa: UnsafeMutablePointer<sockaddr>, length: socklen_t) throws {
        switch Int32(sa.pointee.sa_family) {
        case AF_INET:
            let v4 = UnsafeRawPointer(sa).load(as: sockaddr_in.self)
            self = SocketAddress(v4, host: "")
        case AF_INET6:
            let v6 = UnsafeRawPointer(sa).load(as: sockaddr_in6.self)
            self = SocketAddress(v6, host: "")
        default:
            throw ChannelError.operationUnsupported
        }
    }
}

/// The broker's listening socket (Kafka's `SocketServer`): one NIO channel per connection,
/// frames split by size, requests answered in order, reads paused while a connection's
/// responses are unsent or the broker's request queue is full.
public final class SocketServer: Sendable {
    let group: MultiThreadedEventLoopGroup
    let channel: Channel
    let quotas: ConnectionQuotas
    let gate: RequestGate
    public var localPort: Int { channel.localAddress?.port ?? -1 }

    private init(group: MultiThreadedEventLoopGroup, channel: Channel, quotas: ConnectionQuotas, gate: RequestGate) {
        self.group = group
        self.channel = channel
        self.quotas = quotas
        self.gate = gate
    }

    /// Binds the listener (awaited: no thread blocks while it binds).
    public static func start(host: String?, port: Int, maxRequestSize: Int, sendBuffer: Int, receiveBuffer: Int,
                             threads: Int, processor: RequestProcessor, logger: Logger,
                             limits: SocketServerLimits = SocketServerLimits()) async throws -> SocketServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let quotas = ConnectionQuotas(defaultMax: limits.maxConnectionsPerIp, overrides: limits.maxConnectionsPerIpOverrides)
        let gate = RequestGate(limit: limits.queuedMaxRequests)
        // One idle sweep per event loop (the loops are the group's for the server's lifetime).
        var sweepers: [ObjectIdentifier: IdleConnectionSweeper] = [:]
        if let idleMs = IdleConnectionSweeper.idleMs(limits) {
            for loop in group.makeIterator() { sweepers[ObjectIdentifier(loop)] = IdleConnectionSweeper(eventLoop: loop, idleMs: idleMs) }
        }
        let sweeperOf = sweepers
        let high = max(limits.unsentResponseHighBytes, 1)
        let low = min(max(limits.unsentResponseLowBytes, 0), high)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.so_sndbuf), value: SocketOptionValue(sendBuffer))
            .childChannelOption(ChannelOptions.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBuffer))
            .childChannelOption(ChannelOptions.writeBufferWaterMark, value: .init(low: low, high: high))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // A small first read: an idle connection's closing read allocates it, and 10,000
                    // connections closing at once left a 64 KB one each in the heap (RSS +230 MB kept).
                    // A busy producer's reads grow to the maximum within a few reads.
                    let handoff = try FrameReceiveHandoff.install(
                        on: channel, adaptive: AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 2048, maximum: 1024 * 1024))
                    let ip = channel.remoteAddress?.ipAddress ?? "?"
                    guard quotas.inc(ip) else {
                        logger.info("Rejected connection from \(ip): too many connections (max.connections.per.ip = \(quotas.maximum(ip)))")
                        throw ChannelError.inputClosed
                    }
                    channel.closeFuture.whenComplete { _ in quotas.dec(ip) }
                    try SocketServer.addConnectionHandlers(to: channel.pipeline.syncOperations, maxRequestSize: maxRequestSize,
                                                           processor: processor, logger: logger, limits: limits, gate: gate,
                                                           sweeper: sweeperOf[ObjectIdentifier(channel.eventLoop)], handoff: handoff)
                }
            }
        do {
            let channel = try await bootstrap.bind(host: (host?.isEmpty ?? true) ? "0.0.0.0" : host!, port: port).get()
            return SocketServer(group: group, channel: channel, quotas: quotas, gate: gate)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// The per-connection pipeline: size-prefixed frames in, responses out in request order, idle
    /// connections closed.
    public static func addConnectionHandlers(to pipeline: ChannelPipeline.SynchronousOperations, maxRequestSize: Int,
                                             processor: RequestProcessor, logger: Logger,
                                             limits: SocketServerLimits = SocketServerLimits()) throws {
        try addConnectionHandlers(to: pipeline, maxRequestSize: maxRequestSize, processor: processor, logger: logger,
                                  limits: limits, gate: RequestGate(limit: limits.queuedMaxRequests))
    }

    static func addConnectionHandlers(to pipeline: ChannelPipeline.SynchronousOperations, maxRequestSize: Int,
                                      processor: RequestProcessor, logger: Logger,
                                      limits: SocketServerLimits, gate: RequestGate,
                                      sweeper: IdleConnectionSweeper? = nil, handoff: FrameReceiveHandoff? = nil) throws {
        try pipeline.addHandler(KafkaConnectionHandler(processor: processor, logger: logger, maxFrameSize: maxRequestSize,
                                                       limits: limits, gate: gate, sweeper: sweeper, handoff: handoff))
    }

    public func shutdown() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}
