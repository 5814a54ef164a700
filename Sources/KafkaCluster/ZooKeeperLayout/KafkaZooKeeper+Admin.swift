import Foundation
import Logging
import KafkaProtocol
import ZooKeeper

/// Session and client lifecycle, and the admin paths: `/config/changes`,
/// `/admin/delete_topics`, `/admin/preferred_replica_election`, `/admin/reassign_partitions`
/// (0.8.2 `AdminUtils`, `TopicConfigManager`, the admin commands and the controller's listeners).
extension KafkaZooKeeper {
    // MARK: Client

    /// Connects to `connectString` (with an optional chroot). `createChroot` creates the chroot
    /// first through a connection without it, as a broker does at startup; consumers and tools
    /// never create it.
    public static func connect(_ connectString: String, sessionTimeoutMs: Int, connectionTimeoutMs: Int,
                               createChroot: Bool = false, logger: Logger = Logger(label: "zookeeper")) async throws -> KafkaZooKeeper {
        if createChroot {
            try await ZooKeeperClient.ensureChroot(connectString, sessionTimeoutMs: sessionTimeoutMs,
                                                   connectionTimeoutMs: connectionTimeoutMs, logger: logger)
        }
        return KafkaZooKeeper(try await ZooKeeperClient.connect(connectString, sessionTimeoutMs: sessionTimeoutMs,
                                                                connectionTimeoutMs: connectionTimeoutMs, logger: logger))
    }

    /// Session changes and watch notifications (paths as in `ZkPaths`).
    public func events() -> AsyncStream<ZooKeeperEvent> { zk.events() }

    /// The current session id (0 while none is established).
    public var sessionId: Int64 { zk.sessionId }

    /// Whether the client is connected to a ZooKeeper server right now.
    public var isConnected: Bool { zk.isConnected }

    public func close() async { await zk.close() }

    // MARK: Brokers and topics

    /// One broker's registration, nil when it is not registered.
    public func broker(_ id: Int32) async throws -> BrokerRegistration? {
        let path = ZkPaths.broker(id)
        let data: [UInt8]?
        do { data = try await zk.get(path).data } catch ZooKeeperError.noNode { return nil }
        return try BrokerRegistration.parse(id: id, data, path: path)
    }

    /// Deletes `/brokers/ids/<id>` only when it belongs to the current session (a broker that
    /// failed to start never removes the live broker's registration). Returns whether it did.
    @discardableResult
    public func deregisterBroker(_ id: Int32) async throws -> Bool {
        let path = ZkPaths.broker(id)
        guard let stat = try await zk.exists(path), stat.ephemeralOwner == zk.sessionId else { return false }
        do { try await zk.delete(path, version: stat.version) } catch ZooKeeperError.noNode { return false } catch ZooKeeperError.badVersion { return false }
        return true
    }

    /// Whether `/brokers/topics/<t>` exists; `watch` sets an exists watch (fires on creation).
    public func topicExists(_ topic: String, watch: Bool = false) async throws -> Bool {
        try await zk.exists(ZkPaths.topic(topic), watch: watch) != nil
    }

    /// Overwrites a topic's assignment (add-partitions; the controller notices the change).
    public func writeAssignment(_ topic: String, _ assignment: [Int32: [Int32]]) async throws {
        try await zk.set(ZkPaths.topic(topic), data: Self.bytes(TopicAssignment.json(assignment)))
    }

    /// Topics with a `/config/topics/<t>` node.
    public func topicsWithConfig() async throws -> [String] {
        do { return try await zk.children(ZkPaths.topicConfigs) } catch ZooKeeperError.noNode { return [] }
    }

    // MARK: Config changes

    /// Tells every broker that `topic`'s config changed: a persistent-sequential
    /// `/config/changes/config_change_<seq>` holding the topic as a JSON string.
    public func notifyTopicConfigChange(_ topic: String) async throws {
        try await zk.ensurePath(ZkPaths.configChanges)
        try await zk.create(ZkPaths.configChanges + "/" + ConfigChangeNotification.prefix,
                            data: ConfigChangeNotification.encode(topic: topic), mode: .persistentSequential)
    }

    /// The notification children (names), optionally setting the children watch.
    public func configChanges(watch: Bool = false) async throws -> [String] {
        try await zk.children(ZkPaths.configChanges, watch: watch)
    }

    /// The topic named by notification `child`; nil when it is gone (purged meanwhile).
    public func configChangeTopic(_ child: String) async throws -> String? {
        do { return ConfigChangeNotification.decode(try await zk.get(ZkPaths.configChanges + "/" + child).data) } catch ZooKeeperError.noNode { return nil }
    }

    // MARK: Topic deletion

    /// Marks a topic for deletion (`kafka-topics --delete`); false when it already was.
    public func markTopicForDeletion(_ topic: String) async throws -> Bool {
        do {
            try await zk.createRecursive(ZkPaths.deleteTopic(topic), data: [], mode: .persistent)
            return true
        } catch ZooKeeperError.nodeExists { return false }
    }

