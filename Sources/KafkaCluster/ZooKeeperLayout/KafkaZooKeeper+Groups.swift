import Foundation
import Logging
import KafkaProtocol
import ZooKeeper

/// A consumer id already registered by another live session (0.8.2's consumer gives up after
/// waiting out what could be its own node from an earlier session).
public struct ConsumerAlreadyRegistered: Error, CustomStringConvertible, Sendable {
    public var consumerId: String
    public var path: String
    public var description: String { "consumer \(consumerId) is already registered at \(path)" }
}

/// The outcome of claiming a partition under `/consumers/<g>/owners`.
public enum PartitionClaim: Sendable, Equatable {
    /// The node is ours (created now, or it already held our thread id).
    case claimed
    /// Another thread still holds it (its id, nil when it could not be read).
    case heldBy(String?)
}

/// Consumer groups: `/consumers/<g>/ids`, `/owners`, `/offsets` (0.8.2 `ZkUtils` and
/// `ZookeeperConsumerConnector`'s ZooKeeper side).
extension KafkaZooKeeper {
    // MARK: Members

    /// Writes the ephemeral `/consumers/<g>/ids/<consumerId>`. A node with our data or of our
    /// session is ours; another one is waited out for up to three session timeouts (an
    /// earlier session of ours, ZOOKEEPER-1740), then `ConsumerAlreadyRegistered`.
    public func registerConsumer(group: String, consumerId: String, registrationJSON: String,
                                 sessionTimeoutMs: Int, logger: Logger) async throws {
        let ids = ZkPaths.consumerIds(group)
        let path = ids + "/" + consumerId
        let data = Self.bytes(registrationJSON)
        try await zk.ensurePath(ids)
        let deadline = Date().addingTimeInterval(Double(max(sessionTimeoutMs, 1000)) * 3 / 1000)
        while true {
            do {
                try await zk.create(path, data: data, mode: .ephemeral)
                return
            } catch ZooKeeperError.nodeExists {
                let existing = try? await zk.get(path)
                if existing?.data == data || existing?.stat.ephemeralOwner == zk.sessionId { return }
                if existing == nil { continue }
                guard Date() < deadline else { throw ConsumerAlreadyRegistered(consumerId: consumerId, path: path) }
                logger.info("I wrote this conflicted ephemeral node [\(path)] a while back in a different session, hence I will backoff for this node to be deleted by Zookeeper and retry")
                try await Task.sleep(nanoseconds: UInt64(max(sessionTimeoutMs, 200)) * 1_000_000 / 2)
            }
        }
    }

    /// The registered consumer ids of a group, sorted; `watch` sets the children watch.
    public func consumerIds(group: String, watch: Bool = false) async throws -> [String] {
        try await zk.children(ZkPaths.consumerIds(group), watch: watch).sorted()
    }

    /// A member's registration JSON, nil when it has left.
    public func consumerRegistrationData(group: String, consumerId: String) async throws -> [UInt8]? {
        do { return try await zk.get(ZkPaths.consumerIds(group) + "/" + consumerId).data ?? [] } catch ZooKeeperError.noNode { return nil }
    }

    /// Deletes the whole `/consumers/<g>` tree (the console consumer's --delete-consumer-offsets,
    /// and its clean-up of a generated group).
    public func deleteConsumerGroup(_ group: String) async throws {
        try await zk.deleteRecursive(ZkPaths.consumerGroup(group))
    }

    // MARK: Owners

    /// Creates the ephemeral owner node of `tp` holding `threadId`.
    public func claimPartition(group: String, _ tp: TopicPartition, threadId: String) async throws -> PartitionClaim {
        let path = ZkPaths.consumerOwner(group, tp)
        do {
            try await zk.createRecursive(path, data: PartitionOwnerData.encode(threadId), mode: .ephemeral)
            return .claimed
        } catch ZooKeeperError.nodeExists {
            let holder = PartitionOwnerData.decode((try? await zk.get(path))?.data)
            return holder == threadId ? .claimed : .heldBy(holder)
        }
    }

    /// Deletes the owner node of `tp` (a missing node is fine).
    public func releasePartition(group: String, _ tp: TopicPartition) async throws {
        do { try await zk.delete(ZkPaths.consumerOwner(group, tp)) } catch ZooKeeperError.noNode {}
    }

    /// The thread id owning `tp`, nil when unowned.
    public func partitionOwner(group: String, _ tp: TopicPartition) async throws -> String? {
        do { return PartitionOwnerData.decode(try await zk.get(ZkPaths.consumerOwner(group, tp)).data) } catch ZooKeeperError.noNode { return nil }
    }

