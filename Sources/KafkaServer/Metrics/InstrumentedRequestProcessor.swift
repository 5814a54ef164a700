import NIOCore

/// Per-API request metrics around the broker's request processor (`KafkaApis`), at the one point
/// every request passes: the frame handed to `process` and the response action it yields. It
/// reads the api key from the frame's first two bytes (the header is decoded by the processor),
/// counts the request and records its total time when the response has been written (or
/// immediately for acks=0 produces, closes and failures). Installed only with `metrics.port`.
struct InstrumentedRequestProcessor: RequestProcessor {
    let inner: RequestProcessor
    let metrics: BrokerMetrics

    func process(frame: ByteBuffer, connection: ConnectionInfo, eventLoop: EventLoop) -> EventLoopFuture<ResponseAction> {
        let started = NIODeadline.now()
        let apiKey = frame.getInteger(at: frame.readerIndex, as: Int16.self) ?? -1
        let meters = metrics.request(apiKey)
        meters.requests.increment()
        return inner.process(frame: frame, connection: connection, eventLoop: eventLoop).always { result in
            if case .success(.send) = result { return }
            meters.totalTime.recordNanoseconds((NIODeadline.now() - started).nanoseconds)
        }.map { action in
            guard case .send(let parts, let written) = action else { return action }
            return .send(parts, written: {
                written()
                meters.totalTime.recordNanoseconds((NIODeadline.now() - started).nanoseconds)
            })
        }
    }
}
