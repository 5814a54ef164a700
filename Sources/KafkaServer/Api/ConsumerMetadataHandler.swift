import KafkaProtocol
import NIOCore

/// ConsumerMetadata (key 10, v0; FindCoordinator v0 for newer clients): offsets are kept in
/// ZooKeeper by every broker, but group membership (JoinGroup...) lives on one broker, the live
/// broker with the lowest id (`GroupCoordinator`), so every broker names that one; itself until
/// it has metadata.
struct ConsumerMetadataHandler: RequestHandler {
    static let versions: ClosedRange<Int16> = 0...0
    let coordinator: BrokerEndpoint
    let groups: GroupCoordinator

    func decode(_ body: inout ByteBuffer, version: Int16) throws -> ConsumerMetadataRequest {
        try ConsumerMetadataRequest.decode(from: &body)
    }

    func handle(_ req: ConsumerMetadataRequest, _ ctx: RequestContext) -> EventLoopFuture<ResponseAction> {
        ctx.answer(ConsumerMetadataResponse(error: .none, coordinator: groups.coordinator ?? coordinator))
    }
}
