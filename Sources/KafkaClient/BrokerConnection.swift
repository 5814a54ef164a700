import Foundation
import KafkaProtocol
import NIOCore
import NIOPosix
import Synchronization

public struct KafkaClientError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Splits responses with the shared `SizePrefixedFrame` codec (a response holds at least its
/// correlation id). A large response (a follower's fetch of up to `replica.fetch.max.bytes`) is
/// parked between reads so that its bytes are read into place, not appended read by read
/// (`FrameReceiveHandoff`).
// Touched only on its channel's event loop.
final class ResponseFrameReceiver: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    static let sizes = 4...Int(Int32.max)
    let handoff: FrameReceiveHandoff?
    /// Received bytes not yet cut into a response (while parked in `handoff`: nil).
    private var inbound: ByteBuffer?

    init(handoff: FrameReceiveHandoff?) { self.handoff = handoff }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if let parked = handoff?.reclaim() { inbound = parked }
        if inbound == nil || inbound!.readableBytes == 0 { inbound = bytes } else { inbound!.writeBuffer(&bytes) }
        while inbound != nil {
            switch SizePrefixedFrame.next(from: &inbound!, sizes: Self.sizes) {
            case (.outOfBounds(let size), _):
                inbound = nil
                context.fireErrorCaught(KafkaClientError("bad response size \(size)"))
                return
            case (_, let frame?):
                handoff?.frameCut(frameBytes: SizePrefixedFrame.prefixLength + frame.readableBytes, leftover: inbound!.readableBytes)
                context.fireChannelRead(wrapInboundOut(frame))
            case (.partial(let size), nil):
                if handoff?.parkIfLarge(inbound!, size: size, allocator: context.channel.allocator) == true { inbound = nil }
                return
            default:
                return
            }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        inbound = nil
        handoff?.parked = nil
    }
}

