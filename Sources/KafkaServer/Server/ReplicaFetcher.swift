import Foundation
import KafkaClient
import KafkaLog
import KafkaProtocol
import Logging
import NIOCore
import Synchronization

/// Runs blocking disk work somewhere other than the cooperative pool and awaits its result.
protocol BlockingExecutor: Sendable {
    func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T
}

/// Runs the work on the calling thread (replica managers made without a broker, in tests).
struct InlineExecutor: BlockingExecutor {
    func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T { work() }
}

/// Follower replication (Kafka 0.8.2 `ReplicaFetcherThread`): one fetcher per leader broker
/// fetches, as replica `brokerId`, every partition this broker follows from that leader and
/// appends the leader's bytes with the leader's offsets.
final class ReplicaFetcher: @unchecked Sendable {
    struct Settings: Sendable {
        var maxBytes: Int32 = 1 << 20
        var maxWaitMs: Int32 = 500
        var minBytes: Int32 = 1
        /// `replica.socket.timeout.ms`: a fetch (or offsets request) with no answer in this time closes
        /// the connection to the leader; the next round reconnects.
        var socketTimeoutMs = 30000

        /// A leader answers a fetch by `maxWaitMs`; one silent for this much longer is taken as
        /// a dead link. Beyond 0.8.2 (which waits the whole socket timeout): after a partition
        /// heals, the old connection sits in TCP retransmission backoff for seconds, while a new
        /// connection gets through at once, so the follower is back in the ISR in about a second.
        static let fetchSlackMs = 1000

        /// The deadline of one fetch: `replica.fetch.wait.max.ms` plus the slack, capped by
        /// `replica.socket.timeout.ms`.
        var fetchTimeoutMs: Int { min(socketTimeoutMs, Int(maxWaitMs) + Self.fetchSlackMs) }
        /// Connecting (and the offsets requests of out-of-range handling) gets the slack alone.
        var connectTimeoutMs: Int { min(socketTimeoutMs, Self.fetchSlackMs) }
    }

    /// How long a partition the leader answered with an error (e.g. UnknownTopicOrPartition
    /// before it applied its LeaderAndIsr) waits before it is fetched again.
    static let partitionErrorBackoffMs = 200

    let brokerId: Int32
    let leader: BrokerEndpoint
    let settings: Settings
    let logger: Logger
    let partitionLookup: @Sendable (TopicPartition) -> Partition?
    let onAppend: @Sendable (TopicPartition) -> Void
    /// Runs disk work (appends, truncation) off the cooperative pool: the broker's I/O pool.
    let blocking: any BlockingExecutor
    /// Next offset to fetch, per partition.
    private let partitions = Mutex<[TopicPartition: Int64]>([:])
    private var task: Task<Void, Never>?

    init(brokerId: Int32, leader: BrokerEndpoint, settings: Settings, logger: Logger,
         partitionLookup: @escaping @Sendable (TopicPartition) -> Partition?, onAppend: @escaping @Sendable (TopicPartition) -> Void,
         blocking: any BlockingExecutor) {
        self.brokerId = brokerId
        self.leader = leader
        self.settings = settings
        self.logger = logger
        self.partitionLookup = partitionLookup
        self.onAppend = onAppend
        self.blocking = blocking
    }

    var isEmpty: Bool { partitions.withLock { partitions in partitions.isEmpty } }

    func add(_ tp: TopicPartition, offset: Int64) {
        partitions.withLock { partitions in partitions[tp] = offset }
        if task == nil { task = Task { await self.run() } }
    }

    func remove(_ tp: TopicPartition) { partitions.withLock { partitions in _ = partitions.removeValue(forKey: tp) } }

    func contains(_ tp: TopicPartition) -> Bool { partitions.withLock { partitions in partitions[tp] != nil } }

    func shutdown() {
        task?.cancel()
        task = nil
    }

