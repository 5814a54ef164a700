import KafkaCluster
import KafkaProtocol
import NIOCore

/// LeaveGroup (key 13, v0; beyond 0.8.2): a member leaves; the others rebalance
/// (`GroupCoordinator`).
struct LeaveGroupHandler: RequestHandler {
    static let versions: ClosedRange<Int16> = 0...0
    let groups: GroupCoordinator

    func decode(_ body: inout ByteBuffer, version: Int16) throws -> LeaveGroupRequest {
        try LeaveGroupRequest.decode(from: &body)
    }

    func handle(_ req: LeaveGroupRequest, _ ctx: RequestContext) -> EventLoopFuture<ResponseAction> {
        if let code = groups.notServing { return ctx.answer(GroupErrorResponse(error: code)) }
        let groups = self.groups
        return ctx.async {
            let action = await groups.submit { token, now in
                .leave(token, group: req.groupId, memberId: req.memberId, nowMs: now)
            }
            guard case let .leaveAnswer(_, error) = action else { return GroupErrorResponse(error: GroupErrorCode.coordinatorNotAvailable) }
            return GroupErrorResponse(error: error)
        }
    }
}
