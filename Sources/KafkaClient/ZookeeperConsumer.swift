import Foundation
import KafkaCluster
import KafkaProtocol
import Logging
import Synchronization

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
    /// `range` (default) or `roundrobin`.
    public var partitionAssignmentStrategy = PartitionAssignmentStrategy.range
    public var excludeInternalTopics = true
    public var clientId: String { clientIdOverride ?? groupId }
    public var clientIdOverride: String? = nil
    public init(zookeeperConnect: String, groupId: String) {
        self.zookeeperConnect = zookeeperConnect
        self.groupId = groupId
    }

    /// A config from Kafka's consumer properties (ConsumerConfig's names and defaults);
    /// `group.id` and `zookeeper.connect` are required. Unknown keys are ignored.
    public init(properties p: [String: String]) throws {
        guard let zk = p["zookeeper.connect"] else { throw ConsumerGroupError("Missing required configuration \"zookeeper.connect\"") }
        guard let g = p["group.id"] else { throw ConsumerGroupError("Missing required configuration \"group.id\"") }
        guard !g.isEmpty, g.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") }) else {
            throw ConsumerGroupError("group.id \(g) is illegal, contains a character other than ASCII alphanumerics, '.', '_' and '-'")
        }
        self.init(zookeeperConnect: zk, groupId: g)
        func int(_ k: String) throws -> Int? {
            guard let v = p[k] else { return nil }
            guard let n = Int(v.trimmingCharacters(in: .whitespaces)) else { throw ConsumerGroupError("Invalid value \(v) for configuration \(k)") }
            return n
        }
        func bool(_ k: String) -> Bool? { p[k].map { $0.trimmingCharacters(in: .whitespaces).lowercased() == "true" } }
        consumerId = p["consumer.id"]
        clientIdOverride = p["client.id"]
        if let v = p["auto.offset.reset"] {
            guard v == "smallest" || v == "largest" else { throw ConsumerGroupError("Wrong value \(v) of auto.offset.reset in ConsumerConfig; Valid values are smallest and largest") }
            autoOffsetReset = v
        }
        if let v = bool("auto.commit.enable") { autoCommitEnable = v }
        if let v = try int("auto.commit.interval.ms") { autoCommitIntervalMs = v }
        if let v = try int("fetch.message.max.bytes") { fetchMessageMaxBytes = Int32(clamping: v) }
        if let v = try int("fetch.wait.max.ms") { fetchWaitMaxMs = Int32(clamping: v) }
        if let v = try int("zookeeper.session.timeout.ms") { sessionTimeoutMs = v }
        if let v = try int("rebalance.max.retries") { rebalanceMaxRetries = max(v, 1) }
        // rebalance.backoff.ms defaults to zookeeper.sync.time.ms (2000).
        if let v = try int("zookeeper.sync.time.ms") { rebalanceBackoffMs = v }
        if let v = try int("rebalance.backoff.ms") { rebalanceBackoffMs = v }
        if let v = p["partition.assignment.strategy"] { partitionAssignmentStrategy = PartitionAssignmentStrategy(config: v) }
        if let v = bool("exclude.internal.topics") { excludeInternalTopics = v }
    }
}

/// The ZooKeeper-coordinated group consumer of Kafka 0.8 (the high-level consumer, with all of
/// its streams merged into one iterator): registers under `/consumers/<g>/ids`, decides its
/// partitions with `RebalanceDecision` (range or roundrobin), owns them under
/// `/consumers/<g>/owners`, and commits the next offset to consume to `/consumers/<g>/offsets`.
public final class ZookeeperConsumer: @unchecked Sendable {
    public let config: ZookeeperConsumerConfig
    let logger: Logger
    let kzk: KafkaZooKeeper
    /// The group's ZooKeeper side (the console consumer's offset checks and clean-up).
    public var zooKeeper: KafkaZooKeeper { kzk }
    public let consumerId: String
    private var registration: ConsumerRegistration?
    private var owned: [TopicPartition: Int64] = [:]      // next offset to consume (-1: not yet known)
    private var ownerThread: [TopicPartition: ConsumerThreadId] = [:]
    private var committed: [TopicPartition: Int64] = [:]
    private var buffer: [ConsumedMessage] = []
    private var bufferIndex = 0
    private var consumers: [String: SimpleConsumer] = [:]   // "host:port" → connection
    private var lastCommit = Date()
    private var eventsTask: Task<Void, Never>?
    private var partitionCursor = 0
    private struct State {
        var needsRebalance = true
        var sessionRenewed = false
    }
    private let state = Mutex(State())
    /// The last successful decision (nil before the first one or after a failed rebalance).
    public private(set) var lastDecision: RebalanceDecision?

