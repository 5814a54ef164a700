import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The `/metrics` endpoint (`metrics.port`): a minimal HTTP/1.1 responder (NIOHTTP1) on the
/// broker's own event loops (SocketServer's group). `GET /metrics` (and `HEAD`) answers the
/// Prometheus text format; other paths 404, other methods 405. Keep-alive and pipelined
/// requests are handled by NIO's HTTP server pipeline (one response at a time, in order).
///
/// The event loop only parses the request and writes the response: the scrape itself (reading
/// broker state, ZooKeeper reads for consumer lag, rendering) runs in a Task on the cooperative
/// pool, and its result is written back on the connection's loop.
final class MetricsHTTPServer: Sendable {
    let channel: Channel
    var localPort: Int { channel.localAddress?.port ?? -1 }

    private init(channel: Channel) { self.channel = channel }

    static func start(group: EventLoopGroup, host: String, port: Int, logger: Logger,
                      render: @escaping @Sendable () async -> [UInt8]) async throws -> MetricsHTTPServer {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 64)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let ops = channel.pipeline.syncOperations
                    try ops.configureHTTPServerPipeline(withErrorHandling: true)
                    try ops.addHandler(MetricsHTTPHandler(render: render, logger: logger))
                }
            }
        let channel = try await bootstrap.bind(host: host, port: port).get()
        return MetricsHTTPServer(channel: channel)
    }

    func shutdown() async {
        try? await channel.close()
    }
}

final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let render: @Sendable () async -> [UInt8]
    let logger: Logger
    private var head: HTTPRequestHead?

    init(render: @escaping @Sendable () async -> [UInt8], logger: Logger) {
        self.render = render
        self.logger = logger
    }

    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
        case .body:
            break   // a scrape has no body; anything sent is ignored
        case .end:
            guard let h = head else { return }
            head = nil
            handle(context: context, h)
        }
    }

    private func handle(context: ChannelHandlerContext, _ h: HTTPRequestHead) {
        let path = h.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? h.uri
        guard h.method == .GET || h.method == .HEAD else {
            respond(context: context, h, status: .methodNotAllowed, body: Array("Only GET and HEAD are served.\n".utf8),
                    extraHeaders: [("Allow", "GET, HEAD")])
            return
        }
        guard path == "/metrics" else {
            respond(context: context, h, status: .notFound, body: Array("Not found: metrics are at /metrics\n".utf8))
            return
        }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let render = self.render
        context.eventLoop.makeFutureWithTask { await render() }.whenComplete { result in
            let (handler, context) = bound.value
            switch result {
            case .success(let body):
                handler.respond(context: context, h, status: .ok, body: body, contentType: Self.contentType)
            case .failure(let error):
                handler.respond(context: context, h, status: .internalServerError, body: Array("\(error)\n".utf8))
            }
        }
    }

    private func respond(context: ChannelHandlerContext, _ h: HTTPRequestHead, status: HTTPResponseStatus, body: [UInt8],
                         contentType: String = "text/plain; charset=utf-8", extraHeaders: [(String, String)] = []) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.count))
        for (k, v) in extraHeaders { headers.add(name: k, value: v) }
        let keepAlive = h.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: status, headers: headers))), promise: nil)
        if h.method != .HEAD && !body.isEmpty {
            var buf = context.channel.allocator.buffer(capacity: body.count)
            buf.writeBytes(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buf))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("Metrics connection error: \(error)")
        context.close(promise: nil)
    }
}
