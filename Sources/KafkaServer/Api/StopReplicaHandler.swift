import KafkaProtocol
import NIOCore

/// StopReplica (key 5, v0), from the controller.
struct StopReplicaHandler: RequestHandler {
    static let versions: ClosedRange<Int16> = 0...0
    let applier: ControllerRequestApplier

    func decode(_ body: inout ByteBuffer, version: Int16) throws -> StopReplicaRequest {
        try StopReplicaRequest.decode(from: &body)
    }

    func handle(_ req: StopReplicaRequest, _ ctx: RequestContext) -> EventLoopFuture<ResponseAction> {
        let applier = self.applier
        return ctx.async { await applier.stopReplica(req) }
    }
}
