import Foundation
import KafkaCluster
import KafkaProtocol
import Logging
import NIOCore
import Synchronization

/// Messages of one partition from one fetch response, or (`resetTo`) a new position set by
/// `auto.offset.reset`. `generation` ties it to the assignment it was fetched for.
public struct FetchedChunk: Sendable {
    public var generation: Int
    public var topicPartition: TopicPartition
    public var messages: [ConsumedMessage]
    public var resetTo: Int64?
}

/// The bounded queue between the fetchers and the iterator (0.8.2's chunk queues, with
/// `queued.max.message.chunks` fetch responses of room): a fetcher's `put` waits while it is full.
final class ChunkQueue: Sendable {
    private struct Waiter { let id: Int; let continuation: CheckedContinuation<[FetchedChunk]?, Never> }
    private struct State {
        var items: [[FetchedChunk]] = []
        var head = 0
        var capacity: Int
        var takers: [Waiter] = []
        var putters: [(id: Int, continuation: CheckedContinuation<Void, Never>)] = []
        var nextId = 0
        var count: Int { items.count - head }
    }
    private let state: Mutex<State>

    init(capacity: Int) { state = Mutex(State(capacity: max(1, capacity))) }

    func setCapacity(_ n: Int) {
        let wake = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.capacity = max(1, n)
            return Self.admitPutters(&s)
        }
        for w in wake { w.resume() }
    }

    private static func admitPutters(_ s: inout State) -> [CheckedContinuation<Void, Never>] {
        var out: [CheckedContinuation<Void, Never>] = []
        while s.count + out.count < s.capacity, !s.putters.isEmpty { out.append(s.putters.removeFirst().continuation) }
        return out
    }

    /// Adds one response's chunks, first waiting while the queue is full.
    func put(_ batch: [FetchedChunk]) async {
        let full = state.withLock { $0.count >= $0.capacity }
        if full {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s -> Bool in
                    if s.count < s.capacity { return true }
                    s.nextId += 1
                    s.putters.append((s.nextId, c))
                    return false
                }
                if now { c.resume() }
            }
        }
        let taker = state.withLock { s -> Waiter? in
            if !s.takers.isEmpty { return s.takers.removeFirst() }
            s.items.append(batch)
            return nil
        }
        taker?.continuation.resume(returning: batch)
    }

    /// The oldest batch, waiting up to `timeoutMs` (nil when none came, or the task was cancelled).
    func take(timeoutMs: Int) async -> [FetchedChunk]? {
        if let b = poll() { return b }
        guard timeoutMs > 0 else { return nil }
        let id = state.withLock { s -> Int in s.nextId += 1; return s.nextId }
        let timer = Task {
            try? await Task.sleep(nanoseconds: UInt64(timeoutMs) * 1_000_000)
            self.cancelTake(id)
        }
        defer { timer.cancel() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<[FetchedChunk]?, Never>) in
                let ready = state.withLock { s -> [FetchedChunk]?? in
                    if s.count > 0 { return .some(Self.pop(&s)) }
                    s.takers.append(Waiter(id: id, continuation: c))
                    return .none
                }
                if let ready { c.resume(returning: ready) }
            }
        } onCancel: {
            self.cancelTake(id)
        }
    }

    private func cancelTake(_ id: Int) {
        let w = state.withLock { s -> Waiter? in
            guard let i = s.takers.firstIndex(where: { $0.id == id }) else { return nil }
            return s.takers.remove(at: i)
        }
        w?.continuation.resume(returning: nil)
    }

    /// The oldest batch if one is queued.
    func poll() -> [FetchedChunk]? {
        let (b, wake) = state.withLock { s -> ([FetchedChunk]?, [CheckedContinuation<Void, Never>]) in
            guard s.count > 0 else { return (nil, []) }
            let b = Self.pop(&s)
            return (b, Self.admitPutters(&s))
        }
        for w in wake { w.resume() }
        return b
    }

    private static func pop(_ s: inout State) -> [FetchedChunk] {
        let b = s.items[s.head]
        s.head += 1
        if s.head > 64 && s.head * 2 > s.items.count {
            s.items.removeFirst(s.head)
            s.head = 0
        }
        return b
    }

    /// Drops everything queued and lets waiting fetchers go (their chunks are of an old generation).
    func clear() {
        let wake = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.items.removeAll()
            s.head = 0
            let w = s.putters.map(\.continuation)
            s.putters.removeAll()
            return w
        }
        for w in wake { w.resume() }
    }

    /// Wakes a waiting `take` with nothing (the consumer failed or is shutting down).
    func interrupt() {
        let takers = state.withLock { s -> [Waiter] in
            let t = s.takers
            s.takers.removeAll()
            return t
        }
        for t in takers { t.continuation.resume(returning: nil) }
    }
}

