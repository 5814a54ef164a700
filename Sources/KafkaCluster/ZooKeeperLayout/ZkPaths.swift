import KafkaProtocol

/// Kafka 0.8.2's ZooKeeper layout (reference: kafka-0.8-cluster.md §1).
public enum ZkPaths {
    public static let consumers = "/consumers"
    public static let brokerIds = "/brokers/ids"
    public static let brokerTopics = "/brokers/topics"
    public static let controller = "/controller"
    public static let controllerEpoch = "/controller_epoch"
    public static let configChanges = "/config/changes"
    public static let topicConfigs = "/config/topics"
    public static let deleteTopics = "/admin/delete_topics"
    public static let reassignPartitions = "/admin/reassign_partitions"
    public static let preferredReplicaElection = "/admin/preferred_replica_election"

    /// Persistent paths every broker makes sure exist at startup.
    public static let persistentPaths = [consumers, brokerIds, brokerTopics, configChanges, topicConfigs, deleteTopics]

    public static func broker(_ id: Int32) -> String { "\(brokerIds)/\(id)" }
    public static func topic(_ topic: String) -> String { "\(brokerTopics)/\(topic)" }
    public static func topicPartitions(_ topic: String) -> String { "\(brokerTopics)/\(topic)/partitions" }
    public static func partitionState(_ tp: TopicPartition) -> String { "\(brokerTopics)/\(tp.topic)/partitions/\(tp.partition)/state" }
    public static func topicConfig(_ topic: String) -> String { "\(topicConfigs)/\(topic)" }
    public static func deleteTopic(_ topic: String) -> String { "\(deleteTopics)/\(topic)" }
    public static let configChangePrefix = "config_change_"

    public static func consumerGroup(_ group: String) -> String { "\(consumers)/\(group)" }
    public static func consumerIds(_ group: String) -> String { "\(consumers)/\(group)/ids" }
    public static func consumerOffsets(_ group: String) -> String { "\(consumers)/\(group)/offsets" }
    public static func consumerOffset(_ group: String, _ tp: TopicPartition) -> String { "\(consumers)/\(group)/offsets/\(tp.topic)/\(tp.partition)" }
    /// OffsetCommit v1's metadata string for `consumerOffset(group, tp)` (not in 0.8.2's layout; see
    /// `KafkaZooKeeper.commitConsumerOffsetMetadata`). A separate tree, so `/offsets/<t>` keeps only partitions.
    public static func consumerOffsetMetadata(_ group: String, _ tp: TopicPartition) -> String { "\(consumers)/\(group)/offsets-metadata/\(tp.topic)/\(tp.partition)" }
    public static func consumerOwners(_ group: String) -> String { "\(consumers)/\(group)/owners" }
    public static func consumerOwner(_ group: String, _ tp: TopicPartition) -> String { "\(consumers)/\(group)/owners/\(tp.topic)/\(tp.partition)" }
}
