import KafkaProtocol
import NIOCore

/// Offsets (key 2, v0): offsets before a time, from the segments' base offsets and times
/// (in memory and fstat only), on the event loop. Consumers never see offsets above the HW.
struct OffsetsHandler: RequestHandler {
    static let versions: ClosedRange<Int16> = 0...0
    let replicaManager: ReplicaManager

    func decode(_ body: inout ByteBuffer, version: Int16) throws -> OffsetsRequest {
        try OffsetsRequest.decode(from: &body)
    }

    func handle(_ req: OffsetsRequest, _ ctx: RequestContext) -> EventLoopFuture<ResponseAction> {
        var topics: [(topic: String, partitions: [OffsetsResponse.PartitionOffsets])] = []
        for t in req.topics {
            var parts: [OffsetsResponse.PartitionOffsets] = []
            for p in t.partitions {
                let tp = TopicPartition(t.topic, p.partition)
                guard let part = replicaManager.partition(tp) else {
                    parts.append(.init(partition: p.partition, error: .unknownTopicOrPartition, offsets: []))
                    continue
                }
                if req.replicaId != -2 && !part.isLeader {
                    parts.append(.init(partition: p.partition, error: .notLeaderForPartition, offsets: []))
                    continue
                }
                var all = part.log.offsetsBefore(timestamp: p.time, maxNumOffsets: max(Int(p.maxNumOffsets), 0))
                if req.replicaId == -1 {
                    let hw = part.highWatermark
                    if all.contains(where: { $0 > hw }) { all = [hw] + all.drop(while: { $0 > hw }) }
                }
                parts.append(.init(partition: p.partition, error: .none, offsets: Array(all.prefix(max(Int(p.maxNumOffsets), 0)))))
            }
            topics.append((t.topic, parts))
        }
        return ctx.answer(OffsetsResponse(topics: topics))
    }
}
