import Foundation
import KafkaProtocol
import Logging
import ZooKeeper

/// Reads and writes the Kafka layout in ZooKeeper (Kafka 0.8.2 `ZkUtils` + `AdminUtils`).
/// The only place that knows Kafka's paths and znode formats: the raw client is internal, every
/// other module calls these typed operations (codecs in `ZkData.swift`).
public struct KafkaZooKeeper: Sendable {
    let zk: ZooKeeperClient

    init(_ zk: ZooKeeperClient) { self.zk = zk }

    static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    public func ensurePersistentPaths() async throws {
        for p in ZkPaths.persistentPaths { try await zk.ensurePath(p) }
    }

    // MARK: Brokers

    /// Registers `/brokers/ids/<id>` as Kafka does: an existing node with our own data is ours;
    /// one with the same id, host and port left by our previous session is waited out (it
    /// vanishes when that session expires); anything else is a fatal conflict.
    /// Registers `/brokers/ids/<id>`. A node left by an earlier session of this broker (same
    /// host and port) is waited out, or, with `replaceStaleOwnNode` (the caller holds the log dirs'
    /// locks, so that process is gone), deleted at once: its partitions fail over now instead of
    /// after the old session's timeout. The controller tells the restart apart by the new
    /// registration timestamp.
    public func registerBroker(_ reg: BrokerRegistration, sessionTimeoutMs: Int, logger: Logger,
                               replaceStaleOwnNode: Bool = false) async throws {
        let path = ZkPaths.broker(reg.id)
        let data = Self.bytes(reg.json())
        while true {
            do {
                try await zk.createRecursive(path, data: data, mode: .ephemeral)
                logger.info("Registered broker \(reg.id) at path \(path) with address \(reg.host):\(reg.port).")
                return
            } catch ZooKeeperError.nodeExists {
                let existing: (data: [UInt8]?, stat: ZNodeStat)
                do { existing = try await zk.get(path) } catch ZooKeeperError.noNode { continue }
                if existing.stat.ephemeralOwner == zk.sessionId { return }
                let other = try? BrokerRegistration.parse(id: reg.id, existing.data, path: path)
                if let other, other.host == reg.host, other.port == reg.port, replaceStaleOwnNode {
                    logger.info("Broker node \(path) is left from a previous process of this broker (session 0x\(String(existing.stat.ephemeralOwner, radix: 16))); replacing it")
                    do { try await zk.delete(path, version: existing.stat.version) } catch ZooKeeperError.noNode {} catch ZooKeeperError.badVersion {}
                    continue
                }
                if let other, other.host == reg.host, other.port == reg.port {
                    logger.info("Broker node \(path) is left from a previous session of this broker (session 0x\(String(existing.stat.ephemeralOwner, radix: 16))); waiting for it to expire")
                    try await Task.sleep(nanoseconds: UInt64(max(sessionTimeoutMs, 500)) * 1_000_000 / 2)
                    continue
                }
                let desc = existing.data.map { String(decoding: $0, as: UTF8.self) } ?? "null"
                throw BrokerIdInUse(id: reg.id, path: path, other: other.map { "\($0.host):\($0.port)" }, data: desc)
            }
        }
    }

    /// Another live broker holds `/brokers/ids/<id>` (0.8.2: "A broker is already registered on
    /// the path ...").
    public struct BrokerIdInUse: Error, CustomStringConvertible, Sendable {
        public var id: Int32
        public var path: String
        /// `host:port` of the registered broker (nil when its node is not a broker registration).
        public var other: String?
        public var data: String
        public var description: String {
            let at = other.map { "a running broker at \($0)" } ?? "another broker (\(path): \(data))"
            return "broker.id \(id) is already registered by \(at) (\(path)). Give every broker its own broker.id in its server.properties, or stop that broker first."
        }
    }

    /// The registered broker ids; none while no broker has ever started (no `/brokers/ids` yet),
    /// unless a watch is asked for (ZooKeeper sets none on a missing node: the caller must know).
    public func brokerIds(watch: Bool = false) async throws -> [Int32] {
        do {
            return (try await zk.children(ZkPaths.brokerIds, watch: watch)).compactMap { Int32($0) }.sorted()
        } catch ZooKeeperError.noNode where !watch {
            return []
        }
    }

    public func liveBrokers(watch: Bool = false) async throws -> [BrokerRegistration] {
        var out: [BrokerRegistration] = []
        for id in try await brokerIds(watch: watch) {
            let path = ZkPaths.broker(id)
            // Only a node that is gone means the broker is gone: a failed read is an error, never
            // "broker dead" (the caller retries it).
            let data: [UInt8]?
            do { data = try await zk.get(path).data } catch ZooKeeperError.noNode { continue }
            if let reg = try? BrokerRegistration.parse(id: id, data, path: path) { out.append(reg) }
        }
        return out
    }