/// The group consumer's fetchers (0.8.2's ConsumerFetcherManager, leader finder and
/// ConsumerFetcherThreads): one task per leader broker sends ONE Fetch request for every
/// assigned partition that broker leads; leaders come from a metadata cache (a Metadata request
/// to a live broker) that is refreshed only for partitions that failed (NotLeaderForPartition,
/// UnknownTopicOrPartition, LeaderNotAvailable, connection loss). Failures are reported to the
/// consumer (`GroupEvent.fetchFailed`), whose state machine says what to do about them.
final class GroupFetcher: Sendable {
    struct PartitionState: Sendable {
        /// Next offset to fetch; nil: to be set by auto.offset.reset.
        var offset: Int64?
        /// Out of the fetch requests until its failure is handled.
        var paused: Bool
    }
    private struct State {
        var generation = 0
        var partitions: [TopicPartition: PartitionState] = [:]
        var leaders: [TopicPartition: Int32] = [:]
        var brokers: [Int32: BrokerEndpoint] = [:]
        var runners: [Int32: Task<Void, Never>] = [:]
        var refreshing = false
    }
    private let state = Mutex(State())
    let config: ZookeeperConsumerConfig
    let kzk: KafkaZooKeeper
    let queue: ChunkQueue
    let logger: Logger
    let report: @Sendable (TopicPartition, FetchFailure) -> Void

    init(config: ZookeeperConsumerConfig, kzk: KafkaZooKeeper, queue: ChunkQueue, logger: Logger,
         report: @escaping @Sendable (TopicPartition, FetchFailure) -> Void) {
        self.config = config
        self.kzk = kzk
        self.queue = queue
        self.logger = logger
        self.report = report
    }

    /// Number of brokers being fetched from (for tests and logs).
    var runnerCount: Int { state.withLock { $0.runners.count } }

    /// Starts fetching `starts` (nil offset: reset by auto.offset.reset) for `generation`.
    func start(generation: Int, _ starts: [TopicPartition: Int64?]) {
        state.withLock { s in
            s.generation = generation
            s.partitions = starts.mapValues { PartitionState(offset: $0, paused: false) }
        }
        Task { await self.ensureLeaders() }
    }

    /// Stops every fetch task (their in-flight responses are discarded by generation).
    func stop() {
        let tasks = state.withLock { s -> [Task<Void, Never>] in
            s.generation = -1
            s.partitions.removeAll()
            let t = Array(s.runners.values)
            s.runners.removeAll()
            return t
        }
        for t in tasks { t.cancel() }
    }

    /// Forgets the leaders of `tps` and looks them up again after `afterMs`.
    func refreshLeaders(_ tps: [TopicPartition], afterMs: Int) {
        state.withLock { s in
            for tp in tps { s.leaders[tp] = nil }
        }
        Task {
            try? await Task.sleep(nanoseconds: UInt64(max(afterMs, 0)) * 1_000_000)
            await self.ensureLeaders()
        }
    }

    /// Sets `tps` to be reset by auto.offset.reset and resumes them.
    func resetOffsets(_ tps: [TopicPartition]) {
        state.withLock { s in
            for tp in tps where s.partitions[tp] != nil {
                s.partitions[tp]!.offset = nil
                s.partitions[tp]!.paused = false
            }
        }
        spawnRunners()
    }

    /// Looks up leaders for every partition without one (retrying every refresh.leader.backoff.ms
    /// while some have none), unpauses them and starts the missing broker tasks.
    private func ensureLeaders() async {
        let claimed = state.withLock { s -> Bool in
            if s.refreshing { return false }
            s.refreshing = true
            return true
        }
        // One refresh at a time: the running one loops until no partition lacks a leader, and
        // clears the flag in the same critical section that found none missing.
        guard claimed else { return }
        while true {
            let missing = state.withLock { s -> [TopicPartition] in
                let m = s.partitions.keys.filter { s.leaders[$0] == nil }
                if m.isEmpty { s.refreshing = false }
                return m
            }
            if missing.isEmpty { break }
            do {
                try await refreshMetadata(topics: Set(missing.map(\.topic)))
            } catch {
                logger.warning("[\(config.clientId)] leader lookup for \(missing.count) partitions failed: \(error)")
            }
            let stillMissing = state.withLock { s -> Bool in
                for tp in missing where s.leaders[tp] != nil { s.partitions[tp]?.paused = false }
                return s.partitions.keys.contains { s.leaders[$0] == nil }
            }
            spawnRunners()
            if stillMissing {
                try? await Task.sleep(nanoseconds: UInt64(max(config.refreshLeaderBackoffMs, 10)) * 1_000_000)
            }
        }
        spawnRunners()
    }

