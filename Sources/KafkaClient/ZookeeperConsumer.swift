import Foundation
import KafkaCluster
import KafkaProtocol
import Logging
import ZooKeeper

/// The ZooKeeper-coordinated group consumer of Kafka 0.8 (the high-level consumer, with all of
/// its streams merged into one iterator). `GroupMembership` decides (register, read the group,
/// claim `/consumers/<g>/owners`, read offsets, start fetchers, retry, give up); this actor carries
/// its actions out one at a time and feeds back what they produced. `GroupFetcher` fetches every
/// partition a broker leads in one request; `next()` hands out messages and commits the next
/// offset to consume to `/consumers/<g>/offsets`.
public actor ZookeeperConsumer {
    public nonisolated let config: ZookeeperConsumerConfig
    public nonisolated let consumerId: String
    let logger: Logger
    nonisolated let kzk: KafkaZooKeeper
    /// The group's ZooKeeper side (the console consumer's offset checks and clean-up).
    public nonisolated var zooKeeper: KafkaZooKeeper { kzk }

    private var machine: GroupMembership
    private var registration: ConsumerRegistration?
    private var events: [GroupEvent] = []
    private var eventsHead = 0
    private var driving = false
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []
    private var ready: CheckedContinuation<Void, Error>?
    private var watcher: Task<Void, Never>?
    private var failure: GroupConsumerError?

    private let queue: ChunkQueue
    private let fetcher: GroupFetcher
    private var generation = 0
    /// Next offset to consume, per owned partition (absent: not known yet).
    private var consumed: [TopicPartition: Int64] = [:]
    /// What ZooKeeper holds for each owned partition (commits skip unchanged values).
    private var committed: [TopicPartition: Int64] = [:]
    private var current: FetchedChunk?
    private var currentIndex = 0
    private var lastCommit = Date()

    public static func connect(_ config: ZookeeperConsumerConfig, logger: Logger = Logger(label: "kafka.consumer.ZookeeperConsumerConnector")) async throws -> ZookeeperConsumer {
        let zk = try await KafkaZooKeeper.connect(config.zookeeperConnect, sessionTimeoutMs: config.sessionTimeoutMs,
                                                  connectionTimeoutMs: max(config.connectionTimeoutMs, config.sessionTimeoutMs), logger: logger)
        return ZookeeperConsumer(config: config, zk: zk, logger: logger)
    }

    init(config: ZookeeperConsumerConfig, zk: KafkaZooKeeper, logger: Logger) {
        self.config = config
        self.kzk = zk
        self.logger = logger
        let host = ProcessInfo.processInfo.hostName
        let uuid = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(8)
        let id = config.consumerId.map { "\(config.groupId)_\($0)" } ?? "\(config.groupId)_\(host)-\(Int64(Date().timeIntervalSince1970 * 1000))-\(uuid)"
        self.consumerId = id
        self.machine = GroupMembership(consumerId: id, settings: GroupMembership.Settings(config))
        let queue = ChunkQueue(capacity: config.queuedMaxMessageChunks)
        self.queue = queue
        // Fetch failures go to the state machine through a stream the watcher task drains.
        let (reports, reportSink) = AsyncStream<GroupEvent>.makeStream()
        self.fetchReports = reports
        self.fetcher = GroupFetcher(config: config, kzk: zk, queue: queue, logger: logger) { tp, f in reportSink.yield(.fetchFailed(tp, f)) }
    }

    private let fetchReports: AsyncStream<GroupEvent>
    private var reportsTask: Task<Void, Never>?

    /// The partitions this consumer owns now, with the owning thread.
    public var ownedPartitions: [TopicPartition: ConsumerThreadId] { machine.owned }
    /// The last installed decision (nil before the first one or after a failed rebalance).
    public var lastDecision: RebalanceDecision? { machine.lastDecision }
    /// The membership state machine as it is now.
    public var membership: GroupMembership { machine }

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
        startWatching()
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
            ready = c
            enqueue(.started)
        }
    }

    // MARK: Driving the state machine

    /// Feeds an event to the machine (after the ones already waiting).
    func post(_ e: GroupEvent) {
        enqueue(e)
    }

    private func enqueue(_ e: GroupEvent) {
        events.append(e)
        guard !driving else { return }
        driving = true
        Task { await self.drive() }
    }

    /// Handles queued events one at a time, carrying out each one's actions in order; events
    /// that arrive while an action awaits are queued behind it, so the machine sees a group
    /// change before the result of the claim that was in flight.
    private func drive() async {
        while eventsHead < events.count {
            let e = events[eventsHead]
            eventsHead += 1
            if eventsHead > 256 { events.removeFirst(eventsHead); eventsHead = 0 }
            for a in machine.handle(e) {
                if let produced = await perform(a) { events.append(produced) }
            }
        }
        driving = false
        let w = idleWaiters
        idleWaiters.removeAll()
        for c in w { c.resume() }
    }

    private func untilIdle() async {
        guard driving else { return }
        await withCheckedContinuation { idleWaiters.append($0) }
    }

    private func perform(_ a: GroupAction) async -> GroupEvent? {
        let group = config.groupId
        let zk = kzk
        switch a {
        case .register:
            guard let registration else { return nil }
            do {
                try await zk.registerConsumer(group: group, consumerId: consumerId, registrationJSON: registration.json(),
                                              sessionTimeoutMs: config.sessionTimeoutMs, logger: logger)
                return .registered
            } catch let e as ConsumerAlreadyRegistered {
                return .registrationConflict(e.description)
            } catch {
                return .registrationFailed("\(error)")
            }

        case .readGroup:
            do { return .groupRead(try await readGroup()) } catch { return .groupReadFailed("\(error)") }

        case .stopFetchers:
            fetcher.stop()
            generation += 1
            queue.clear()
            current = nil
            return nil

        case .commitOffsets:
            await commit(Array(consumed.keys))
            return nil

        case .release(let tps):
            await forEach(tps) { tp in try? await zk.releasePartition(group: group, tp) }
            for tp in tps {
                consumed[tp] = nil
                committed[tp] = nil
            }
            return nil

        case .claim(let wanted):
            let results = await mapEach(Array(wanted.keys)) { tp -> PartitionClaim in
                do { return try await zk.claimPartition(group: group, tp, threadId: wanted[tp]!.description) } catch { return .heldBy(nil) }
            }
            var claimed: [TopicPartition] = []
            var conflicts: [TopicPartition: String?] = [:]
            for (tp, r) in results {
                switch r {
                case .claimed: claimed.append(tp)
                case .heldBy(let holder): conflicts[tp] = holder
                }
            }
            return .claimResult(claimed: claimed, conflicts: conflicts)

        case .awaitRelease(let tps, let timeoutMs):
            let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
            var held = Set(tps)
            while true {
                let stillHeld = await mapEach(Array(held)) { tp -> Bool in
                    do { return try await zk.partitionOwner(group: group, tp) != nil } catch { return true }
                }
                for (tp, h) in stillHeld where !h { held.remove(tp) }
                if held.isEmpty || Date() >= deadline { break }
                // A group change ends the wait early: the machine restarts the attempt.
                if eventsHead < events.count, events[eventsHead...].contains(.groupChanged) { break }
                try? await Task.sleep(nanoseconds: 50_000_000)
            }
            return .ownersReleased(tps.filter { !held.contains($0) })

        case .readOffsets(let tps):
            let results = await mapEach(tps) { tp in await Result(catching: { try await zk.consumerOffset(group: group, tp) }) }
            var offsets: [TopicPartition: Int64?] = [:]
            for (tp, r) in results {
                switch r {
                case .success(let off): offsets[tp] = off
                case .failure(let e): return .offsetsReadFailed("cannot read the offset of \(tp): \(e)")
                }
            }
            return .offsetsRead(offsets)

        case .startFetchers(let starts):
            generation += 1
            queue.clear()
            current = nil
            for (tp, off) in starts {
                if let off {
                    consumed[tp] = off
                    committed[tp] = off
                }
            }
            queue.setCapacity(config.queuedMaxMessageChunks * max(1, Set(starts.keys.map(\.topic)).count))
            fetcher.start(generation: generation, starts)
            return nil

        case .retryAfter(let ms):
            Task {
                try? await Task.sleep(nanoseconds: UInt64(max(ms, 0)) * 1_000_000)
                self.post(.backoffElapsed)
            }
            return nil

        case .refreshLeaders(let tps, let afterMs):
            fetcher.refreshLeaders(tps, afterMs: afterMs)
            return nil

        case .resetOffsets(let tps):
            logger.warning("[\(consumerId)] offsets of \(tps.map(\.description).joined(separator: ",")) are out of range; resetting by auto.offset.reset=\(config.autoOffsetReset.rawValue)")
            fetcher.resetOffsets(tps)
            return nil

        case .reportReady:
            ready?.resume()
            ready = nil
            return nil

        case .reportGaveUp(let why):
            logger.error("[\(consumerId)] \(why)")
            ready?.resume(throwing: why)
            ready = nil
            return nil

        case .fail(let why):
            logger.error("[\(consumerId)] stopping: \(why)")
            failure = .fetchFailed(why)
            queue.interrupt()
            return nil

        case .log(let line):
            logger.info("\(line)")
            return nil
        }
    }

    /// Everything a decision depends on; reading sets the watches again.
    private func readGroup() async throws -> AssignmentContext {
        let group = config.groupId
        let zk = kzk
        let ids = try await zk.consumerIds(group: group, watch: true)
        var members: [String: ConsumerRegistration] = [:]
        let datas = await mapEach(ids) { id in await Result(catching: { try await zk.consumerRegistrationData(group: group, consumerId: id) }) }
        for (id, r) in datas {
            guard let data = try r.get() else { continue }   // left meanwhile
            members[id] = try ConsumerRegistration.parse(data, path: ZkPaths.consumerIds(group) + "/" + id)
        }
        let wildcard: Bool
        if case .filter = registration?.subscription { wildcard = true } else { wildcard = false }
        let topics = try await zk.topics(watch: wildcard)
        var ctx = AssignmentContext(consumerId: consumerId, members: members, topics: topics, partitions: [:],
                                    excludeInternalTopics: config.excludeInternalTopics)
        for t in ctx.myTopicThreadIds.keys {
            if let assignment = try await zk.assignment(t, watch: true) {
                ctx.partitions[t] = Array(assignment.keys)
            } else {
                _ = try await zk.topicExists(t, watch: true)
            }
        }
        return ctx
    }

    /// Runs `body` for every element, up to 16 at a time.
    private nonisolated func forEach<T: Hashable & Sendable>(_ items: [T], _ body: @escaping @Sendable (T) async -> Void) async {
        _ = await mapEach(items) { await body($0) }
    }

    private nonisolated func mapEach<K: Hashable & Sendable, V: Sendable>(_ items: [K], _ body: @escaping @Sendable (K) async -> V) async -> [K: V] {
        var out: [K: V] = [:]
        await withTaskGroup(of: (K, V).self) { g in
            var it = items.makeIterator()
            var running = 0
            while running < 16, let k = it.next() { g.addTask { (k, await body(k)) }; running += 1 }
            while let (k, v) = await g.next() {
                out[k] = v
                if let k = it.next() { g.addTask { (k, await body(k)) } }
            }
        }
        return out
    }

    private func startWatching() {
        let reports = fetchReports
        reportsTask = Task { [weak self] in
            for await e in reports {
                guard let self else { return }
                await self.post(e)
            }
        }
        let events = kzk.events()
        let idsPath = ZkPaths.consumerIds(config.groupId)
        watcher = Task { [weak self] in
            for await e in events {
                guard let self else { return }
                switch e {
                case .nodeChildrenChanged(idsPath), .nodeChildrenChanged(ZkPaths.brokerTopics):
                    await self.post(.groupChanged)
                case .nodeDataChanged(let p) where p.hasPrefix(ZkPaths.brokerTopics + "/"):
                    await self.post(.groupChanged)
                case .nodeCreated(let p) where p.hasPrefix(ZkPaths.brokerTopics + "/"):
                    await self.post(.groupChanged)
                case .session(.expired):
                    await self.post(.sessionExpired)
                case .session(.connected):
                    await self.post(.sessionReestablished)
                default: break
                }
            }
        }
    }

    // MARK: Consuming

    /// The next message, waiting for one up to `timeoutMs` (nil when none arrived).
    public func next(timeoutMs: Int = Int.max) async throws -> ConsumedMessage? {
        let deadline = Date().addingTimeInterval(Double(min(timeoutMs, 1_000_000_000)) / 1000)
        while true {
            if let c = current, currentIndex < c.messages.count {
                let m = c.messages[currentIndex]
                currentIndex += 1
                consumed[c.topicPartition] = m.offset + 1
                return m
            }
            guard try await refill(until: deadline) else { return nil }
        }
    }

    /// The messages of one fetched chunk (what is left of it), waiting up to `timeoutMs` for one;
    /// empty when none arrived. The next offset to consume moves past all of them.
    public func nextChunk(timeoutMs: Int = Int.max) async throws -> ArraySlice<ConsumedMessage> {
        let deadline = Date().addingTimeInterval(Double(min(timeoutMs, 1_000_000_000)) / 1000)
        while true {
            if let c = current, currentIndex < c.messages.count {
                let out = c.messages[currentIndex...]
                currentIndex = c.messages.count
                consumed[c.topicPartition] = out.last!.offset + 1
                return out
            }
            guard try await refill(until: deadline) else { return [] }
        }
    }

    private var pending: [FetchedChunk] = []
    private var pendingIndex = 0

    /// Makes `current` the next chunk of this generation; false at the deadline.
    private func refill(until deadline: Date) async throws -> Bool {
        while true {
            if let failure { throw failure }
            if config.autoCommitEnable && Date().timeIntervalSince(lastCommit) * 1000 >= Double(config.autoCommitIntervalMs) {
                lastCommit = Date()
                await commit(Array(consumed.keys))
            }
            while pendingIndex < pending.count {
                let c = pending[pendingIndex]
                pendingIndex += 1
                guard c.generation == generation else { continue }
                if let r = c.resetTo { consumed[c.topicPartition] = r; continue }
                current = c
                currentIndex = 0
                return true
            }
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 || Task.isCancelled { return false }
            var wait = Int(min(remaining, 3600) * 1000) + 1
            if config.autoCommitEnable { wait = min(wait, max(config.autoCommitIntervalMs, 10)) }
            if let batch = await queue.take(timeoutMs: wait) {
                pending = batch
                pendingIndex = 0
            }
        }
    }

    /// Writes the next offset to consume of `tps` where it changed (only while they are owned).
    private func commit(_ tps: [TopicPartition]) async {
        let group = config.groupId
        let zk = kzk
        var todo: [TopicPartition: Int64] = [:]
        for tp in tps { if let off = consumed[tp], committed[tp] != off { todo[tp] = off } }
        guard !todo.isEmpty else { return }
        let values = todo
        let results = await mapEach(Array(todo.keys)) { tp -> String? in
            do { try await zk.commitConsumerOffset(group: group, tp, offset: values[tp]!); return nil } catch { return "\(error)" }
        }
        for (tp, err) in results {
            if let err { logger.warning("Cannot commit offset \(todo[tp]!) of \(tp): \(err)") } else { committed[tp] = todo[tp]! }
        }
    }

    /// Writes the next offset to consume of every owned partition that changed.
    public func commitOffsets() async {
        lastCommit = Date()
        await commit(Array(machine.owned.keys))
    }

    /// Commits (when auto-commit is on), releases ownership, optionally deletes the group.
    public func shutdown(deleteGroup: Bool = false) async {
        watcher?.cancel()
        reportsTask?.cancel()
        enqueue(.shutdown)
        await untilIdle()
        fetcher.stop()
        queue.interrupt()
        if deleteGroup { try? await kzk.deleteConsumerGroup(config.groupId) }
        await kzk.close()
    }

    /// True when the group already has committed offsets (the console consumer refuses
    /// `--from-beginning` then, unless told to delete them).
    public static func groupHasOffsets(zk: KafkaZooKeeper, group: String) async -> Bool {
        (try? await zk.hasConsumerOffsets(group: group)) ?? false
    }
}