    public static func connect(_ config: ZookeeperConsumerConfig, logger: Logger = Logger(label: "kafka.consumer.ZookeeperConsumerConnector")) async throws -> ZookeeperConsumer {
        let zk = try await KafkaZooKeeper.connect(config.zookeeperConnect, sessionTimeoutMs: config.sessionTimeoutMs, connectionTimeoutMs: config.sessionTimeoutMs, logger: logger)
        return ZookeeperConsumer(config: config, zk: zk, logger: logger)
    }

    init(config: ZookeeperConsumerConfig, zk: KafkaZooKeeper, logger: Logger) {
        self.config = config
        self.kzk = zk
        self.logger = logger
        let host = ProcessInfo.processInfo.hostName
        let uuid = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(8)
        self.consumerId = config.consumerId.map { "\(config.groupId)_\($0)" } ?? "\(config.groupId)_\(host)-\(Int64(Date().timeIntervalSince1970 * 1000))-\(uuid)"
    }

    /// The partitions this consumer owns now, with the owning thread.
    public var ownedPartitions: [TopicPartition: ConsumerThreadId] { ownerThread }

    /// Subscribes to topics matching a whitelist regex (the console consumer's `--topic`,
    /// `--whitelist`; Kafka's createMessageStreamsByFilter), registers this consumer and runs the
    /// first rebalance, whose failure is thrown.
    public func subscribe(whitelist: String, streams: Int = 1) async throws {
        try await subscribe(ConsumerRegistration(.filter(try TopicFilter(.whitelist, whitelist), streams: streams)))
    }

    /// Subscribes to every topic not matching a blacklist regex.
    public func subscribe(blacklist: String, streams: Int = 1) async throws {
        try await subscribe(ConsumerRegistration(.filter(try TopicFilter(.blacklist, blacklist), streams: streams)))
    }

    /// Static subscription, topic → number of streams (Kafka's createMessageStreams).
    public func subscribe(topics: [String: Int]) async throws {
        try await subscribe(ConsumerRegistration(.topics(topics)))
    }

    private func subscribe(_ reg: ConsumerRegistration) async throws {
        precondition(registration == nil, "a consumer subscribes once")
        registration = reg
        try await register()
        startWatching()
        try await rebalanceWithRetries()
    }

    private var idsPath: String { ZkPaths.consumerIds(config.groupId) }

    /// Writes the ephemeral registration. A node left by an earlier session of ours (same id) is
    /// waited out, as Kafka does for ZOOKEEPER-1740.
    private func register() async throws {
        guard let registration else { return }
        do {
            try await kzk.registerConsumer(group: config.groupId, consumerId: consumerId, registrationJSON: registration.json(),
                                           sessionTimeoutMs: config.sessionTimeoutMs, logger: logger)
        } catch let e as ConsumerAlreadyRegistered {
            throw KafkaClientError(e.description)
        }
    }

