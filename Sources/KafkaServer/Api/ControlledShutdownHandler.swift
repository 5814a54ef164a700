import KafkaProtocol
import NIOCore

/// ControlledShutdown (key 7, v0): a broker asks this one, as controller, to move its
/// leaderships away before it stops.
struct ControlledShutdownHandler: RequestHandler {
    static let versions: ClosedRange<Int16> = 0...0
    let controller: KafkaController

    func decode(_ body: inout ByteBuffer, version: Int16) throws -> ControlledShutdownRequest {
        try ControlledShutdownRequest.decode(from: &body)
    }

    func handle(_ req: ControlledShutdownRequest, _ ctx: RequestContext) -> EventLoopFuture<ResponseAction> {
        let controller = self.controller
        return ctx.async { await controller.controlledShutdown(brokerId: req.brokerId) }
    }
}