    /// Metadata of `topics` from one live broker (those registered in ZooKeeper), into the cache.
    private func refreshMetadata(topics: Set<String>) async throws {
        let brokers = try await kzk.liveBrokers()
        guard !brokers.isEmpty else { throw KafkaClientError("no broker is registered in ZooKeeper") }
        var lastError: Error = KafkaClientError("no broker answered")
        for b in brokers.shuffled() {
            do {
                let c = try await BrokerConnection.connect(host: b.host, port: Int(b.port), clientId: config.clientId,
                                                           requestTimeout: .milliseconds(Int64(config.socketTimeoutMs)))
                defer { Task { await c.close() } }
                let md = try await c.metadata(topics.sorted())
                state.withLock { s in
                    for e in md.brokers { s.brokers[e.id] = e }
                    for t in md.topics {
                        for p in t.partitions {
                            let tp = TopicPartition(t.topic, p.partition)
                            s.leaders[tp] = p.leader >= 0 && md.brokers.contains { $0.id == p.leader } ? p.leader : nil
                        }
                    }
                }
                return
            } catch { lastError = error }
        }
        throw lastError
    }

    /// Starts a task for each leader broker with fetchable partitions that has none.
    private func spawnRunners() {
        state.withLock { s in
            var wanted = Set<Int32>()
            for (tp, p) in s.partitions where !p.paused { if let l = s.leaders[tp] { wanted.insert(l) } }
            for b in wanted where s.runners[b] == nil {
                guard let endpoint = s.brokers[b] else { continue }
                let gen = s.generation
                s.runners[b] = Task { await self.run(broker: b, endpoint: endpoint, generation: gen) }
            }
        }
    }

    /// What a broker task fetches next: its unpaused partitions and their offsets; nil ends the
    /// task (none left, or a new generation).
    private func work(broker: Int32, generation: Int) -> [(TopicPartition, Int64?)]? {
        state.withLock { s -> [(TopicPartition, Int64?)]? in
            guard s.generation == generation, !Task.isCancelled else { return nil }
            var out: [(TopicPartition, Int64?)] = []
            for (tp, p) in s.partitions where !p.paused && s.leaders[tp] == broker { out.append((tp, p.offset)) }
            if out.isEmpty {
                s.runners[broker] = nil
                return nil
            }
            return out.sorted { $0.0 < $1.0 }
        }
    }

    /// Pauses `tps` and reports them (their failure is decided by the consumer's state machine).
    private func fail(_ tps: [TopicPartition], _ failure: FetchFailure, generation: Int) {
        let current = state.withLock { s -> Bool in
            guard s.generation == generation else { return false }
            for tp in tps where s.partitions[tp] != nil { s.partitions[tp]!.paused = true }
            return true
        }
        guard current else { return }
        for tp in tps { report(tp, failure) }
    }

    enum Outcome: Sendable {
        case data(FetchedChunk, next: Int64)
        case failed(TopicPartition, FetchFailure)
    }

    /// One partition of a fetch response: its messages and next offset, or what went wrong.
    static func outcome(_ tp: TopicPartition, _ off: Int64, _ p: FetchResponse.PartitionData, generation: Int) -> Outcome {
        switch p.error {
        case .none:
            do {
                let r = try SimpleConsumer.decode(tp, offset: off, p)
                if r.messageTooLarge {
                    return .failed(tp, .fatal("Found a message larger than the maximum fetch size of this consumer on topic \(tp.topic) partition \(tp.partition) at fetch offset \(off). Increase the fetch size, or decrease the maximum message size the broker will allow."))
                }
                return .data(FetchedChunk(generation: generation, topicPartition: tp, messages: r.messages, resetTo: nil), next: r.nextOffset)
            } catch let e as CorruptMessageError {
                return .failed(tp, .fatal(e.description))
            } catch {
                return .failed(tp, .fatal("\(error)"))
            }
        case .offsetOutOfRange:
            return .failed(tp, .offsetOutOfRange)
        default:
            // NotLeaderForPartition, UnknownTopicOrPartition, LeaderNotAvailable, ...: look the leader up again.
            return .failed(tp, .leaderUnavailable)
        }
    }

