import KafkaProtocol
import NIOCore

/// UpdateMetadata (key 6, v0), from the controller: the metadata cache, on the event loop.
struct UpdateMetadataHandler: RequestHandler {
    static let versions: ClosedRange<Int16> = 0...0
    let applier: ControllerRequestApplier

    func decode(_ body: inout ByteBuffer, version: Int16) throws -> UpdateMetadataRequest {
        try UpdateMetadataRequest.decode(from: &body)
    }

    func handle(_ req: UpdateMetadataRequest, _ ctx: RequestContext) -> EventLoopFuture<ResponseAction> {
        ctx.answer(applier.updateMetadata(req))
    }
}
