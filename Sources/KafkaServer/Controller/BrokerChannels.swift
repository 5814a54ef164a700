import Foundation
import KafkaClient
import KafkaProtocol
import Logging
import NIOCore
import Synchronization

/// The controller's channels to brokers (Kafka's `ControllerChannelManager`): requests for
/// this broker are applied in-process; each other broker gets its own ordered queue, drained
/// by one task that (re)connects and retries every 300 ms until delivered or the broker is
/// removed. Sending only enqueues, so a dead broker never stalls the controller.
final class BrokerChannels: ControllerChannel, @unchecked Sendable {
    enum Request: Sendable {
        case leaderAndIsr(LeaderAndIsrRequest)
        case updateMetadata(UpdateMetadataRequest)
        case stopReplica(StopReplicaRequest)
    }

    private final class Queue: @unchecked Sendable {
        let endpoint: BrokerEndpoint
        let stream: AsyncStream<Request>
        let continuation: AsyncStream<Request>.Continuation
        var task: Task<Void, Never>?
        init(endpoint: BrokerEndpoint) {
            self.endpoint = endpoint
            (stream, continuation) = AsyncStream<Request>.makeStream()
        }
    }

    let localId: Int32
    let controllerDescription: String
    let local: @Sendable (Request) async -> Void
    let logger: Logger
    private struct State {
        var queues: [Int32: Queue] = [:]
    }
    private let state = Mutex(State())
    /// `controller.socket.timeout.ms`: a request with no answer in this time closes the
    /// connection; it is retried on a new one.
    var socketTimeoutMs = 30000

    init(localId: Int32, controllerDescription: String, logger: Logger, local: @escaping @Sendable (Request) async -> Void) {
        self.localId = localId
        self.controllerDescription = controllerDescription
        self.logger = logger
        self.local = local
    }

    /// Opens queues to new brokers and closes those of brokers that left.
    func setBrokers(_ brokers: [BrokerEndpoint]) {
        let remote = brokers.filter { $0.id != localId }
        state.withLock { st in
            let wanted = Dictionary(remote.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            for (id, q) in st.queues where wanted[id] == nil || wanted[id] != q.endpoint {
                q.continuation.finish()
                q.task?.cancel()
                st.queues[id] = nil
            }
            for (id, ep) in wanted where st.queues[id] == nil {
                let q = Queue(endpoint: ep)
                q.task = Task { [logger, controllerDescription, socketTimeoutMs] in
                    await Self.drain(q, clientId: controllerDescription, logger: logger, socketTimeoutMs: socketTimeoutMs)
                }
                st.queues[id] = q
            }
        }
    }

    func closeAll() { setBrokers([]) }

    private static func drain(_ q: Queue, clientId: String, logger: Logger, socketTimeoutMs: Int) async {
        var conn: BrokerConnection?
        for await request in q.stream {
            while !Task.isCancelled {
                do {
                    if conn == nil || conn?.isActive == false {
                        await conn?.close()
                        let timeout = TimeAmount.milliseconds(Int64(max(socketTimeoutMs, 1)))
                        conn = try await BrokerConnection.connect(host: q.endpoint.host, port: Int(q.endpoint.port), clientId: clientId,
                                                                  connectTimeout: timeout, requestTimeout: timeout)
                    }
                    switch request {
                    case .leaderAndIsr(let r): _ = try await conn!.send(r)
                    case .updateMetadata(let r): _ = try await conn!.send(r)
                    case .stopReplica(let r): _ = try await conn!.send(r)
                    }
                    break
                } catch {
                    logger.warning("Controller request to broker \(q.endpoint.id) at \(q.endpoint.host):\(q.endpoint.port) failed: \(error); retrying")
                    await conn?.close()
                    conn = nil
                    try? await Task.sleep(nanoseconds: 300_000_000)
                }
            }
            if Task.isCancelled { break }
        }
        await conn?.close()
    }

    private func enqueue(_ broker: Int32, _ r: Request) async {
        if broker == localId {
            await local(r)
            return
        }
        let q = state.withLock { st in st.queues[broker] }
        guard let q else {
            logger.warning("No channel to broker \(broker); request dropped")
            return
        }
        q.continuation.yield(r)
    }

    func sendLeaderAndIsr(to broker: Int32, _ req: LeaderAndIsrRequest) async { await enqueue(broker, .leaderAndIsr(req)) }
    func sendUpdateMetadata(to broker: Int32, _ req: UpdateMetadataRequest) async { await enqueue(broker, .updateMetadata(req)) }
    func sendStopReplica(to broker: Int32, _ req: StopReplicaRequest) async { await enqueue(broker, .stopReplica(req)) }
}