    /// Message sets larger than twice this are decoded in pieces of about this size, in parallel.
    static let pieceBytes = 128 * 1024

    /// `p` cut at entry boundaries into pieces of about `pieceBytes` (one piece when small, or an error).
    static func pieces(_ p: FetchResponse.PartitionData) -> [FetchResponse.PartitionData] {
        let set = p.messageSet
        guard p.error == .none, set.readableBytes > 2 * pieceBytes else { return [p] }
        var cuts: [Int] = [0]
        set.withUnsafeReadableBytes { raw in
            var pos = 0
            while raw.count - pos >= 12 {
                let size = Int(Int32(bigEndian: raw.loadUnaligned(fromByteOffset: pos + 8, as: Int32.self)))
                if size < 14 || raw.count - pos - 12 < size { break }
                if pos - cuts.last! >= pieceBytes { cuts.append(pos) }
                pos += 12 + size
            }
        }
        cuts.append(set.readableBytes)
        return (0..<(cuts.count - 1)).map { i in
            var q = p
            q.messageSet = set.getSlice(at: set.readerIndex + cuts[i], length: cuts[i + 1] - cuts[i])!
            return q
        }
    }

    /// The pieces' results put back together: messages in order, up to the first corrupt piece
    /// (which fails the partition only when it is the first).
    static func combine(_ tp: TopicPartition, _ off: Int64, _ results: [Result<SimpleConsumer.FetchResult, Error>], generation: Int) -> Outcome {
        var messages: [ConsumedMessage] = []
        var next = off
        for (i, r) in results.enumerated() {
            switch r {
            case .success(let f):
                if i == 0 && f.messageTooLarge {
                    return .failed(tp, .fatal("Found a message larger than the maximum fetch size of this consumer on topic \(tp.topic) partition \(tp.partition) at fetch offset \(off). Increase the fetch size, or decrease the maximum message size the broker will allow."))
                }
                if messages.isEmpty { messages = f.messages } else { messages += f.messages }
                next = max(next, f.nextOffset)
            case .failure(let e):
                if i == 0 { return .failed(tp, .fatal((e as? CorruptMessageError)?.description ?? "\(e)")) }
                return .data(FetchedChunk(generation: generation, topicPartition: tp, messages: messages, resetTo: nil), next: next)
            }
        }
        return .data(FetchedChunk(generation: generation, topicPartition: tp, messages: messages, resetTo: nil), next: next)
    }

    /// Decodes the partitions of one response; big message sets are cut in pieces and every
    /// piece decoded in parallel (CRC checks and copies are most of a consumer's CPU).
    static func decodeAll(_ work: [(TopicPartition, Int64, FetchResponse.PartitionData)], generation: Int) async -> [Outcome] {
        var jobs: [(w: Int, piece: Int, data: FetchResponse.PartitionData)] = []
        var pieceCount: [Int] = []
        for (i, w) in work.enumerated() {
            let ps = pieces(w.2)
            pieceCount.append(ps.count)
            for (k, p) in ps.enumerated() { jobs.append((i, k, p)) }
        }
        let heavy = jobs.filter { $0.data.error == .none && $0.data.messageSet.readableBytes > 0 }.count
        if heavy < 2 {
            return work.map { outcome($0.0, $0.1, $0.2, generation: generation) }
        }
        var results = pieceCount.map { [Result<SimpleConsumer.FetchResult, Error>?](repeating: nil, count: $0) }
        await withTaskGroup(of: (Int, Int, Result<SimpleConsumer.FetchResult, Error>).self) { g in
            for j in jobs {
                let (tp, off) = (work[j.w].0, work[j.w].1)
                g.addTask { (j.w, j.piece, Result { try SimpleConsumer.decode(tp, offset: off, j.data) }) }
            }
            for await (w, k, r) in g { results[w][k] = r }
        }
        return work.enumerated().map { i, w in
            w.2.error == .none ? combine(w.0, w.1, results[i].map { $0! }, generation: generation) : outcome(w.0, w.1, w.2, generation: generation)
        }
    }