    /// Topics with owner nodes in the group; nil when the group has no owners dir.
    public func ownedTopics(group: String) async throws -> [String]? {
        do { return try await zk.children(ZkPaths.consumerOwners(group)) } catch ZooKeeperError.noNode { return nil }
    }

    // MARK: Offsets

    /// The committed offset of `tp` (next offset to consume); nil when no node exists;
    /// `ConsumerOffsetData.Malformed` when the node is not a decimal.
    public func consumerOffset(group: String, _ tp: TopicPartition) async throws -> Int64? {
        let path = ZkPaths.consumerOffset(group, tp)
        let data: [UInt8]?
        do { data = try await zk.get(path).data } catch ZooKeeperError.noNode { return nil }
        return try ConsumerOffsetData.decode(data, path: path)
    }

    /// Writes the offset node, creating it and its parents when missing (OffsetCommit v0 on the
    /// broker, and the group consumer's commits).
    public func commitConsumerOffset(group: String, _ tp: TopicPartition, offset: Int64) async throws {
        let path = ZkPaths.consumerOffset(group, tp)
        let data = ConsumerOffsetData.encode(offset)
        do { try await zk.set(path, data: data) } catch ZooKeeperError.noNode {
            try await zk.createRecursive(path, data: data, mode: .persistent)
        }
    }

    // MARK: Offset metadata (OffsetCommit v1)
    //
    // 0.8.2 keeps v1 commits (with their metadata string) in its offsets topic; this broker keeps
    // offsets in ZooKeeper, whose `/consumers/<g>/offsets/<t>/<p>` node must stay a plain decimal
    // (Burrow, the offset checker and 0.8 group consumers read it). The metadata therefore lives in
    // a sibling tree, `/consumers/<g>/offsets-metadata/<t>/<p>`, as JSON
    // `{"version":1,"offset":N,"metadata":"..."}`. It is returned only while the offset node still
    // holds the same N, so a later commit by anything that writes only the decimal node (a v0
    // commit, a 0.8 group consumer) makes the metadata read as "" instead of a stale string.
    // Deleting the group (`/consumers/<g>`) removes it with everything else.

    struct OffsetMetadataNode: Codable { var version: Int; var offset: Int64; var metadata: String }

    /// Writes the offset node (as `commitConsumerOffset`) and then the metadata node for it.
    public func commitConsumerOffset(group: String, _ tp: TopicPartition, offset: Int64, metadata: String) async throws {
        try await commitConsumerOffset(group: group, tp, offset: offset)
        let path = ZkPaths.consumerOffsetMetadata(group, tp)
        let data = Array(try JSONEncoder().encode(OffsetMetadataNode(version: 1, offset: offset, metadata: metadata)))
        do { try await zk.set(path, data: data) } catch ZooKeeperError.noNode {
            try await zk.createRecursive(path, data: data, mode: .persistent)
        }
    }

    /// Removes `tp`'s metadata node, if any (a commit that carries no metadata).
    public func clearConsumerOffsetMetadata(group: String, _ tp: TopicPartition) async throws {
        do { try await zk.delete(ZkPaths.consumerOffsetMetadata(group, tp)) } catch ZooKeeperError.noNode {}
    }

    /// The metadata string committed with `offset`; "" when none is stored, it is unreadable, or it
    /// was committed with a different offset.
    public func consumerOffsetMetadata(group: String, _ tp: TopicPartition, offset: Int64) async throws -> String {
        let data: [UInt8]?
        do { data = try await zk.get(ZkPaths.consumerOffsetMetadata(group, tp)).data } catch ZooKeeperError.noNode { return "" }
        guard let data, let node = try? JSONDecoder().decode(OffsetMetadataNode.self, from: Data(data)),
              node.offset == offset else { return "" }
        return node.metadata
    }

    /// Every group under `/consumers` (empty when the node does not exist yet).
    public func consumerGroups() async throws -> [String] {
        do { return try await zk.children(ZkPaths.consumers).sorted() } catch ZooKeeperError.noNode { return [] }
    }

    /// The topics the group has committed offsets for (`/consumers/<g>/offsets/<t>`); empty when none.
    public func consumerOffsetTopics(group: String) async throws -> [String] {
        do { return try await zk.children(ZkPaths.consumerOffsets(group)).sorted() } catch ZooKeeperError.noNode { return [] }
    }

    /// Whether `/consumers/<g>/offsets` (or `/consumers/<g>/offsets/<topic>`) exists.
    public func hasConsumerOffsets(group: String, topic: String? = nil) async throws -> Bool {
        let dir = ZkPaths.consumerOffsets(group) + (topic.map { "/" + $0 } ?? "")
        return try await zk.exists(dir) != nil
    }
}
