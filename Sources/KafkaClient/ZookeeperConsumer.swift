import Foundation
import KafkaCluster
import KafkaProtocol
import Logging
import ZooKeeper

public struct ZookeeperConsumerConfig: Sendable {
    public var zookeeperConnect: String
    public var groupId: String
    public var consumerId: String? = nil
    /// `smallest` or `largest` (Kafka's auto.offset.reset).
    public var autoOffsetReset = "largest"
    public var autoCommitEnable = true
    public var autoCommitIntervalMs = 60000
    public var fetchMessageMaxBytes: Int32 = 1 << 20
    public var fetchWaitMaxMs: Int32 = 100
    public var sessionTimeoutMs = 6000
    public var rebalanceMaxRetries = 4
    public var rebalanceBackoffMs = 2000
    public var clientId: String { groupId }
    public init(zookeeperConnect: String, groupId: String) {
        self.zookeeperConnect = zookeeperConnect
        self.groupId = groupId
    }
}

/// Range assignment of Kafka 0.8.2's high-level consumer, as a pure function.
public enum RangeAssignor {
    /// `threads` are all thread ids subscribed to the topic; returns partition → thread id.
    public static func assign(partitions: [Int32], threads: [String]) -> [Int32: String] {
        let ps = partitions.sorted()
        let ts = threads.sorted()
        guard !ts.isEmpty else { return [:] }
        let per = ps.count / ts.count
        let extra = ps.count % ts.count
        var out: [Int32: String] = [:]
        for (i, t) in ts.enumerated() {
            let start = per * i + min(i, extra)
            let n = per + (i < extra ? 1 : 0)
            for j in 0..<n { out[ps[start + j]] = t }
        }
        return out
    }
}

/// The ZooKeeper-coordinated group consumer of Kafka 0.8 (one stream): registers under
/// `/consumers/<g>/ids`, splits partitions with the range strategy, owns them under
/// `/consumers/<g>/owners`, and commits the next offset to `/consumers/<g>/offsets`.
public final class ZookeeperConsumer: @unchecked Sendable {
    public let config: ZookeeperConsumerConfig
    let logger: Logger
    let zk: ZooKeeperClient
    public var zkClient: ZooKeeperClient { zk }
    let kzk: KafkaZooKeeper
    public let consumerId: String
    private var threadId: String { consumerId + "-0" }
    private var topicFilter: NSRegularExpression?
    private var staticTopics: [String] = []
    private var owned: [TopicPartition: Int64] = [:]      // next offset to consume
    private var committed: [TopicPartition: Int64] = [:]
    private var buffer: [ConsumedMessage] = []
    private var bufferIndex = 0
    private var consumers: [String: SimpleConsumer] = [:]   // "host:port" → connection
    private var needsRebalance = true
    private var lastCommit = Date()
    private var eventsTask: Task<Void, Never>?
    private var partitionCursor = 0
    private let lock = NSLock()

    public static func connect(_ config: ZookeeperConsumerConfig, logger: Logger = Logger(label: "kafka.consumer.ZookeeperConsumerConnector")) async throws -> ZookeeperConsumer {
        let zk = try await ZooKeeperClient.connect(config.zookeeperConnect, sessionTimeoutMs: config.sessionTimeoutMs, connectionTimeoutMs: config.sessionTimeoutMs, logger: logger)
        return ZookeeperConsumer(config: config, zk: zk, logger: logger)
    }

    init(config: ZookeeperConsumerConfig, zk: ZooKeeperClient, logger: Logger) {
        self.config = config
        self.zk = zk
        self.kzk = KafkaZooKeeper(zk)
        self.logger = logger
        let host = ProcessInfo.processInfo.hostName
        let uuid = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(8)
        self.consumerId = config.consumerId.map { "\(config.groupId)_\($0)" } ?? "\(config.groupId)_\(host)-\(Int64(Date().timeIntervalSince1970 * 1000))-\(uuid)"
    }

