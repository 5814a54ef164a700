import KafkaCluster
import KafkaProtocol
import NIOCore

/// SyncGroup (key 14, v0; beyond 0.8.2): the leader hands in the assignments, every member gets
/// its own (`GroupCoordinator`); a follower's answer waits for the leader's request.
struct SyncGroupHandler: RequestHandler {
    static let versions: ClosedRange<Int16> = 0...0
    let groups: GroupCoordinator

    func decode(_ body: inout ByteBuffer, version: Int16) throws -> SyncGroupRequest {
        try SyncGroupRequest.decode(from: &body)
    }

    func handle(_ req: SyncGroupRequest, _ ctx: RequestContext) -> EventLoopFuture<ResponseAction> {
        if let code = groups.notServing { return ctx.answer(SyncGroupResponse(error: code)) }
        let groups = self.groups
        // A member named twice: the last assignment counts.
        let assignments = Dictionary(req.assignments.map { ($0.memberId, $0.assignment) }, uniquingKeysWith: { _, last in last })
        return ctx.async {
            let action = await groups.submit { token, now in
                .sync(token, group: req.groupId, generation: req.generationId, memberId: req.memberId, assignments: assignments, nowMs: now)
            }
            guard case let .syncAnswer(_, error, assignment) = action else { return SyncGroupResponse(error: GroupErrorCode.coordinatorNotAvailable) }
            return SyncGroupResponse(error: error, assignment: assignment)
        }
    }
}
