import CoreMetrics
import KafkaProtocol
import Prometheus
import Synchronization

/// The broker's metrics (`metrics.port`): swift-metrics instruments backed by one Prometheus
/// registry per broker (no global `MetricsSystem.bootstrap`, so several brokers can live in one
/// process). Names follow Kafka 0.8.2's JMX beans, `kafka.server:type=BrokerTopicMetrics,
/// name=MessagesInPerSec,topic=T` becoming `kafka_server_brokertopicmetrics_messagesin_total{topic="T"}`
/// (a meter's rate is a Prometheus counter's `rate()`; a timer's percentiles are a histogram's
/// `histogram_quantile()`). README's "Metrics" section lists them all.
///
/// Hot paths touch only pre-resolved handles: a topic's counters are created once and cached
/// (`topic(_:)` is a dictionary lookup under a short lock), request meters once per API key;
/// counting happens per request and per partition, never per message.
public final class BrokerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    /// Kafka 0.8.2's AllTopics* meters: their own names, since Prometheus does not allow a
    /// family with and without the `topic` label.
    let allTopics: TopicMeters
    private let topics = Mutex<[String: TopicMeters]>([:])
    private let requests = Mutex<[Int16: RequestMeters]>([:])

    /// 0.8.2 also meters fetches by who sends them (`FetchConsumer`, `FetchFollower`), on top of
    /// `Fetch`: a follower's long poll would otherwise hide consumer fetch latency.
    let fetchConsumer: RequestMeters
    let fetchFollower: RequestMeters
    let isrShrinks: CoreMetrics.Counter
    let isrExpands: CoreMetrics.Counter
    let logFlush: CoreMetrics.Timer

    static let requestTimeLabel = "kafka_network_requestmetrics_totaltime_seconds"
    static let logFlushLabel = "kafka_log_logflushstats_logflush_seconds"

    public init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[Self.requestTimeLabel] = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
        ]
        factory.durationHistogramBuckets[Self.logFlushLabel] = [
            .microseconds(100), .microseconds(500), .milliseconds(1), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .seconds(5), .seconds(10),
        ]
        self.registry = registry
        self.factory = factory
        allTopics = TopicMeters(all: nil, factory: factory, prefix: "kafka_server_brokertopicmetrics_alltopics", dimensions: [])
        fetchConsumer = RequestMeters(name: "FetchConsumer", factory: factory)
        fetchFollower = RequestMeters(name: "FetchFollower", factory: factory)
        isrShrinks = Counter(label: "kafka_server_replicamanager_isrshrinks_total", dimensions: [], factory: factory)
        isrExpands = Counter(label: "kafka_server_replicamanager_isrexpands_total", dimensions: [], factory: factory)
        logFlush = Timer(label: Self.logFlushLabel, dimensions: [], factory: factory)
    }

    // MARK: Per topic

    /// The counters of `topic` (created on first use, then cached). Call it once per topic of a
    /// request and count through the result.
    public func topic(_ name: String) -> TopicMeters {
        if let m = topics.withLock({ $0[name] }) { return m }
        // Created outside the lock (the registry takes its own); a racing creator's copy is
        // dropped in favour of the first, and both share the registry's series anyway.
        let created = TopicMeters(all: allTopics, factory: factory, prefix: "kafka_server_brokertopicmetrics_",
                                  dimensions: [("topic", name)])
        return topics.withLock { t in
            if let m = t[name] { return m }
            t[name] = created
            return created
        }
    }

    // MARK: Per request type

    /// Requests per API (0.8.2 `RequestMetrics`, `request` label = its `RequestKeys` name).
    func request(_ apiKey: Int16) -> RequestMeters {
        if let m = requests.withLock({ $0[apiKey] }) { return m }
        let name = Self.requestName(apiKey)
        let created = RequestMeters(name: name, factory: factory)
        return requests.withLock { r in
            if let m = r[apiKey] { return m }
            // Unknown keys share one "Unknown" series rather than one per key a client makes up.
            if name == "Unknown", let m = r.values.first(where: { $0.name == "Unknown" }) {
                r[apiKey] = m
                return m
            }
            r[apiKey] = created
            return created
        }
    }

    /// 0.8.2's request names (`RequestKeys`): the API's case name, capitalised.
    static func requestName(_ apiKey: Int16) -> String {
        guard let key = APIKey(rawValue: apiKey) else { return "Unknown" }
        let s = "\(key)"
        return s.prefix(1).uppercased() + s.dropFirst()
    }

    // MARK: Gauges set at scrape time

    func gauge(_ label: String, _ dimensions: [(String, String)] = []) -> CoreMetrics.Gauge {
        Gauge(label: label, dimensions: dimensions, factory: factory)
    }

    /// The Prometheus text exposition of every metric (format 0.0.4).
    public func render() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16 * 1024)
        registry.emit(into: &out)
        return out
    }
}

