import KafkaCluster
import KafkaProtocol
import Logging

/// `auto.create.topics.enable`: a topic a client names that ZooKeeper does not know is created
/// with the broker's defaults. Its answer is LeaderNotAvailable until the controller elected
/// leaders; with auto-creation off, UnknownTopicOrPartition.
struct TopicAutoCreator: Sendable {
    let config: BrokerConfig
    let metadataCache: MetadataCache
    let zk: KafkaZooKeeper
    let logger: Logger

    func autoCreate(_ topic: String) async -> ErrorCode {
        if TopicNames.validationError(topic) != nil { return .invalidTopic }
        if (try? await zk.topicExists(topic)) == true { return .leaderNotAvailable }
        guard config.autoCreateTopics else { return .unknownTopicOrPartition }
        do {
            let brokers = metadataCache.liveBrokers.map(\.id)
            let assignment = try ReplicaAssignment.assign(brokers: brokers.isEmpty ? [config.brokerId] : brokers,
                                                          partitions: config.numPartitions,
                                                          replicationFactor: config.defaultReplicationFactor)
            try await zk.createTopic(topic, assignment: assignment)
            logger.info("Auto creation of topic \(topic) with \(config.numPartitions) partitions and replication factor \(config.defaultReplicationFactor) is successful!")
            return .leaderNotAvailable
        } catch is KafkaZooKeeper.TopicExists {
            return .leaderNotAvailable
        } catch {
            logger.warning("Auto creation of topic \(topic) failed: \(error)")
            return .leaderNotAvailable
        }
    }
}
