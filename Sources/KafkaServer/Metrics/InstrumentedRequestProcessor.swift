import NIOCore
import KafkaProtocol

/// Per-API request metrics around the broker's request processor (`KafkaApis`), at the one point
/// every request passes: the frame handed to `process` and the response action it yields. It
/// reads the api key from the frame's first two bytes (the header is decoded by the processor),
/// counts the request and records its total time when the response has been written (or
/// immediately for acks=0 produces, closes and failures). A Fetch is also metered as
/// `FetchConsumer` or `FetchFollower` by its replica id, as 0.8.2 does. Installed only with
/// `metrics.port`.
struct InstrumentedRequestProcessor: RequestProcessor {
    let inner: RequestProcessor
    let metrics: BrokerMetrics

    func process(frame: ByteBuffer, connection: ConnectionInfo, eventLoop: EventLoop) -> EventLoopFuture<ResponseAction> {
        let started = NIODeadline.now()
        let apiKey = frame.getInteger(at: frame.readerIndex, as: Int16.self) ?? -1
        let meters = metrics.request(apiKey)
        var byFetcher: RequestMeters?
        if apiKey == APIKey.fetch.rawValue, let replicaId = Self.fetchReplicaId(frame) {
            byFetcher = replicaId >= 0 ? metrics.fetchFollower : metrics.fetchConsumer
        }
        meters.requests.increment()
        byFetcher?.requests.increment()
        let kind = byFetcher
        @Sendable func record() {
            let ns = (NIODeadline.now() - started).nanoseconds
            meters.totalTime.recordNanoseconds(ns)
            kind?.totalTime.recordNanoseconds(ns)
        }
        return inner.process(frame: frame, connection: connection, eventLoop: eventLoop).always { result in
            if case .success(.send) = result { return }
            record()
        }.map { action in
            guard case .send(let parts, let written) = action else { return action }
            return .send(parts, written: {
                written()
                record()
            })
        }
    }

    /// A Fetch request's replica id, read in place: header (api key, version, correlation id,
    /// client id) then the int32 replica id. Nil for a frame too short to hold it.
    static func fetchReplicaId(_ frame: ByteBuffer) -> Int32? {
        let start = frame.readerIndex
        guard let clientIdLength = frame.getInteger(at: start + 8, as: Int16.self) else { return nil }
        return frame.getInteger(at: start + 10 + max(Int(clientIdLength), 0), as: Int32.self)
    }
}