/// Matches responses to requests by order (the broker answers strictly in order).
// Touched only on its channel's event loop.
final class ResponseHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private var waiting = CircularBuffer<(Int32, EventLoopPromise<ByteBuffer>)>()

    func enqueue(_ corr: Int32, _ p: EventLoopPromise<ByteBuffer>) { waiting.append((corr, p)) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buf = unwrapInboundIn(data)
        guard let (corr, promise) = waiting.popFirst() else { return }
        let got = buf.readInteger(endianness: .big, as: Int32.self) ?? -1
        if got != corr {
            promise.fail(KafkaClientError("correlation id mismatch: expected \(corr), got \(got)"))
        } else {
            promise.succeed(buf)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        while let (_, p) = waiting.popFirst() { p.fail(KafkaClientError("connection closed by the broker")) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        while let (_, p) = waiting.popFirst() { p.fail(error) }
        context.close(promise: nil)
    }
}

/// One TCP connection to a broker; requests may be pipelined.
public final class BrokerConnection: @unchecked Sendable {
    public let host: String
    public let port: Int
    let channel: Channel
    let handler: ResponseHandler
    let clientId: String
    private let nextCorrelation = Mutex<Int32>(1)

    public static let sharedGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// How long a request may wait for its response before the connection is closed (nil: forever).
    public let requestTimeout: TimeAmount?

    private init(host: String, port: Int, channel: Channel, handler: ResponseHandler, clientId: String, requestTimeout: TimeAmount?) {
        self.host = host
        self.port = port
        self.channel = channel
        self.handler = handler
        self.clientId = clientId
        self.requestTimeout = requestTimeout
    }

    /// Connects to a broker. With `requestTimeout`, a request whose response has not arrived in
    /// that time fails with `BrokerConnection.TimedOut` and closes the connection (responses are
    /// matched by order, so the connection cannot be used after a lost one): the socket timeout of
    /// Kafka's `BlockingChannel` (`replica.socket.timeout.ms`, `controller.socket.timeout.ms`).
    public static func connect(host: String, port: Int, clientId: String, group: EventLoopGroup = BrokerConnection.sharedGroup,
                               connectTimeout: TimeAmount = .seconds(10), requestTimeout: TimeAmount? = nil) async throws -> BrokerConnection {
        let handler = ResponseHandler()
        let bootstrap = ClientBootstrap(group: group)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(connectTimeout)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    let handoff = try FrameReceiveHandoff.install(
                        on: ch, adaptive: AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 2048, maximum: 1024 * 1024))
                    try ch.pipeline.syncOperations.addHandler(ResponseFrameReceiver(handoff: handoff))
                    try ch.pipeline.syncOperations.addHandler(handler)
                }
            }
        do {
            let ch = try await bootstrap.connect(host: host, port: port).get()
            return BrokerConnection(host: host, port: port, channel: ch, handler: handler, clientId: clientId, requestTimeout: requestTimeout)
        } catch {
            throw KafkaClientError("cannot connect to broker \(host):\(port): \(Self.describe(connectError: error))")
        }
    }

    /// A failed connect in words (`connection refused`, `unknown host`), not NIO's
    /// `NIOConnectionError(... SingleConnectionFailure(target: [IPv4]localhost/127.0.0.1:9999, ...))`.
    public static func describe(connectError error: Error) -> String {
        if let e = error as? NIOConnectionError {
            var reasons: [String] = []
            for failure in e.connectionErrors {
                let r = describe(connectError: failure.error)
                if !reasons.contains(r) { reasons.append(r) }
            }
            // "localhost" is tried over IPv6 and IPv4: a refusal is the answer that matters.
            let refused = String(cString: strerror(ECONNREFUSED)).lowercased()
            if reasons.contains(refused) { return refused }
            if !reasons.isEmpty { return reasons.joined(separator: "; ") }
            if e.dnsAError != nil || e.dnsAAAAError != nil { return "unknown host \(e.host)" }
            return "no address found for \(e.host)"
        }
        if let e = error as? IOError {
            return String(cString: strerror(e.errnoCode)).lowercased()
        }
        if let e = error as? ChannelError, case .connectTimeout(let t) = e {
            return "no answer within \(t.nanoseconds / 1_000_000) ms"
        }
        if let e = error as? SocketAddressError.UnknownHost {
            return "unknown host \(e.host)"
        }
        return "\(error)"
    }

    private func nextId() -> Int32 {
        nextCorrelation.withLock { next in
            let c = next
            next = next == Int32.max ? 1 : next + 1
            return c
        }
    }

    /// Sends a request and returns the response body (after the correlation id).
    public func send<R: KafkaRequest>(_ request: R) async throws -> ByteBuffer {
        let corr = nextId()
        let frame = request.frame(correlationId: corr, clientId: clientId)
        let promise = channel.eventLoop.makePromise(of: ByteBuffer.self)
        channel.eventLoop.execute {
            self.handler.enqueue(corr, promise)
            self.channel.writeAndFlush(frame).whenFailure { promise.fail($0) }
        }
        if let timeout = requestTimeout {
            let channel = self.channel
            let timer = channel.eventLoop.scheduleTask(in: timeout) {
                // Fails this request (and, by the close, every one behind it).
                promise.fail(TimedOut(host: self.host, port: self.port, timeout: timeout))
                channel.close(promise: nil)
            }
            promise.futureResult.whenComplete { _ in timer.cancel() }
        }
        return try await promise.futureResult.get()
    }

    /// No response within the connection's request timeout; the connection was closed.
    public struct TimedOut: Error, CustomStringConvertible, Sendable {
        public var host: String
        public var port: Int
        public var timeout: TimeAmount
        public var description: String {
            "no response from \(host):\(port) within \(timeout.nanoseconds / 1_000_000) ms; connection closed"
        }
    }

    /// Whether the connection is still open (a timed-out or broken one is not).
    public var isActive: Bool { channel.isActive }

    /// Sends a request that gets no response (acks=0 produce).
    public func sendWithoutResponse<R: KafkaRequest>(_ request: R) async throws {
        let frame = request.frame(correlationId: nextId(), clientId: clientId)
        try await channel.writeAndFlush(frame).get()
    }

    public func close() async {
        try? await channel.close().get()
    }

    // Typed helpers.
    public func metadata(_ topics: [String]) async throws -> MetadataResponse {
        var b = try await send(MetadataRequest(topics: topics))
        return try MetadataResponse.decode(from: &b)
    }

    public func produce(_ req: ProduceRequest) async throws -> ProduceResponse? {
        if req.requiredAcks == 0 {
            try await sendWithoutResponse(req)
            return nil
        }
        var b = try await send(req)
        return try ProduceResponse.decode(from: &b)
    }

    public func fetch(_ req: FetchRequest) async throws -> FetchResponse {
        var b = try await send(req)
        return try FetchResponse.decode(from: &b)
    }

    public func offsets(_ req: OffsetsRequest) async throws -> OffsetsResponse {
        var b = try await send(req)
        return try OffsetsResponse.decode(from: &b)
    }
}

extension BrokerConnection {
    /// Asks `bootstrap` for the leader of one partition until it has one (a Metadata request
    /// also auto-creates the topic where the broker allows it); nil after `attempts` tries.
    public static func findLeader(bootstrap: (host: String, port: Int), topic: String, partition: Int32 = 0,
                                  clientId: String, attempts: Int = 100) async throws -> (host: String, port: Int)? {
        let boot = try await BrokerConnection.connect(host: bootstrap.host, port: bootstrap.port, clientId: clientId)
        defer { Task { await boot.close() } }
        for _ in 0..<attempts {
            let md = try await boot.metadata([topic])
            if let t = md.topics.first(where: { $0.topic == topic }), t.error == .none,
               let p = t.partitions.first(where: { $0.partition == partition }), p.leader >= 0,
               let b = md.brokers.first(where: { $0.id == p.leader }) {
                return (b.host, Int(b.port))
            }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        return nil
    }
}

/// `host:port,host:port` lists as the tools take them.
public enum BrokerList {
    public static func parse(_ s: String) throws -> [(host: String, port: Int)] {
        let items = s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !items.isEmpty else { throw KafkaClientError("empty broker list") }
        return try items.map { item in
            guard let colon = item.lastIndex(of: ":"), let port = Int(item[item.index(after: colon)...]), port > 0, port < 65536 else {
                throw KafkaClientError("bad broker address \"\(item)\": expected host:port")
            }
            return (String(item[..<colon]), port)
        }
    }
}