    /// Subscribes to topics matching a whitelist regex (the console consumer's `--topic`,
    /// `--whitelist`), registers this consumer and starts the first rebalance.
    public func subscribe(whitelist: String) async throws {
        let cleaned = whitelist.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: ",", with: "|").replacingOccurrences(of: " ", with: "")
        topicFilter = try NSRegularExpression(pattern: "^(?:\(cleaned))$")
        let json = "{\"version\":1,\"subscription\":{\(ZkData.quote(cleaned)):1},\"pattern\":\"white_list\",\"timestamp\":\"\(ZkData.nowMillis())\"}"
        try await register(json)
        try await rebalanceWithRetries()
    }

    private func register(_ json: String) async throws {
        try await zk.ensurePath(ZkPaths.consumerIds(config.groupId))
        do {
            try await zk.create(ZkPaths.consumerIds(config.groupId) + "/" + consumerId, data: Array(json.utf8), mode: .ephemeral)
        } catch ZooKeeperError.nodeExists {}
        let events = zk.events()
        let idsPath = ZkPaths.consumerIds(config.groupId)
        _ = try await zk.children(idsPath, watch: true)
        _ = try await zk.children(ZkPaths.brokerTopics, watch: true)
        eventsTask = Task { [weak self] in
            for await e in events {
                guard let self else { return }
                switch e {
                case .nodeChildrenChanged(idsPath), .nodeChildrenChanged(ZkPaths.brokerTopics):
                    self.lock.withLock { self.needsRebalance = true }
                case .nodeDataChanged(let p) where p.hasPrefix(ZkPaths.brokerTopics + "/"):
                    self.lock.withLock { self.needsRebalance = true }
                default: break
                }
            }
        }
    }

    private func matches(_ topic: String) -> Bool {
        guard let f = topicFilter, topic != TopicNames.offsetsTopic else { return false }
        return f.firstMatch(in: topic, range: NSRange(topic.startIndex..., in: topic)) != nil
    }

    private func rebalanceWithRetries() async throws {
        var lastError: Error?
        for attempt in 0..<config.rebalanceMaxRetries {
            do {
                try await rebalance()
                return
            } catch {
                lastError = error
                logger.info("[\(consumerId)], rebalancing attempt \(attempt) failed: \(error); retrying")
                try await Task.sleep(nanoseconds: UInt64(config.rebalanceBackoffMs) * 1_000_000)
            }
        }
        throw KafkaClientError("\(consumerId) can't rebalance after \(config.rebalanceMaxRetries) retries: \(lastError.map { "\($0)" } ?? "")")
    }

    private func rebalance() async throws {
        lock.withLock { needsRebalance = false }
        if config.autoCommitEnable { await commitOffsets() }
        // Release what we own.
        for tp in owned.keys { try? await zk.delete(ZkPaths.consumerOwner(config.groupId, tp)) }
        owned.removeAll()
        buffer.removeAll()
        bufferIndex = 0
        // Everyone's subscription (this simple consumer: each member has one thread per topic).
        _ = try await zk.children(ZkPaths.consumerIds(config.groupId), watch: true)
        let members = try await zk.children(ZkPaths.consumerIds(config.groupId)).sorted()
        let topics = try await kzk.topics(watch: true).filter(matches)
        var mine: [TopicPartition] = []
        for t in topics {
            guard let assignment = try await kzk.assignment(t, watch: true) else { continue }
            let threads = members.map { "\($0)-0" }
            for (p, thread) in RangeAssignor.assign(partitions: Array(assignment.keys), threads: threads) where thread == threadId {
                mine.append(TopicPartition(t, p))
            }
        }
        // Claim ownership; a node still held by the previous owner fails this attempt (and
        // releases what this attempt claimed). A node holding our own thread id is ours.
        var claimed: [TopicPartition] = []
        do {
            for tp in mine.sorted() {
                let path = ZkPaths.consumerOwner(config.groupId, tp)
                do {
                    try await zk.createRecursive(path, data: Array(threadId.utf8), mode: .ephemeral)
                } catch ZooKeeperError.nodeExists {
                    let holder = (try? await zk.get(path)).flatMap { $0.data }.map { String(decoding: $0, as: UTF8.self) }
                    guard holder == threadId else { throw KafkaClientError("partition \(tp) is still owned by \(holder ?? "another consumer")") }
                }
                claimed.append(tp)
            }
        } catch {
            for c in claimed { try? await zk.delete(ZkPaths.consumerOwner(config.groupId, c)) }
            throw error
        }
        // Start positions: the committed offset, or -1 meaning "reset by auto.offset.reset when
        // the leader is reachable" (resolved by the fetch loop, so a missing leader does not
        // fail the rebalance).
        for tp in claimed {
            var off: Int64 = -1
            if let (data, _) = try? await zk.get(ZkPaths.consumerOffset(config.groupId, tp)),
               let v = Int64(String(decoding: data ?? [], as: UTF8.self).trimmingCharacters(in: .whitespaces)) { off = v }
            owned[tp] = off
            committed[tp] = off
        }
        logger.info("[\(consumerId)], owns \(claimed.map(\.description).joined(separator: ", "))")
    }

    private func resetOffset(_ tp: TopicPartition) async throws -> Int64 {
        let c = try await leader(tp)
        return try await c.offsetBefore(tp, time: config.autoOffsetReset == "smallest" ? OffsetsRequest.earliestTime : OffsetsRequest.latestTime)
    }

    private func leader(_ tp: TopicPartition) async throws -> SimpleConsumer {
        guard let state = try await kzk.partitionState(tp), state.state.leader >= 0 else { throw KafkaClientError("no leader for \(tp)") }
        let (data, _) = try await zk.get(ZkPaths.broker(state.state.leader))
        let reg = try BrokerRegistration.parse(id: state.state.leader, data, path: ZkPaths.broker(state.state.leader))
        let key = "\(reg.host):\(reg.port)"
        if let c = consumers[key] { return c }
        let c = try await SimpleConsumer.connect(host: reg.host, port: Int(reg.port), clientId: config.clientId)
        consumers[key] = c
        return c
    }

    /// The next message, waiting for one up to `timeoutMs` (nil when none arrived).
    public func next(timeoutMs: Int = Int.max) async throws -> ConsumedMessage? {
        let deadline = Date().addingTimeInterval(Double(min(timeoutMs, 1_000_000_000)) / 1000)
        while true {
            if bufferIndex < buffer.count {
                let m = buffer[bufferIndex]
                bufferIndex += 1
                owned[TopicPartition(m.topic, m.partition)] = m.offset + 1
                return m
            }
            if config.autoCommitEnable && Date().timeIntervalSince(lastCommit) * 1000 >= Double(config.autoCommitIntervalMs) {
                await commitOffsets()
            }
            if lock.withLock({ needsRebalance }) { try await rebalanceWithRetries() }
            if Date() >= deadline { return nil }
            try await fetchSome()
            if Task.isCancelled { return nil }
        }
    }

    private func fetchSome() async throws {
        buffer.removeAll(keepingCapacity: true)
        bufferIndex = 0
        let parts = owned.keys.sorted()
        guard !parts.isEmpty else {
            try await Task.sleep(nanoseconds: 200_000_000)
            return
        }
        partitionCursor = (partitionCursor + 1) % parts.count
        let tp = parts[partitionCursor]
        do {
            if owned[tp]! < 0 {
                owned[tp] = try await resetOffset(tp)
                logger.info("[\(consumerId)], \(tp) starts at offset \(owned[tp]!) (auto.offset.reset=\(config.autoOffsetReset))")
            }
            let c = try await leader(tp)
            let r = try await c.fetch(tp, offset: owned[tp]!, maxBytes: config.fetchMessageMaxBytes,
                                      maxWaitMs: parts.count == 1 ? max(config.fetchWaitMaxMs, 500) : config.fetchWaitMaxMs)
            switch r.error {
            case .none:
                if r.messageTooLarge {
                    throw KafkaClientError("Found a message larger than the maximum fetch size of this consumer on topic \(tp.topic) partition \(tp.partition) at fetch offset \(owned[tp]!). Increase the fetch size, or decrease the maximum message size the broker will allow.")
                }
                buffer = r.messages
            case .offsetOutOfRange:
                let reset = try await resetOffset(tp)
                logger.warning("Offset \(owned[tp]!) of \(tp) is out of range; resetting to \(reset)")
                owned[tp] = reset
            default:
                logger.warning("Fetch of \(tp) failed with \(r.error); retrying")
                consumers.removeAll()
                try await Task.sleep(nanoseconds: 200_000_000)
            }
        } catch let e as KafkaClientError where e.description.hasPrefix("Found a message larger") {
            throw e
        } catch let e as CorruptMessageError {
            // Retrying cannot help: stop, as 0.8.2's ConsumerIterator does (InvalidMessageException).
            throw e
        } catch {
            logger.warning("Fetch of \(tp) failed: \(error); retrying")
            for c in consumers.values { await c.close() }
            consumers.removeAll()
            try await Task.sleep(nanoseconds: 200_000_000)
        }
    }

    /// Writes the next offset to consume of every owned partition that changed.
    public func commitOffsets() async {
        lastCommit = Date()
        for (tp, off) in owned where off >= 0 && committed[tp] != off {
            let path = ZkPaths.consumerOffset(config.groupId, tp)
            let data = Array(String(off).utf8)
            do {
                do { try await zk.set(path, data: data) } catch ZooKeeperError.noNode { try await zk.createRecursive(path, data: data) }
                committed[tp] = off
            } catch {
                logger.warning("Cannot commit offset \(off) of \(tp): \(error)")
            }
        }
    }

    /// Commits (when auto-commit is on), releases ownership, optionally deletes the group.
    public func shutdown(deleteGroup: Bool = false) async {
        eventsTask?.cancel()
        if config.autoCommitEnable { await commitOffsets() }
        for tp in owned.keys { try? await zk.delete(ZkPaths.consumerOwner(config.groupId, tp)) }
        for c in consumers.values { await c.close() }
        consumers.removeAll()
        if deleteGroup { try? await zk.deleteRecursive(ZkPaths.consumerGroup(config.groupId)) }
        await zk.close()
    }

    /// True when the group already has committed offsets (the console consumer refuses
    /// `--from-beginning` then, unless told to delete them).
    public static func groupHasOffsets(zk: ZooKeeperClient, group: String) async -> Bool {
        ((try? await zk.exists(ZkPaths.consumerOffsets(group))) ?? nil) != nil
    }
}
