import KafkaCluster
import KafkaProtocol
import Logging
import Synchronization

/// Consumer lag (beyond 0.8.2, what Burrow or the offset checker would show): for every group
/// under `/consumers` with offsets committed in ZooKeeper, and every partition this broker
/// leads, `kafka_consumergroup_lag{group,topic,partition}` = the partition's high watermark (the
/// log end a consumer sees, the offset checker's `logSize`) minus the committed offset, and
/// `kafka_consumergroup_current_offset` = the committed offset. Each broker reports the
/// partitions it leads, so a cluster's brokers together cover every partition once.
///
/// Computed when `/metrics` is scraped, on the cooperative pool: ZooKeeper reads are
/// asynchronous (at most `concurrency` at a time). Concurrent scrapes share one refresh; a scrape
/// waits for it at most `timeout` and otherwise reports the previous values (ZooKeeper down).
final class ConsumerLagCollector: Sendable {
    let replicaManager: ReplicaManager
    let zk: KafkaZooKeeper
    let logger: Logger
    let lag: GaugeFamily
    let committed: GaugeFamily
    let concurrency = 16
    let timeout: Duration = .seconds(5)
    private let inFlight = Mutex<Task<Void, Never>?>(nil)

    init(metrics: BrokerMetrics, replicaManager: ReplicaManager, zk: KafkaZooKeeper, logger: Logger) {
        self.replicaManager = replicaManager
        self.zk = zk
        self.logger = logger
        lag = GaugeFamily(metrics: metrics, label: "kafka_consumergroup_lag")
        committed = GaugeFamily(metrics: metrics, label: "kafka_consumergroup_current_offset")
    }

    /// Refreshes the lag gauges (joining a refresh already running), waiting at most `timeout`.
    func refresh() async {
        let task: Task<Void, Never> = inFlight.withLock { current in
            if let t = current { return t }
            let t = Task { [self] in
                await self.collect()
                self.inFlight.withLock { $0 = nil }
            }
            current = t
            return t
        }
        let timeout = self.timeout
        await withTaskGroup(of: Void.self) { g in
            g.addTask { await task.value }
            g.addTask { try? await Task.sleep(for: timeout) }
            await g.next()
            g.cancelAll()
        }
    }

    private struct Read: Sendable {
        var group: String
        var tp: TopicPartition
        var highWatermark: Int64
    }

    private func collect() async {
        // Partitions this broker leads, with the high watermark at this moment.
        var led: [String: [(partition: Int32, hw: Int64)]] = [:]
        for p in replicaManager.allPartitions where p.isLeader {
            led[p.topicPartition.topic, default: []].append((p.topicPartition.partition, p.highWatermark))
        }
        let leading = led
        guard !leading.isEmpty else {
            lag.set([:])
            committed.set([:])
            return
        }
        do {
            // Which (group, partition) pairs to read: groups with offsets for a topic we lead.
            let groups = try await zk.consumerGroups()
            var reads: [Read] = []
            try await forEachBounded(groups) { group in
                let topics = try await self.zk.consumerOffsetTopics(group: group)
                return topics.flatMap { t in (leading[t] ?? []).map { Read(group: group, tp: TopicPartition(t, $0.partition), highWatermark: $0.hw) } }
            } collect: { reads.append(contentsOf: $0) }

            var lags: [Series: Int64] = [:]
            var offsets: [Series: Int64] = [:]
            try await forEachBounded(reads) { r -> (Read, Int64)? in
                // A missing node, "-1" or a malformed one: nothing committed to compare with.
                guard let off = try? await self.zk.consumerOffset(group: r.group, r.tp), off >= 0 else { return nil }
                return (r, off)
            } collect: { result in
                guard let (r, off) = result else { return }
                let key = Series(("group", r.group), ("topic", r.tp.topic), ("partition", String(r.tp.partition)))
                lags[key] = r.highWatermark - off
                offsets[key] = off
            }
            lag.set(lags)
            committed.set(offsets)
        } catch {
            logger.warning("Consumer lag metrics not refreshed: \(error)")
        }
    }

    /// Runs `body` over `items` with at most `concurrency` at a time; results go to `collect`
    /// (on the calling task, one at a time).
    private func forEachBounded<Item: Sendable, R: Sendable>(_ items: [Item], _ body: @escaping @Sendable (Item) async throws -> R,
                                                            collect: (R) -> Void) async throws {
        try await withThrowingTaskGroup(of: R.self) { g in
            var next = 0
            while next < items.count && next < concurrency {
                let item = items[next]
                g.addTask { try await body(item) }
                next += 1
            }
            while let r = try await g.next() {
                collect(r)
                if next < items.count {
                    let item = items[next]
                    g.addTask { try await body(item) }
                    next += 1
                }
            }
        }
    }
}
