import KafkaProtocol
import NIOCore

/// One API's handler: decodes its request body and turns it into a response. Adding an API is
/// one new file with a type conforming to this, listed in `KafkaApis.handlers(for:)`.
///
/// Threads: `handle` is called on the connection's event loop and must not block it. Work that
/// waits on ZooKeeper runs in a Task (`context.async`); work that touches the disk runs on the
/// partition's log-dir I/O pool (`BrokerIO`). See ARCHITECTURE.md.
protocol RequestHandler: Sendable {
    associatedtype Request: KafkaRequest
    /// The versions served; any other closes the connection, as 0.8.2 does.
    static var versions: ClosedRange<Int16> { get }
    func decode(_ body: inout ByteBuffer, version: Int16) throws -> Request
    func handle(_ request: Request, _ context: RequestContext) -> EventLoopFuture<ResponseAction>
    /// The answer to a request version outside `versions`; nil (the default) closes the connection.
    func answerUnsupportedVersion(_ context: RequestContext) -> EventLoopFuture<ResponseAction>?
}

extension RequestHandler {
    func answerUnsupportedVersion(_ context: RequestContext) -> EventLoopFuture<ResponseAction>? { nil }
}

/// What a handler knows about the request it answers.
struct RequestContext: Sendable {
    let header: RequestHeader
    let connection: ConnectionInfo
    let eventLoop: EventLoop
    private let allocator: ByteBufferAllocator

    init(header: RequestHeader, connection: ConnectionInfo, eventLoop: EventLoop, allocator: ByteBufferAllocator) {
        self.header = header
        self.connection = connection
        self.eventLoop = eventLoop
        self.allocator = allocator
    }

    var apiVersion: Int16 { header.apiVersion }

    /// The framed response (size, correlation id, body): the one place responses are encoded.
    func respond(_ response: some KafkaResponse) -> ResponseAction {
        .send(ResponseFramer.frame(correlationId: header.correlationId, response: response, allocator: allocator))
    }

    /// `respond` as an already completed future.
    func answer(_ response: some KafkaResponse) -> EventLoopFuture<ResponseAction> {
        eventLoop.makeSucceededFuture(respond(response))
    }

    /// Runs `work` in a Task (for handlers that await ZooKeeper or the controller: they suspend,
    /// never block) and answers on this connection's loop.
    func async<R: KafkaResponse>(_ work: @escaping @Sendable () async -> R) -> EventLoopFuture<ResponseAction> {
        let ctx = self
        return eventLoop.makeFutureWithTask { ctx.respond(await work()) }
    }

    var buffers: ByteBufferAllocator { allocator }
}

/// The request router (Kafka 0.8.2's `KafkaApis`): header decode, version check, then the
/// handler registered for the api key.
public final class KafkaApis: RequestProcessor {
    private struct Route: Sendable {
        let versions: ClosedRange<Int16>
        let run: @Sendable (inout ByteBuffer, RequestContext) throws -> EventLoopFuture<ResponseAction>
        let unsupported: @Sendable (RequestContext) -> EventLoopFuture<ResponseAction>?
    }
    /// Indexed by api key.
    private let routes: [Route?]
    private let allocator = ByteBufferAllocator()

    init(_ handlers: [any RequestHandler]) {
        var routes: [Route?] = []
        func add<H: RequestHandler>(_ h: H) {
            let key = Int(H.Request.apiKey.rawValue)
            if routes.count <= key { routes += Array(repeating: nil, count: key + 1 - routes.count) }
            precondition(routes[key] == nil, "two handlers for \(H.Request.apiKey)")
            routes[key] = Route(versions: H.versions, run: { body, ctx in
                h.handle(try h.decode(&body, version: ctx.apiVersion), ctx)
            }, unsupported: { ctx in h.answerUnsupportedVersion(ctx) })
        }
        for h in handlers { add(h) }
        // ApiVersions advertises exactly the routes registered here, itself included.
        var advertised: [ApiVersionsResponse.ApiVersion] = []
        for (i, r) in routes.enumerated() {
            if let r { advertised.append(.init(apiKey: Int16(i), minVersion: r.versions.lowerBound, maxVersion: r.versions.upperBound)) }
        }
        let own = ApiVersionsHandler.versions
        advertised.append(.init(apiKey: ApiVersionsRequest.apiKey.rawValue, minVersion: own.lowerBound, maxVersion: own.upperBound))
        add(ApiVersionsHandler(advertised: advertised.sorted { $0.apiKey < $1.apiKey }))
        self.routes = routes
    }

    /// The versions served per api key (tests, documentation).
    var servedVersions: [APIKey: ClosedRange<Int16>] {
        var out: [APIKey: ClosedRange<Int16>] = [:]
        for (i, r) in routes.enumerated() { if let r, let k = APIKey(rawValue: Int16(i)) { out[k] = r.versions } }
        return out
    }

    public func process(frame: ByteBuffer, connection: ConnectionInfo, eventLoop: EventLoop) -> EventLoopFuture<ResponseAction> {
        var body = frame
        let header: RequestHeader
        do { header = try RequestHeader.decode(from: &body) } catch {
            return eventLoop.makeSucceededFuture(.close(reason: "malformed request header: \(error)"))
        }
        let key = Int(header.apiKey)
        guard key >= 0, key < routes.count, let route = routes[key] else {
            return eventLoop.makeSucceededFuture(.close(reason: "unknown api key \(header.apiKey) (version \(header.apiVersion), client \(header.clientId))"))
        }
        guard route.versions.contains(header.apiVersion) else {
            if let answer = route.unsupported(RequestContext(header: header, connection: connection, eventLoop: eventLoop, allocator: allocator)) {
                return answer
            }
            return eventLoop.makeSucceededFuture(.close(reason: "unsupported version \(header.apiVersion) of api key \(header.apiKey) (client \(header.clientId))"))
        }
        let ctx = RequestContext(header: header, connection: connection, eventLoop: eventLoop, allocator: allocator)
        do {
            return try route.run(&body, ctx)
        } catch {
            let name = APIKey(rawValue: header.apiKey).map { "\($0)" } ?? "\(header.apiKey)"
            return eventLoop.makeSucceededFuture(.close(reason: "malformed \(name) request: \(error)"))
        }
    }
}