    private func run() async {
        var conn: BrokerConnection?
        let clientId = "ReplicaFetcherThread-0-\(leader.id)"
        let clock = ContinuousClock()
        // Partitions the leader answered with an error sit out a short while: a leader answers
        // an error at once (no long poll), so fetching them again at once would spin.
        var backoffUntil: [TopicPartition: ContinuousClock.Instant] = [:]
        while !Task.isCancelled {
            let all = partitions.withLock { partitions in partitions }
            let now = clock.now
            backoffUntil = backoffUntil.filter { all[$0.key] != nil && $0.value > now }
            let wanted = all.filter { backoffUntil[$0.key] == nil }
            if wanted.isEmpty {
                let wake = backoffUntil.values.min().map { min($0, now + .milliseconds(100)) } ?? now + .milliseconds(100)
                try? await Task.sleep(until: wake, clock: clock)
                continue
            }
            do {
                if conn == nil || conn?.isActive == false {
                    await conn?.close()
                    conn = try await BrokerConnection.connect(host: leader.host, port: Int(leader.port), clientId: clientId,
                                                              connectTimeout: .milliseconds(Int64(max(settings.connectTimeoutMs, 1))),
                                                              requestTimeout: .milliseconds(Int64(max(settings.fetchTimeoutMs, 1))))
                }
                var byTopic: [String: [FetchRequest.PartitionFetch]] = [:]
                for (tp, off) in wanted { byTopic[tp.topic, default: []].append(.init(partition: tp.partition, fetchOffset: off, maxBytes: settings.maxBytes)) }
                let req = FetchRequest(replicaId: brokerId, maxWaitMs: settings.maxWaitMs, minBytes: settings.minBytes,
                                       topics: byTopic.map { .init(topic: $0.key, partitions: $0.value) })
                let resp = try await conn!.fetch(req)
                var appends: [FollowerAppend] = []
                for t in resp.topics {
                    for pd in t.partitions {
                        let tp = TopicPartition(t.topic, pd.partition)
                        // Ignore answers for partitions removed or moved while the fetch was in flight.
                        guard let asked = wanted[tp], partitions.withLock({ $0[tp] }) == asked,
                              let p = partitionLookup(tp), !p.isLeader else { continue }
                        switch pd.error {
                        case .none:
                            appends.append(FollowerAppend(partition: p, asked: asked, data: pd))
                        case .offsetOutOfRange:
                            await handleOutOfRange(tp, p, conn: conn!, asked: asked)
                        default:
                            backoffUntil[tp] = clock.now + .milliseconds(Self.partitionErrorBackoffMs)
                            logger.warning("[ReplicaFetcherThread-0-\(leader.id)], error for partition \(tp) to broker \(leader.id): \(pd.error)")
                        }
                    }
                }
                if !appends.isEmpty { await appendAll(appends) }
            } catch {
                if !Task.isCancelled {
                    logger.warning("[ReplicaFetcherThread-0-\(leader.id)], error fetching from broker \(leader.id) at \(leader.host):\(leader.port): \(error)")
                }
                await conn?.close()
                conn = nil
                try? await Task.sleep(nanoseconds: 500_000_000)
            }
        }
        await conn?.close()
    }

    /// One partition's fetched data, appended by `appendAll`.
    struct FollowerAppend: @unchecked Sendable {
        var partition: Partition
        var asked: Int64
        var data: FetchResponse.PartitionData
        var failure: String?
    }

    /// Appends a fetch response's partitions in one trip to the I/O pool, then moves each fetch
    /// offset to the new log end.
    private func appendAll(_ appends: [FollowerAppend]) async {
        let leaderId = leader.id
        let done: [FollowerAppend] = await blocking.run {
            var out = appends
            for i in out.indices {
                let p = out[i].partition
                let mset = out[i].data.messageSet
                if mset.readableBytes > 0 {
                    do {
                        let asked = out[i].asked
                        switch try mset.withUnsafeReadableBytes({ try p.appendAsFollower(in: $0, fetchOffset: asked) }) {
                        case .appended: break
                        case .notFollower: continue                 // became leader meanwhile
                        case .offsetMoved: continue                 // truncated meanwhile: refetch from the new end
                        }
                    } catch {
                        out[i].failure = "\(error)"
                        continue
                    }
                }
                p.updateFollowerHighWatermark(leaderHighWatermark: out[i].data.highWatermark)
            }
            return out
        }
        var failed = false
        for a in done {
            let tp = a.partition.topicPartition
            if let failure = a.failure {
                logger.error("[ReplicaFetcherThread-0-\(leaderId)], cannot append to \(tp) at offset \(a.asked): \(failure)")
                failed = true
                continue
            }
            let next = a.partition.log.logEndOffset
            partitions.withLock { partitions in if partitions[tp] == a.asked { partitions[tp] = next } }
            onAppend(tp)
        }
        if failed { try? await Task.sleep(nanoseconds: 500_000_000) }
    }

