import KafkaCluster
import KafkaProtocol
import NIOCore

/// OffsetFetch (key 9, v0 and v1): committed offsets read from ZooKeeper in a task.
struct OffsetFetchHandler: RequestHandler {
    static let versions: ClosedRange<Int16> = 0...1
    let zk: KafkaZooKeeper

    func decode(_ body: inout ByteBuffer, version: Int16) throws -> OffsetFetchRequest {
        try OffsetFetchRequest.decode(from: &body, version: version)
    }

    func handle(_ req: OffsetFetchRequest, _ ctx: RequestContext) -> EventLoopFuture<ResponseAction> {
        let zk = self.zk
        return ctx.async {
            var topics: [(topic: String, partitions: [OffsetFetchResponse.PartitionOffset])] = []
            for t in req.topics {
                var parts: [OffsetFetchResponse.PartitionOffset] = []
                for p in t.partitions {
                    let tp = TopicPartition(t.topic, p)
                    guard TopicNames.validationError(req.group) == nil, TopicNames.validationError(t.topic) == nil, p >= 0 else {
                        parts.append(.init(partition: p, offset: -1, metadata: "", error: .unknown))
                        continue
                    }
                    // v0 reports a missing node (or a failed read) as UnknownTopicOrPartition; v1 as
                    // "no offset". A node that is not a decimal reads as "no offset".
                    let missing: ErrorCode = req.apiVersion == 0 ? .unknownTopicOrPartition : .none
                    do {
                        if let off = try await zk.consumerOffset(group: req.group, tp) {
                            let metadata = req.apiVersion >= 1 ? ((try? await zk.consumerOffsetMetadata(group: req.group, tp, offset: off)) ?? "") : ""
                            parts.append(.init(partition: p, offset: off, metadata: metadata, error: .none))
                        } else {
                            parts.append(.init(partition: p, offset: -1, metadata: "", error: missing))
                        }
                    } catch is ConsumerOffsetData.Malformed {
                        parts.append(.init(partition: p, offset: -1, metadata: "", error: .none))
                    } catch {
                        parts.append(.init(partition: p, offset: -1, metadata: "", error: missing))
                    }
                }
                topics.append((t.topic, parts))
            }
            return OffsetFetchResponse(topics: topics)
        }
    }
}
