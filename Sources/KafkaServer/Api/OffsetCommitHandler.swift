import KafkaCluster
import KafkaProtocol
import NIOCore

/// OffsetCommit (key 8, v0-v2; v2's retention time is not used): offsets kept in ZooKeeper (`/consumers/<g>/offsets`), as
/// 0.8.2 keeps v0 commits; awaited in a task.
struct OffsetCommitHandler: RequestHandler {
    static let versions: ClosedRange<Int16> = 0...2
    let metadataCache: MetadataCache
    let zk: KafkaZooKeeper
    /// A v1/v2 commit naming a generation (from a member of a group it manages) is checked against
    /// it; commits outside group management (generation -1, as 0.8 clients send) are stored as before.
    let groups: GroupCoordinator

    func decode(_ body: inout ByteBuffer, version: Int16) throws -> OffsetCommitRequest {
        try OffsetCommitRequest.decode(from: &body, version: version)
    }

    func handle(_ req: OffsetCommitRequest, _ ctx: RequestContext) -> EventLoopFuture<ResponseAction> {
        let zk = self.zk
        let cache = metadataCache
        let groups = self.groups
        return ctx.async {
            var topics: [(topic: String, partitions: [(partition: Int32, error: ErrorCode)])] = []
            if req.apiVersion >= 1 && req.generationId >= 0 {
                var check = groups.notServing ?? 0
                if check == 0 { check = await groups.checkCommit(group: req.group, generation: req.generationId, memberId: req.consumerId) }
                if check != 0 {
                    let error = ErrorCode(code: check)
                    return OffsetCommitResponse(topics: req.topics.map { t in (t.topic, t.partitions.map { ($0.partition, error) }) })
                }
            }
            for t in req.topics {
                var parts: [(partition: Int32, error: ErrorCode)] = []
                for p in t.partitions {
                    let tp = TopicPartition(t.topic, p.partition)
                    // Group and topic become ZooKeeper path components: only Kafka's legal names.
                    if TopicNames.validationError(req.group) != nil { parts.append((p.partition, .unknown)); continue }
                    if p.metadata.utf8.count > 4096 { parts.append((p.partition, .offsetMetadataTooLarge)); continue }
                    guard cache.partitionState(tp) != nil else { parts.append((p.partition, .unknownTopicOrPartition)); continue }
                    do {
                        // v1 and v2 keep their metadata string (0.8.2 stores v1 commits with it); v0, stored in
                        // ZooKeeper by 0.8.2 as a bare offset, drops any earlier v1 metadata.
                        if req.apiVersion >= 1 {
                            try await zk.commitConsumerOffset(group: req.group, tp, offset: p.offset, metadata: p.metadata)
                        } else {
                            try await zk.commitConsumerOffset(group: req.group, tp, offset: p.offset)
                            try? await zk.clearConsumerOffsetMetadata(group: req.group, tp)
                        }
                        parts.append((p.partition, .none))
                    } catch {
                        parts.append((p.partition, .unknown))
                    }
                }
                topics.append((t.topic, parts))
            }
            return OffsetCommitResponse(topics: topics)
        }
    }
}