/// One topic's counters (or, with `all == nil`, the all-topics ones). Each call also counts in
/// the all-topics counters.
public final class TopicMeters: Sendable {
    let all: TopicMeters?
    let messagesIn: CoreMetrics.Counter
    let bytesIn: CoreMetrics.Counter
    let bytesOut: CoreMetrics.Counter
    let failedProduce: CoreMetrics.Counter
    let failedFetch: CoreMetrics.Counter

    init(all: TopicMeters?, factory: PrometheusMetricsFactory, prefix: String, dimensions: [(String, String)]) {
        self.all = all
        messagesIn = Counter(label: prefix + "messagesin_total", dimensions: dimensions, factory: factory)
        bytesIn = Counter(label: prefix + "bytesin_total", dimensions: dimensions, factory: factory)
        bytesOut = Counter(label: prefix + "bytesout_total", dimensions: dimensions, factory: factory)
        failedProduce = Counter(label: prefix + "failedproducerequests_total", dimensions: dimensions, factory: factory)
        failedFetch = Counter(label: prefix + "failedfetchrequests_total", dimensions: dimensions, factory: factory)
    }

    /// A leader append of `messages` messages in `bytes` bytes (one produced partition).
    public func appended(messages: Int, bytes: Int) {
        messagesIn.increment(by: messages)
        bytesIn.increment(by: bytes)
        all?.appended(messages: messages, bytes: bytes)
    }

    /// Message-set bytes of one partition put in a fetch response (consumers and followers, as 0.8.2).
    public func fetched(bytes: Int) {
        bytesOut.increment(by: bytes)
        all?.fetched(bytes: bytes)
    }

    public func produceFailed() {
        failedProduce.increment()
        all?.produceFailed()
    }

    public func fetchFailed() {
        failedFetch.increment()
        all?.fetchFailed()
    }
}

/// One API's request count and total time (from the frame's dispatch until its response was
/// written to the socket, or until it was dropped).
final class RequestMeters: Sendable {
    let name: String
    let requests: CoreMetrics.Counter
    let totalTime: CoreMetrics.Timer

    init(name: String, factory: PrometheusMetricsFactory) {
        self.name = name
        requests = Counter(label: "kafka_network_requestmetrics_requests_total", dimensions: [("request", name)], factory: factory)
        totalTime = Timer(label: BrokerMetrics.requestTimeLabel, dimensions: [("request", name)], factory: factory)
    }
}

/// A request's handle on one topic's counters, resolved on first use: a topic that only ever
/// fails as unknown is counted in the all-topics failure counters alone, so clients naming
/// made-up topics cannot create series. Without metrics (`metrics == nil`) every call is a no-op.
struct TopicMetersRef {
    let metrics: BrokerMetrics?
    let topic: String
    private var resolved: TopicMeters?

    init(_ metrics: BrokerMetrics?, _ topic: String) {
        self.metrics = metrics
        self.topic = topic
    }

    private mutating func meters() -> TopicMeters? {
        if resolved == nil, let metrics { resolved = metrics.topic(topic) }
        return resolved
    }

    private static func isUnknownTopic(_ e: ErrorCode) -> Bool { e == .unknownTopicOrPartition || e == .invalidTopic }

    /// One produced partition: appended, or refused with `error`.
    mutating func produced(error: ErrorCode, messages: Int = 0, bytes: Int = 0) {
        guard let metrics else { return }
        if error == .none {
            meters()?.appended(messages: messages, bytes: bytes)
        } else if Self.isUnknownTopic(error) {
            metrics.allTopics.produceFailed()
        } else {
            meters()?.produceFailed()
        }
    }

    /// One partition of a fetch response: `bytes` of message set, or an error.
    mutating func fetched(error: ErrorCode, bytes: Int) {
        guard let metrics else { return }
        if error == .none {
            if bytes > 0 { meters()?.fetched(bytes: bytes) }
        } else if Self.isUnknownTopic(error) {
            metrics.allTopics.fetchFailed()
        } else {
            meters()?.fetchFailed()
        }
    }
}