    // MARK: Topics

    public func topics(watch: Bool = false) async throws -> [String] {
        do { return try await zk.children(ZkPaths.brokerTopics, watch: watch).sorted() } catch ZooKeeperError.noNode { return [] }
    }

    public func assignment(_ topic: String, watch: Bool = false) async throws -> [Int32: [Int32]]? {
        do {
            let (data, _) = try await zk.get(ZkPaths.topic(topic), watch: watch)
            return try TopicAssignment.parse(data, path: ZkPaths.topic(topic))
        } catch ZooKeeperError.noNode { return nil }
    }

    public func allAssignments() async throws -> [String: [Int32: [Int32]]] {
        var out: [String: [Int32: [Int32]]] = [:]
        for t in try await topics() { if let a = try await assignment(t) { out[t] = a } }
        return out
    }

    public func topicConfig(_ topic: String) async throws -> [String: String] {
        do {
            let (data, _) = try await zk.get(ZkPaths.topicConfig(topic))
            return try TopicConfigData.parse(data, path: ZkPaths.topicConfig(topic))
        } catch ZooKeeperError.noNode { return [:] }
    }

    public struct TopicExists: Error, CustomStringConvertible {
        public var topic: String
        public var description: String { "Topic \"\(topic)\" already exists." }
    }

    /// `AdminUtils.createTopic`: validate, write the config node, then create the assignment
    /// node (the controller takes it from there).
    public func createTopic(_ topic: String, assignment: [Int32: [Int32]], config: [String: String] = [:]) async throws {
        if let err = TopicNames.validationError(topic) { throw ZkDataError(path: ZkPaths.topic(topic), reason: err) }
        if try await zk.exists(ZkPaths.topic(topic)) != nil { throw TopicExists(topic: topic) }
        try await writeTopicConfig(topic, config)
        do {
            try await zk.createRecursive(ZkPaths.topic(topic), data: Self.bytes(TopicAssignment.json(assignment)), mode: .persistent)
        } catch ZooKeeperError.nodeExists {
            throw TopicExists(topic: topic)
        }
    }

    public func writeTopicConfig(_ topic: String, _ config: [String: String]) async throws {
        let path = ZkPaths.topicConfig(topic)
        let data = Self.bytes(TopicConfigData.json(config))
        do { try await zk.set(path, data: data) } catch ZooKeeperError.noNode {
            try await zk.createRecursive(path, data: data, mode: .persistent)
        }
    }

    // MARK: Partition state

    public func partitionState(_ tp: TopicPartition) async throws -> VersionedLeaderIsr? {
        let path = ZkPaths.partitionState(tp)
        do {
            let (data, stat) = try await zk.get(path)
            return VersionedLeaderIsr(state: try LeaderIsrState.parse(data, path: path), zkVersion: stat.version)
        } catch ZooKeeperError.noNode { return nil }
    }

    /// Every partition's state node, read with up to `concurrency` requests in flight (the
    /// client pipelines them on its one connection): a controller failover over thousands of
    /// partitions is not thousands of sequential round trips.
    public func allPartitionStates(_ assignments: [String: [Int32: [Int32]]], concurrency: Int = 64) async throws -> [TopicPartition: VersionedLeaderIsr] {
        let all = assignments.flatMap { t, parts in parts.keys.map { TopicPartition(t, $0) } }
        var out: [TopicPartition: VersionedLeaderIsr] = [:]
        try await withThrowingTaskGroup(of: (TopicPartition, VersionedLeaderIsr?).self) { group in
            var next = all.startIndex
            func addOne() {
                guard next < all.endIndex else { return }
                let tp = all[next]
                next += 1
                group.addTask { (tp, try await partitionState(tp)) }
            }
            for _ in 0..<max(1, concurrency) { addOne() }
            while let (tp, state) = try await group.next() {
                if let state { out[tp] = state }
                addOne()
            }
        }
        return out
    }

    public func createPartitionState(_ tp: TopicPartition, _ state: LeaderIsrState) async throws {
        try await zk.createRecursive(ZkPaths.partitionState(tp), data: Self.bytes(state.json()), mode: .persistent)
    }

    /// Conditional update; returns the new version, or nil on a lost race (BadVersion).
    public func updatePartitionState(_ tp: TopicPartition, _ state: LeaderIsrState, expectedVersion: Int32) async throws -> Int32? {
        do {
            let stat = try await zk.set(ZkPaths.partitionState(tp), data: Self.bytes(state.json()), version: expectedVersion)
            return stat.version
        } catch ZooKeeperError.badVersion {
            // Equal content written by an earlier attempt of ours counts as success.
            if let cur = try await partitionState(tp), cur.state == state { return cur.zkVersion }
            return nil
        }
    }