    /// The leader's log does not contain our fetch offset: if it ends below our log end,
    /// truncate to its end (its data wins); otherwise we are behind its start: start over there.
    private func handleOutOfRange(_ tp: TopicPartition, _ p: Partition, conn: BrokerConnection, asked: Int64) async {
        do {
            let latest = try await leaderOffset(tp, time: OffsetsRequest.latestTime, conn: conn)
            if latest < p.log.logEndOffset {
                if !p.log.config.uncleanLeaderElection {
                    // 0.8.2 halts rather than discard messages the old leader may have acknowledged.
                    Halt.now("Exiting because log truncation is not allowed for topic \(tp.topic), current leader \(leader.id)'s latest offset \(latest) is less than replica \(brokerId)'s latest offset \(p.log.logEndOffset)", logger: logger)
                }
                logger.warning("Truncating \(tp) from log end \(p.log.logEndOffset) to the leader's log end \(latest)")
                try await runBlockingThrowing { try p.truncateLog(to: latest) }
            } else {
                let earliest = try await leaderOffset(tp, time: OffsetsRequest.earliestTime, conn: conn)
                logger.warning("Follower of \(tp) at \(p.log.logEndOffset) is below the leader's start \(earliest): restarting the log there")
                try await runBlockingThrowing { try p.restartLog(at: earliest) }
            }
            let next = p.log.logEndOffset
            partitions.withLock { partitions in if partitions[tp] == asked { partitions[tp] = next } }
        } catch {
            logger.error("Cannot recover \(tp) from an out-of-range fetch: \(error)")
            try? await Task.sleep(nanoseconds: 500_000_000)
        }
    }

    private func runBlockingThrowing(_ work: @escaping @Sendable () throws -> Void) async throws {
        let error: (any Error)? = await blocking.run {
            do { try work(); return nil } catch { return error }
        }
        if let error { throw error }
    }

    private func leaderOffset(_ tp: TopicPartition, time: Int64, conn: BrokerConnection) async throws -> Int64 {
        let r = try await conn.offsets(OffsetsRequest(replicaId: brokerId, topics: [(tp.topic, [.init(partition: tp.partition, time: time, maxNumOffsets: 1)])]))
        guard let po = r.topics.first?.partitions.first, po.error == .none, let o = po.offsets.first else {
            throw KafkaClientError("offsets request for \(tp) failed")
        }
        return o
    }
}

/// Keeps one fetcher per leader broker.
final class ReplicaFetcherManager: @unchecked Sendable {
    let brokerId: Int32
    let settings: ReplicaFetcher.Settings
    let logger: Logger
    let partitionLookup: @Sendable (TopicPartition) -> Partition?
    let onAppend: @Sendable (TopicPartition) -> Void
    let blocking: any BlockingExecutor
    private let fetchers = Mutex<[BrokerEndpoint: ReplicaFetcher]>([:])

    init(brokerId: Int32, settings: ReplicaFetcher.Settings, logger: Logger,
         partitionLookup: @escaping @Sendable (TopicPartition) -> Partition?, onAppend: @escaping @Sendable (TopicPartition) -> Void,
         blocking: any BlockingExecutor) {
        self.brokerId = brokerId
        self.settings = settings
        self.logger = logger
        self.partitionLookup = partitionLookup
        self.onAppend = onAppend
        self.blocking = blocking
    }

    func follow(_ tp: TopicPartition, leader: BrokerEndpoint, offset: Int64) {
        fetchers.withLock { fetchers in
            for (ep, f) in fetchers where ep != leader { f.remove(tp) }
            let f = fetchers[leader] ?? ReplicaFetcher(brokerId: brokerId, leader: leader, settings: settings, logger: logger,
                                                       partitionLookup: partitionLookup, onAppend: onAppend, blocking: blocking)
            fetchers[leader] = f
            f.add(tp, offset: offset)
        }
    }

    /// Whether `tp` is being fetched from `leader`.
    func isFollowing(_ tp: TopicPartition, leader: BrokerEndpoint) -> Bool {
        fetchers.withLock { fetchers in fetchers[leader]?.contains(tp) ?? false }
    }

    func stopFollowing(_ tp: TopicPartition) {
        fetchers.withLock { fetchers in
            for f in fetchers.values { f.remove(tp) }
        }
    }

    func shutdown() {
        fetchers.withLock { fetchers in
            for f in fetchers.values { f.shutdown() }
            fetchers.removeAll()
        }
    }
}