    /// Topics under `/admin/delete_topics` (none when the path is missing).
    public func topicsMarkedForDeletion(watch: Bool = false) async throws -> [String] {
        do { return try await zk.children(ZkPaths.deleteTopics, watch: watch) } catch ZooKeeperError.noNode where !watch { return [] }
    }

    /// Removes a deleted topic's znodes: assignment (with partition states), config, mark.
    public func deleteTopicNodes(_ topic: String) async throws {
        try await zk.deleteRecursive(ZkPaths.topic(topic))
        try await zk.deleteRecursive(ZkPaths.topicConfig(topic))
        try await zk.deleteRecursive(ZkPaths.deleteTopic(topic))
    }

    // MARK: Preferred replica election

    /// Starts an election of the listed partitions' preferred replicas; when one is already in
    /// progress returns its partitions (nil when they cannot be read) and writes nothing.
    public func startPreferredReplicaElection(_ partitions: [TopicPartition]) async throws -> [TopicPartition]?? {
        let path = ZkPaths.preferredReplicaElection
        do {
            try await zk.createRecursive(path, data: Self.bytes(PreferredReplicaElectionData.json(partitions)), mode: .persistent)
            return .none
        } catch ZooKeeperError.nodeExists {
            let current = try await zk.get(path).data
            return .some(try? PreferredReplicaElectionData.parse(current, path: path))
        }
    }

    /// The pending election's data, nil when there is none; `watch` sets the watch either way
    /// (an exists watch when the node is missing, so its creation is seen).
    public func preferredReplicaElectionData(watch: Bool = false) async throws -> [UInt8]?? {
        let path = ZkPaths.preferredReplicaElection
        guard try await zk.exists(path, watch: watch) != nil else { return nil }
        do { return .some(try await zk.get(path, watch: watch).data) } catch ZooKeeperError.noNode {
            _ = try await zk.exists(path, watch: watch)
            return nil
        }
    }

    /// Deletes the finished election's node and watches for the next one.
    public func completePreferredReplicaElection() async throws {
        let path = ZkPaths.preferredReplicaElection
        do { try await zk.delete(path) } catch ZooKeeperError.noNode {}
        _ = try await zk.exists(path, watch: true)
    }

    // MARK: Partition reassignment

    /// Writes `/admin/reassign_partitions` (the reassignment tool); false when one is already
    /// in progress.
    public func startReassignment(_ reassignment: [TopicPartition: [Int32]]) async throws -> Bool {
        do {
            try await zk.createRecursive(ZkPaths.reassignPartitions, data: Self.bytes(ReassignmentData.json(reassignment)), mode: .persistent)
            return true
        } catch ZooKeeperError.nodeExists { return false }
    }

    /// Removes finished (or refused) partitions from `/admin/reassign_partitions`, deleting the
    /// node when none is left (0.8.2 `removePartitionFromReassignedPartitions` /
    /// `updatePartitionReassignmentData`). Conditional on the version read, retried on a race
    /// with the tool. Returns what is still listed.
    @discardableResult
    public func removeFromReassignment(_ partitions: Set<TopicPartition>) async throws -> [TopicPartition: [Int32]] {
        let path = ZkPaths.reassignPartitions
        while true {
            let got: (data: [UInt8]?, stat: ZNodeStat)
            do { got = try await zk.get(path) } catch ZooKeeperError.noNode { return [:] }
            let version = got.stat.version
            var current = (try? ReassignmentData.parse(got.data, path: path)) ?? [:]
            for tp in partitions { current[tp] = nil }
            do {
                if current.isEmpty {
                    try await zk.delete(path, version: version)
                } else {
                    _ = try await zk.set(path, data: Self.bytes(ReassignmentData.json(current)), version: version)
                }
                return current
            } catch ZooKeeperError.badVersion {
                continue
            } catch ZooKeeperError.noNode {
                return [:]
            }
        }
    }

    /// A reassigned partition's state node, read with a data watch set (the controller follows
    /// its ISR until the new replicas have caught up); nil when there is none (an exists watch
    /// is set then).
    public func watchPartitionState(_ tp: TopicPartition) async throws -> VersionedLeaderIsr? {
        let path = ZkPaths.partitionState(tp)
        do {
            let (data, stat) = try await zk.get(path, watch: true)
            return VersionedLeaderIsr(state: try LeaderIsrState.parse(data, path: path), zkVersion: stat.version)
        } catch ZooKeeperError.noNode {
            _ = try await zk.exists(path, watch: true)
            return nil
        }
    }

    /// The reassignment in progress, nil when none.
    public func reassignment(watch: Bool = false) async throws -> [TopicPartition: [Int32]]? {
        let path = ZkPaths.reassignPartitions
        do { return try ReassignmentData.parse(try await zk.get(path, watch: watch).data, path: path) } catch ZooKeeperError.noNode {
            _ = try await zk.exists(path, watch: watch)
            return nil
        }
    }
}