    // MARK: Controller

    /// Tries to become controller; returns the id of whoever is controller afterwards, or -1 when
    /// `/controller` names this broker but belongs to an earlier ZooKeeper session (the caller waits
    /// for it to expire and tries again). With `replaceStaleOwnNode` (the caller holds the log dirs'
    /// locks, so the process of that session is gone, e.g. killed and restarted) that node is
    /// deleted at once instead, as `registerBroker` does with `/brokers/ids/<id>`: a restarted
    /// sole broker then leads its partitions as soon as its logs are loaded, not a session
    /// timeout later.
    public func electController(brokerId: Int32, replaceStaleOwnNode: Bool = false, logger: Logger? = nil) async throws -> Int32 {
        while true {
            do {
                try await zk.create(ZkPaths.controller, data: Self.bytes(ControllerRegistration.json(brokerId: brokerId)), mode: .ephemeral)
                return brokerId
            } catch ZooKeeperError.nodeExists {
                let existing: (data: [UInt8]?, stat: ZNodeStat)
                do { existing = try await zk.get(ZkPaths.controller) } catch ZooKeeperError.noNode { continue }
                let (data, stat) = existing
                let id = try ControllerRegistration.parseBrokerId(data)
                guard id == brokerId && stat.ephemeralOwner != zk.sessionId else { return id }
                guard replaceStaleOwnNode else { return -1 }
                logger?.info("\(ZkPaths.controller) is left from a previous process of this broker (session 0x\(String(stat.ephemeralOwner, radix: 16))); replacing it")
                do { try await zk.delete(ZkPaths.controller, version: stat.version) } catch ZooKeeperError.noNode {} catch ZooKeeperError.badVersion {}
            }
        }
    }

    public func controllerId(watch: Bool = false) async throws -> Int32? {
        do {
            let (data, _) = try await zk.get(ZkPaths.controller, watch: watch)
            return try ControllerRegistration.parseBrokerId(data)
        } catch ZooKeeperError.noNode {
            _ = try await zk.exists(ZkPaths.controller, watch: watch)
            return nil
        }
    }

    /// Bumps `/controller_epoch` conditionally (created as 1 when missing). A lost race (bad
    /// version, or the node created meanwhile) means another broker became controller:
    /// `ControllerMovedError`, as 0.8.2's `ControllerMovedException`.
    public func incrementControllerEpoch() async throws -> Int32 {
        do {
            let (data, stat) = try await zk.get(ZkPaths.controllerEpoch)
            let cur = Int32(String(decoding: data ?? [], as: UTF8.self).trimmingCharacters(in: .whitespaces)) ?? 0
            do {
                try await zk.set(ZkPaths.controllerEpoch, data: Self.bytes(String(cur + 1)), version: stat.version)
            } catch ZooKeeperError.badVersion {
                throw ControllerMovedError(reason: "\(ZkPaths.controllerEpoch) changed from version \(stat.version) while this broker incremented it")
            }
            return cur + 1
        } catch ZooKeeperError.noNode {
            do {
                try await zk.create(ZkPaths.controllerEpoch, data: Self.bytes("1"), mode: .persistent)
            } catch ZooKeeperError.nodeExists {
                throw ControllerMovedError(reason: "\(ZkPaths.controllerEpoch) was created by another broker")
            }
            return 1
        }
    }

    /// True when `/controller` names `brokerId` and belongs to the current session.
    public func holdsController(brokerId: Int32) async throws -> Bool {
        do {
            let (data, stat) = try await zk.get(ZkPaths.controller)
            return stat.ephemeralOwner == zk.sessionId && (try? ControllerRegistration.parseBrokerId(data)) == brokerId
        } catch ZooKeeperError.noNode { return false }
    }

    /// Deletes `/controller` if this session owns it (a controller that resigns lets the
    /// brokers elect again); returns whether it did.
    @discardableResult
    public func releaseController(brokerId: Int32) async throws -> Bool {
        do {
            let (data, stat) = try await zk.get(ZkPaths.controller)
            guard stat.ephemeralOwner == zk.sessionId, (try? ControllerRegistration.parseBrokerId(data)) == brokerId else { return false }
            try await zk.delete(ZkPaths.controller, version: stat.version)
            return true
        } catch ZooKeeperError.noNode {
            return false
        } catch ZooKeeperError.badVersion {
            return false
        }
    }
}

/// Another broker became controller while this one was taking over (0.8.2 `ControllerMovedException`).
public struct ControllerMovedError: Error, CustomStringConvertible, Equatable {
    public var reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { "Controller moved to another broker: \(reason)" }
}
