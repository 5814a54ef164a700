import KafkaProtocol
import NIOCore

/// LeaderAndIsr (key 4, v0), from the controller.
struct LeaderAndIsrHandler: RequestHandler {
    static let versions: ClosedRange<Int16> = 0...0
    let applier: ControllerRequestApplier

    func decode(_ body: inout ByteBuffer, version: Int16) throws -> LeaderAndIsrRequest {
        try LeaderAndIsrRequest.decode(from: &body)
    }

    func handle(_ req: LeaderAndIsrRequest, _ ctx: RequestContext) -> EventLoopFuture<ResponseAction> {
        let applier = self.applier
        return ctx.async { await applier.leaderAndIsr(req) }
    }
}
