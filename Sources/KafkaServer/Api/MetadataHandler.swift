import KafkaProtocol
import NIOCore

/// Metadata (key 3, v0-v1; v1 adds the controller id, racks and `is_internal`): answered from the metadata cache on the event loop; topics the cache
/// does not know go through auto-creation (ZooKeeper) in a task.
struct MetadataHandler: RequestHandler {
    static let versions: ClosedRange<Int16> = 0...1
    let metadataCache: MetadataCache
    let autoCreator: TopicAutoCreator

    func decode(_ body: inout ByteBuffer, version: Int16) throws -> MetadataRequest {
        try MetadataRequest.decode(from: &body, version: version)
    }

    func handle(_ req: MetadataRequest, _ ctx: RequestContext) -> EventLoopFuture<ResponseAction> {
        let names = req.allTopics ? metadataCache.topics : req.topics
        let version = ctx.apiVersion
        var topics: [MetadataResponse.TopicMetadata] = []
        topics.reserveCapacity(names.count)
        var unknown: [Int] = []
        for name in names {
            if let meta = metadataCache.topicMetadata(name) {
                topics.append(meta)
            } else {
                unknown.append(topics.count)
                topics.append(.init(error: .unknownTopicOrPartition, topic: name, partitions: []))
            }
        }
        let cache = metadataCache
        if unknown.isEmpty { return ctx.answer(MetadataResponse(brokers: cache.liveBrokers, topics: topics, version: version, controllerId: cache.controllerId)) }
        let creator = autoCreator
        let known = topics
        let missing = unknown
        return ctx.async {
            var topics = known
            for i in missing { topics[i].error = await creator.autoCreate(topics[i].topic) }
            return MetadataResponse(brokers: cache.liveBrokers, topics: topics, version: version, controllerId: cache.controllerId)
        }
    }
}