    private func startWatching() {
        let events = kzk.events()
        let idsPath = self.idsPath
        eventsTask = Task { [weak self] in
            for await e in events {
                guard let self else { return }
                switch e {
                case .nodeChildrenChanged(idsPath), .nodeChildrenChanged(ZkPaths.brokerTopics):
                    self.state.withLock { st in st.needsRebalance = true }
                case .nodeDataChanged(let p) where p.hasPrefix(ZkPaths.brokerTopics + "/"):
                    self.state.withLock { st in st.needsRebalance = true }
                case .nodeCreated(let p) where p.hasPrefix(ZkPaths.brokerTopics + "/"):
                    self.state.withLock { st in st.needsRebalance = true }
                case .session(.expired):
                    // The new session has lost our registration and owner nodes.
                    self.state.withLock { st in
                        st.sessionRenewed = true
                        st.needsRebalance = true
                    }
                case .session(.connected):
                    // Attempts made while the new session was being opened failed: go again.
                    self.state.withLock { st in if st.sessionRenewed { st.needsRebalance = true } }
                default: break
                }
            }
        }
    }

    private func rebalanceWithRetries() async throws {
        var lastError: Error?
        for attempt in 0..<config.rebalanceMaxRetries {
            do {
                try await rebalance()
                return
            } catch {
                lastError = error
                logger.info("[\(consumerId)], begin rebalancing consumer \(consumerId) try #\(attempt) failed: \(error)")
                if config.autoCommitEnable { await commitOffsets() }
                await releaseAll()
                lastDecision = nil
                try await Task.sleep(nanoseconds: UInt64(config.rebalanceBackoffMs) * 1_000_000)
            }
        }
        throw KafkaClientError("\(consumerId) can't rebalance after \(config.rebalanceMaxRetries) retries: \(lastError.map { "\($0)" } ?? "")")
    }

    /// Forgets (and deletes the owner nodes of) everything owned.
    private func releaseAll() async {
        for tp in ownerThread.keys { try? await kzk.releasePartition(group: config.groupId, tp) }
        owned.removeAll()
        ownerThread.removeAll()
        buffer.removeAll()
        bufferIndex = 0
    }

    /// One rebalance attempt (Kafka's ZKRebalancerListener.rebalance).
    private func rebalance() async throws {
        let renewed = state.withLock { st -> Bool in
            st.needsRebalance = false
            return st.sessionRenewed
        }
        if renewed {
            // A new session: the owned registry is gone with the old one (uncommitted progress
            // too, as in Kafka: another member may own those partitions by now); register again.
            owned.removeAll()
            ownerThread.removeAll()
            buffer.removeAll()
            bufferIndex = 0
            try await register()
            state.withLock { st in st.sessionRenewed = false }
            logger.info("[\(consumerId)], re-registered in a new ZooKeeper session")
        }
        // Commit while ownership is still held, then release it.
        if config.autoCommitEnable { await commitOffsets() }
        await releaseAll()

        // Everything the decision depends on; reading sets the watches again.
        let ids = try await kzk.consumerIds(group: config.groupId, watch: true)
        if !ids.contains(consumerId) { try await register() }
        var members: [String: ConsumerRegistration] = [:]
        for id in ids {
            guard let data = try? await kzk.consumerRegistrationData(group: config.groupId, consumerId: id) else { continue }   // left meanwhile
            members[id] = try ConsumerRegistration.parse(data, path: idsPath + "/" + id)
        }
        members[consumerId] = registration
        let wildcard: Bool
        if case .filter = registration?.subscription { wildcard = true } else { wildcard = false }
        let topics = try await kzk.topics(watch: wildcard)
        var ctx = AssignmentContext(consumerId: consumerId, members: members, topics: topics, partitions: [:],
                                    excludeInternalTopics: config.excludeInternalTopics)
        for t in ctx.myTopicThreadIds.keys {
            if let assignment = try await kzk.assignment(t, watch: true) {
                ctx.partitions[t] = Array(assignment.keys)
            } else {
                _ = try await kzk.topicExists(t, watch: true)
            }
        }
        let decision = try RebalanceDecision.decide(ctx, strategy: config.partitionAssignmentStrategy)

        // Claim ownership; a node still held by the previous owner fails this attempt (and
        // releases what this attempt claimed). A node holding our own thread id is ours.
        var claimed: [TopicPartition: ConsumerThreadId] = [:]
        do {
            for tp in decision.partitions {
                let thread = decision.ownership[tp]!
                if case .heldBy(let holder) = try await kzk.claimPartition(group: config.groupId, tp, threadId: thread.description) {
                    throw KafkaClientError("partition \(tp) is still owned by \(holder ?? "another consumer")")
                }
                claimed[tp] = thread
            }
        } catch {
            for c in claimed.keys { try? await kzk.releasePartition(group: config.groupId, c) }
            throw error
        }
        // Start positions: the committed offset, or -1 meaning "reset by auto.offset.reset when
        // the leader is reachable" (resolved by the fetch loop, so a missing leader does not
        // fail the rebalance).
        for tp in claimed.keys {
            var off: Int64 = -1
            if let v = (try? await kzk.consumerOffset(group: config.groupId, tp)) ?? nil { off = v }
            owned[tp] = off
            committed[tp] = off
        }
        ownerThread = claimed
        lastDecision = decision
        logger.info("[\(consumerId)], \(config.partitionAssignmentStrategy.rawValue) assignment: \(decision.partitionsByThread.sorted { $0.key < $1.key }.map { "\($0.key) -> \($0.value.map(\.description).joined(separator: ","))" }.joined(separator: "; "))")
    }

