import CoreMetrics
import KafkaCluster
import KafkaProtocol
import Logging
import Synchronization

/// Gauges read from the broker's state when `/metrics` is scraped (0.8.2 computes its gauges
/// when JMX reads them, too): partition and leader counts, under-replicated partitions, the
/// controller's view, purgatory sizes, each hosted partition's log end offset, and consumer lag.
/// Runs on the cooperative pool (the HTTP handler hands the scrape to a Task), never on an
/// event loop.
final class BrokerStateGauges: Sendable {
    let metrics: BrokerMetrics
    let replicaManager: ReplicaManager
    let controller: KafkaController
    let lag: ConsumerLagCollector

    private let partitionCount: CoreMetrics.Gauge
    private let leaderCount: CoreMetrics.Gauge
    private let underReplicated: CoreMetrics.Gauge
    private let activeController: CoreMetrics.Gauge
    private let offlinePartitions: CoreMetrics.Gauge
    private let producePurgatorySize: CoreMetrics.Gauge
    private let producePurgatoryDelayed: CoreMetrics.Gauge
    private let fetchPurgatorySize: CoreMetrics.Gauge
    private let fetchPurgatoryDelayed: CoreMetrics.Gauge
    private let logEndOffsets: GaugeFamily

    init(metrics: BrokerMetrics, replicaManager: ReplicaManager, controller: KafkaController, zk: KafkaZooKeeper, logger: Logger) {
        self.metrics = metrics
        self.replicaManager = replicaManager
        self.controller = controller
        self.lag = ConsumerLagCollector(metrics: metrics, replicaManager: replicaManager, zk: zk, logger: logger)
        partitionCount = metrics.gauge("kafka_server_replicamanager_partitioncount")
        leaderCount = metrics.gauge("kafka_server_replicamanager_leadercount")
        underReplicated = metrics.gauge("kafka_server_replicamanager_underreplicatedpartitions")
        activeController = metrics.gauge("kafka_controller_kafkacontroller_activecontrollercount")
        offlinePartitions = metrics.gauge("kafka_controller_kafkacontroller_offlinepartitionscount")
        producePurgatorySize = metrics.gauge("kafka_server_producerequestpurgatory_purgatorysize")
        producePurgatoryDelayed = metrics.gauge("kafka_server_producerequestpurgatory_numdelayedrequests")
        fetchPurgatorySize = metrics.gauge("kafka_server_fetchrequestpurgatory_purgatorysize")
        fetchPurgatoryDelayed = metrics.gauge("kafka_server_fetchrequestpurgatory_numdelayedrequests")
        logEndOffsets = GaugeFamily(metrics: metrics, label: "kafka_log_log_logendoffset")
    }

    /// Sets every gauge from the current state (and refreshes consumer lag, bounded in time).
    func update() async {
        var leaders = 0
        var under = 0
        var ends: [Series: Int64] = [:]
        let partitions = replicaManager.allPartitions
        for p in partitions {
            let tp = p.topicPartition
            ends[Series(("topic", tp.topic), ("partition", String(tp.partition)))] = p.log.logEndOffset
            guard p.isLeader else { continue }
            leaders += 1
            if p.isr.count < p.replicas.count { under += 1 }
        }
        partitionCount.record(partitions.count)
        leaderCount.record(leaders)
        underReplicated.record(under)
        logEndOffsets.set(ends)

        let purgatory = replicaManager.fetchPurgatory
        let produce = purgatory.parkedCount(of: DelayedProduce.self)
        let fetch = purgatory.parkedCount(of: DelayedFetch.self)
        producePurgatorySize.record(produce.watchers)
        producePurgatoryDelayed.record(produce.operations)
        fetchPurgatorySize.record(fetch.watchers)
        fetchPurgatoryDelayed.record(fetch.operations)

        let ctl = await controller.metricsSnapshot
        activeController.record(ctl.active ? 1 : 0)
        offlinePartitions.record(ctl.offlinePartitions)

        await lag.refresh()
    }
}

/// A gauge family whose label sets come and go (partitions, groups): each `set` records the
/// given series and removes the ones no longer present, so a deleted group or moved partition
/// stops being reported.
final class GaugeFamily: Sendable {
    let metrics: BrokerMetrics
    let label: String
    private let live = Mutex<[Series: CoreMetrics.Gauge]>([:])

    init(metrics: BrokerMetrics, label: String) {
        self.metrics = metrics
        self.label = label
    }

    func set(_ values: [Series: Int64]) {
        let stale: [CoreMetrics.Gauge] = live.withLock { live in
            var stale: [CoreMetrics.Gauge] = []
            for (key, g) in live where values[key] == nil {
                stale.append(g)
                live[key] = nil
            }
            for (key, v) in values {
                let g = live[key] ?? metrics.gauge(label, key.dimensions)
                live[key] = g
                g.record(v)
            }
            return stale
        }
        for g in stale { g.destroy() }
    }
}

/// A label set as a dictionary key: names and values alternating.
struct Series: Hashable, Sendable {
    var flat: [String]
    init(_ pairs: (String, String)...) { flat = pairs.flatMap { [$0.0, $0.1] } }
    var dimensions: [(String, String)] { stride(from: 0, to: flat.count, by: 2).map { (flat[$0], flat[$0 + 1]) } }
}