    private func run(broker: Int32, endpoint: BrokerEndpoint, generation: Int) async {
        var conn: BrokerConnection?
        defer { if let c = conn { Task { await c.close() } } }
        let maxWait = config.fetchWaitMaxMs
        let timeout = TimeAmount.milliseconds(Int64(max(config.socketTimeoutMs, Int(maxWait) + 1000)))
        while let parts = work(broker: broker, generation: generation) {
            do {
                if conn == nil || conn?.isActive == false {
                    conn = try await BrokerConnection.connect(host: endpoint.host, port: Int(endpoint.port), clientId: config.clientId,
                                                              requestTimeout: timeout)
                }
                let c = conn!
                // Positions to be reset first (auto.offset.reset), each announced to the iterator.
                var positions: [TopicPartition: Int64] = [:]
                for (tp, off) in parts {
                    if let off { positions[tp] = off; continue }
                    let time = config.autoOffsetReset == .smallest ? OffsetsRequest.earliestTime : OffsetsRequest.latestTime
                    let resp = try await c.offsets(OffsetsRequest(replicaId: -1, topics: [(tp.topic, [.init(partition: tp.partition, time: time, maxNumOffsets: 1)])]))
                    guard let p = resp.topics.first?.partitions.first, p.error == .none else {
                        fail([tp], .leaderUnavailable, generation: generation)
                        continue
                    }
                    let reset = p.offsets.first ?? 0
                    let ok = state.withLock { s -> Bool in
                        guard s.generation == generation, s.partitions[tp] != nil else { return false }
                        s.partitions[tp]!.offset = reset
                        return true
                    }
                    guard ok else { return }
                    logger.info("[\(config.clientId)] \(tp) starts at offset \(reset) (auto.offset.reset=\(config.autoOffsetReset.rawValue))")
                    await queue.put([FetchedChunk(generation: generation, topicPartition: tp, messages: [], resetTo: reset)])
                    positions[tp] = reset
                }
                guard !positions.isEmpty else { continue }
                var byTopic: [String: [FetchRequest.PartitionFetch]] = [:]
                for (tp, off) in positions.sorted(by: { $0.key < $1.key }) {
                    byTopic[tp.topic, default: []].append(.init(partition: tp.partition, fetchOffset: off, maxBytes: config.fetchMessageMaxBytes))
                }
                let req = FetchRequest(replicaId: -1, maxWaitMs: maxWait, minBytes: config.fetchMinBytes,
                                       topics: byTopic.sorted { $0.key < $1.key }.map { .init(topic: $0.key, partitions: $0.value) })
                let resp = try await c.fetch(req)
                var work: [(TopicPartition, Int64, FetchResponse.PartitionData)] = []
                for (topic, ps) in resp.topics {
                    for p in ps {
                        let tp = TopicPartition(topic, p.partition)
                        if let off = positions[tp] { work.append((tp, off, p)) }
                    }
                }
                // Partitions are decoded (CRC checks, copies) in parallel: most of a consumer's CPU.
                let outcomes = await Self.decodeAll(work, generation: generation)
                var chunks: [FetchedChunk] = []
                var advanced: [TopicPartition: Int64] = [:]
                var failures: [(TopicPartition, FetchFailure)] = []
                for o in outcomes {
                    switch o {
                    case .data(let chunk, let next):
                        advanced[chunk.topicPartition] = next
                        if !chunk.messages.isEmpty { chunks.append(chunk) }
                    case .failed(let tp, let f):
                        failures.append((tp, f))
                    }
                }
                let current = state.withLock { s -> Bool in
                    guard s.generation == generation else { return false }
                    for (tp, next) in advanced where next > positions[tp]! && s.partitions[tp]?.offset == positions[tp] { s.partitions[tp]!.offset = next }
                    return true
                }
                guard current else { return }
                for (tp, f) in failures { fail([tp], f, generation: generation) }
                if !chunks.isEmpty { await queue.put(chunks) }
            } catch {
                if Task.isCancelled { return }
                // Connection lost or a response that cannot be read: every partition of this
                // broker goes back to the leader lookup.
                logger.warning("[\(config.clientId)] fetch from broker \(broker) (\(endpoint.host):\(endpoint.port)) failed: \(error)")
                if let c = conn { await c.close() }
                conn = nil
                fail(parts.map(\.0), .leaderUnavailable, generation: generation)
            }
        }
    }
}

extension Result where Failure == Error {
    /// The outcome of an async throwing body.
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