    private func resetOffset(_ tp: TopicPartition) async throws -> Int64 {
        let c = try await leader(tp)
        return try await c.offsetBefore(tp, time: config.autoOffsetReset == "smallest" ? OffsetsRequest.earliestTime : OffsetsRequest.latestTime)
    }

    private func leader(_ tp: TopicPartition) async throws -> SimpleConsumer {
        guard let state = try await kzk.partitionState(tp), state.state.leader >= 0 else { throw KafkaClientError("no leader for \(tp)") }
        guard let reg = try await kzk.broker(state.state.leader) else { throw KafkaClientError("leader \(state.state.leader) of \(tp) is not registered") }
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
            if state.withLock({ st in st.needsRebalance }) {
                // As on Kafka's watcher thread: a failed rebalance is logged, and the consumer is
                // left with no partitions until the next change in the group.
                do { try await rebalanceWithRetries() } catch let e as CancellationError { throw e } catch {
                    logger.error("error during syncedRebalance: \(error)")
                }
            }
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
        // Partitions without a position get one from auto.offset.reset (all of them, as Kafka's
        // fetchers do, so the next commit records a start for each).
        for tp in parts where owned[tp]! < 0 {
            do {
                owned[tp] = try await resetOffset(tp)
                logger.info("[\(consumerId)], \(tp) starts at offset \(owned[tp]!) (auto.offset.reset=\(config.autoOffsetReset))")
            } catch {
                logger.warning("Cannot reset the offset of \(tp) yet: \(error)")
            }
        }
        partitionCursor = (partitionCursor + 1) % parts.count
        let tp = parts[partitionCursor]
        do {
            if owned[tp]! < 0 {
                try await Task.sleep(nanoseconds: 200_000_000)
                return
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
        // After a session expiry the positions belong to the old session's ownership.
        if state.withLock({ st in st.sessionRenewed }) { return }
        for (tp, off) in owned where off >= 0 && committed[tp] != off {
            do {
                try await kzk.commitConsumerOffset(group: config.groupId, tp, offset: off)
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
        for tp in ownerThread.keys { try? await kzk.releasePartition(group: config.groupId, tp) }
        for c in consumers.values { await c.close() }
        consumers.removeAll()
        if deleteGroup { try? await kzk.deleteConsumerGroup(config.groupId) }
        await kzk.close()
    }

    /// True when the group already has committed offsets (the console consumer refuses
    /// `--from-beginning` then, unless told to delete them).
    public static func groupHasOffsets(zk: KafkaZooKeeper, group: String) async -> Bool {
        (try? await zk.hasConsumerOffsets(group: group)) ?? false
    }
}
