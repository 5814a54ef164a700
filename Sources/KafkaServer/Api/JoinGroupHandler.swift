import KafkaCluster
import KafkaProtocol
import NIOCore

/// JoinGroup (key 11, v0; beyond 0.8.2): a member joins its group on the coordinator
/// (`GroupCoordinator`); the answer waits until the group's rebalance completes.
struct JoinGroupHandler: RequestHandler {
    static let versions: ClosedRange<Int16> = 0...0
    let groups: GroupCoordinator

    func decode(_ body: inout ByteBuffer, version: Int16) throws -> JoinGroupRequest {
        try JoinGroupRequest.decode(from: &body)
    }

    func handle(_ req: JoinGroupRequest, _ ctx: RequestContext) -> EventLoopFuture<ResponseAction> {
        if let code = groups.notServing { return ctx.answer(JoinGroupResponse(error: code, memberId: req.memberId)) }
        let groups = self.groups
        let clientId = ctx.header.clientId
        return ctx.async {
            let action = await groups.submit { token, now in
                .join(token, group: req.groupId, memberId: req.memberId, clientId: clientId, sessionTimeoutMs: req.sessionTimeoutMs,
                      protocolType: req.protocolType, protocols: req.protocols.map { .init($0.name, $0.metadata) }, nowMs: now)
            }
            guard case let .joinAnswer(_, a) = action else { return JoinGroupResponse(error: GroupErrorCode.coordinatorNotAvailable) }
            return JoinGroupResponse(error: a.error, generationId: a.generation, protocolName: a.protocolName, leaderId: a.leaderId,
                                     memberId: a.memberId, members: a.members.map { .init(memberId: $0.memberId, metadata: $0.metadata) })
        }
    }
}
