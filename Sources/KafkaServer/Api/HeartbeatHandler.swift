import KafkaCluster
import KafkaProtocol
import NIOCore

/// Heartbeat (key 12, v0; beyond 0.8.2): keeps a member's session alive; REBALANCE_IN_PROGRESS
/// tells it to join again (`GroupCoordinator`).
struct HeartbeatHandler: RequestHandler {
    static let versions: ClosedRange<Int16> = 0...0
    let groups: GroupCoordinator

    func decode(_ body: inout ByteBuffer, version: Int16) throws -> HeartbeatRequest {
        try HeartbeatRequest.decode(from: &body)
    }

    func handle(_ req: HeartbeatRequest, _ ctx: RequestContext) -> EventLoopFuture<ResponseAction> {
        if let code = groups.notServing { return ctx.answer(GroupErrorResponse(error: code)) }
        let groups = self.groups
        return ctx.async {
            let action = await groups.submit { token, now in
                .heartbeat(token, group: req.groupId, generation: req.generationId, memberId: req.memberId, nowMs: now)
            }
            guard case let .heartbeatAnswer(_, error) = action else { return GroupErrorResponse(error: GroupErrorCode.coordinatorNotAvailable) }
            return GroupErrorResponse(error: error)
        }
    }
}
