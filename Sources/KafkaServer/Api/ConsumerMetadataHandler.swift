import KafkaProtocol
import NIOCore

/// ConsumerMetadata (key 10, v0): offsets are kept in ZooKeeper by every broker, so any live
/// broker coordinates; this one names itself.
struct ConsumerMetadataHandler: RequestHandler {
    static let versions: ClosedRange<Int16> = 0...0
    let coordinator: BrokerEndpoint

    func decode(_ body: inout ByteBuffer, version: Int16) throws -> ConsumerMetadataRequest {
        try ConsumerMetadataRequest.decode(from: &body)
    }

    func handle(_ req: ConsumerMetadataRequest, _ ctx: RequestContext) -> EventLoopFuture<ResponseAction> {
        ctx.answer(ConsumerMetadataResponse(error: .none, coordinator: coordinator))
    }
}
