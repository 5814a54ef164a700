import Foundation
import KafkaLog
import KafkaProtocol

/// A start-up configuration error; the message names the key or file.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Broker settings with Kafka 0.8.2 names and defaults (reference: kafka-0.8-cluster.md §8.1).
public struct BrokerConfig: Sendable {
    public var brokerId: Int32 = -1
    public var port = 9092
    public var hostName: String? = nil
    public var advertisedHostName: String? = nil
    public var advertisedPort: Int? = nil
    public var logDirs: [String] = ["/tmp/kafka-logs"]
    public var numPartitions = 1
    public var defaultReplicationFactor = 1
    public var zookeeperConnect = ""
    public var zookeeperSessionTimeoutMs = 6000
    public var zookeeperConnectionTimeoutMs = 6000
    public var autoCreateTopics = true
    public var messageMaxBytes = 1000012
    public var socketRequestMaxBytes = 104857600
    public var socketSendBufferBytes = 102400
    public var socketReceiveBufferBytes = 102400
    public var numNetworkThreads = 3
    public var numIoThreads = 8
    public var connectionsMaxIdleMs: Int64 = 600000
    public var queuedMaxRequests = 500
    public var maxConnectionsPerIp = Int.max
    public var maxConnectionsPerIpOverrides: [String: Int] = [:]
    public var replicaSocketTimeoutMs = 30000
    public var controllerSocketTimeoutMs = 30000
    public var deleteTopicEnable = false
    public var replicaHighWatermarkCheckpointIntervalMs: Int64 = 5000
    public var logFlushOffsetCheckpointIntervalMs: Int64 = 60000
    public var logFlushSchedulerIntervalMs: Int64 = .max
    public var logRetentionCheckIntervalMs: Int64 = 300000
    public var logCleanerEnable = false
    public var logCleanerThreads = 1
    public var logCleanerBackoffMs: Int64 = 15000
    public var uncleanLeaderElectionEnable = true
    public var controlledShutdownEnable = true
    public var autoLeaderRebalanceEnable = true
    public var leaderImbalancePerBrokerPercentage = 10
    public var leaderImbalanceCheckIntervalSeconds: Int64 = 300
    public var controlledShutdownMaxRetries = 3
    public var controlledShutdownRetryBackoffMs: Int64 = 5000
    public var replicaLagTimeMaxMs: Int64 = 10000
    public var replicaLagMaxMessages: Int64 = 4000
    public var replicaFetchMaxBytes = 1048576
    public var replicaFetchWaitMaxMs = 500
    public var replicaFetchMinBytes = 1
    /// `metrics.port` (not in 0.8.2): port of the Prometheus `/metrics` endpoint; nil (the
    /// default) serves no metrics. 0 picks a free port.
    public var metricsPort: Int? = nil
    /// `metrics.host`: address the metrics endpoint binds; nil means `host.name`, else all interfaces.
    public var metricsHost: String? = nil
    public var log = LogConfig()
    /// Keys the file set that this broker does not know (warned about at start).
    public var unknownKeys: [String] = []
    /// Kafka 0.8.2 keys the file set that this broker accepts but does not act on (warned about at start).
    public var ignoredKeys: [String] = []

    public init() {}

    /// The host and port written to ZooKeeper and returned in metadata.
    public var advertisedHost: String {
        if let h = advertisedHostName, !h.isEmpty { return h }
        if let h = hostName, !h.isEmpty { return h }
        return ProcessInfo.processInfo.hostName
    }
    public var advertisedPortValue: Int { advertisedPort ?? port }

    public static func load(path: String) throws -> BrokerConfig {
        let pairs: [(key: String, value: String)]
        do { pairs = try PropertiesFile.load(path: path) } catch let e as PropertiesFileError { throw ConfigError(e.description) }
        do { return try parse(pairs, relativeTo: (path as NSString).deletingLastPathComponent) } catch let e as ConfigError {
            throw ConfigError("\(path): \(e.description)")
        }
    }

    public static func parse(_ pairs: [(key: String, value: String)], relativeTo baseDir: String? = nil) throws -> BrokerConfig {
        let props = PropertiesFile.dictionary(pairs)
        var c = BrokerConfig()
        var known = Set<String>()

        func str(_ key: String) -> String? { known.insert(key); return props[key] }
        func int(_ key: String, min: Int = Int.min, max: Int = Int.max) throws -> Int? {
            known.insert(key)
            guard let raw = props[key] else { return nil }
            guard let v = Int(raw) else { throw ConfigError("Invalid value \"\(raw)\" for configuration \(key): expected an integer") }
            guard v >= min && v <= max else { throw ConfigError("Invalid value \(v) for configuration \(key): must be in [\(min), \(max)]") }
            return v
        }
        func long(_ key: String, min: Int64 = Int64.min) throws -> Int64? {
            known.insert(key)
            guard let raw = props[key] else { return nil }
            guard let v = Int64(raw) else { throw ConfigError("Invalid value \"\(raw)\" for configuration \(key): expected an integer") }
            guard v >= min else { throw ConfigError("Invalid value \(v) for configuration \(key): must be at least \(min)") }
            return v
        }
        func bool(_ key: String) throws -> Bool? {
            known.insert(key)
            guard let raw = props[key] else { return nil }
            switch raw.lowercased() {
            case "true": return true
            case "false": return false
            default: throw ConfigError("Invalid value \"\(raw)\" for configuration \(key): expected true or false")
            }
        }
        func double(_ key: String) throws -> Double? {
            known.insert(key)
            guard let raw = props[key] else { return nil }
            guard let v = Double(raw) else { throw ConfigError("Invalid value \"\(raw)\" for configuration \(key): expected a number") }
            return v
        }

        guard let id = try int("broker.id", min: 0) else { throw ConfigError("Missing required configuration broker.id") }
        c.brokerId = Int32(id)
        if let v = try int("port", min: 0, max: 65535) { c.port = v }
        c.hostName = str("host.name").flatMap { $0.isEmpty ? nil : $0 }
        c.advertisedHostName = str("advertised.host.name").flatMap { $0.isEmpty ? nil : $0 }
        c.advertisedPort = try int("advertised.port", min: 0, max: 65535)
        let dirs = str("log.dirs") ?? str("log.dir")
        known.insert("log.dir")
        if let dirs {
            let list = dirs.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !list.isEmpty else { throw ConfigError("Invalid value \"\(dirs)\" for configuration log.dirs: empty") }
            c.logDirs = list.map { d in
                if d.hasPrefix("/") || baseDir == nil { return d }
                return d   // relative to the working directory, as Kafka does
            }
        }
        if let v = try int("num.partitions", min: 1) { c.numPartitions = v }
        if let v = try int("default.replication.factor", min: 1) { c.defaultReplicationFactor = v }
        guard let zkc = str("zookeeper.connect"), !zkc.isEmpty else { throw ConfigError("Missing required configuration zookeeper.connect") }
        c.zookeeperConnect = zkc
        if let v = try int("zookeeper.session.timeout.ms", min: 1) { c.zookeeperSessionTimeoutMs = v }
        c.zookeeperConnectionTimeoutMs = try int("zookeeper.connection.timeout.ms", min: 1) ?? c.zookeeperSessionTimeoutMs
        _ = try int("zookeeper.sync.time.ms", min: 0)
        if let v = try bool("auto.create.topics.enable") { c.autoCreateTopics = v }
        if let v = try int("message.max.bytes", min: 0) { c.messageMaxBytes = v }
        if let v = try int("socket.request.max.bytes", min: 1) { c.socketRequestMaxBytes = v }
        if let v = try int("socket.send.buffer.bytes", min: 1) { c.socketSendBufferBytes = v }
        if let v = try int("socket.receive.buffer.bytes", min: 1) { c.socketReceiveBufferBytes = v }
        if let v = try int("num.network.threads", min: 1) { c.numNetworkThreads = v }
        if let v = try int("num.io.threads", min: 1) { c.numIoThreads = v }
        if let v = try long("connections.max.idle.ms") { c.connectionsMaxIdleMs = v }
        if let v = try int("queued.max.requests", min: 1) { c.queuedMaxRequests = v }
        if let v = try int("max.connections.per.ip", min: 1) { c.maxConnectionsPerIp = v }
        if let v = str("max.connections.per.ip.overrides"), !v.trimmingCharacters(in: .whitespaces).isEmpty {
            for item in v.split(separator: ",") {
                let kv = item.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard kv.count == 2, !kv[0].isEmpty, let n = Int(kv[1]) else {
                    throw ConfigError("Invalid value \"\(v)\" for configuration max.connections.per.ip.overrides: expected host:count,host:count")
                }
                c.maxConnectionsPerIpOverrides[kv[0]] = n
            }
        }
        if let v = try int("controller.socket.timeout.ms", min: 1) { c.controllerSocketTimeoutMs = v }
        if let v = try int("replica.socket.timeout.ms", min: 1) { c.replicaSocketTimeoutMs = v }
        if let v = try bool("delete.topic.enable") { c.deleteTopicEnable = v }
        if let v = try long("replica.high.watermark.checkpoint.interval.ms", min: 1) { c.replicaHighWatermarkCheckpointIntervalMs = v }
        if let v = try long("log.flush.offset.checkpoint.interval.ms", min: 1) { c.logFlushOffsetCheckpointIntervalMs = v }
        if let v = try long("log.retention.check.interval.ms", min: 1) { c.logRetentionCheckIntervalMs = v }
        if let v = try bool("log.cleaner.enable") { c.logCleanerEnable = v }
        if let v = try int("log.cleaner.threads", min: 0) { c.logCleanerThreads = v }
        if let v = try long("log.cleaner.backoff.ms", min: 1) { c.logCleanerBackoffMs = v }
        if let v = try bool("unclean.leader.election.enable") { c.uncleanLeaderElectionEnable = v }
        if let v = try bool("controlled.shutdown.enable") { c.controlledShutdownEnable = v }
        if let v = try bool("auto.leader.rebalance.enable") { c.autoLeaderRebalanceEnable = v }
        if let v = try int("leader.imbalance.per.broker.percentage", min: 0, max: 100) { c.leaderImbalancePerBrokerPercentage = v }
        if let v = try long("leader.imbalance.check.interval.seconds", min: 1) { c.leaderImbalanceCheckIntervalSeconds = v }
        if let v = try int("controlled.shutdown.max.retries", min: 0) { c.controlledShutdownMaxRetries = v }
        if let v = try long("controlled.shutdown.retry.backoff.ms", min: 0) { c.controlledShutdownRetryBackoffMs = v }
        if let v = try long("replica.lag.time.max.ms", min: 1) { c.replicaLagTimeMaxMs = v }
        if let v = try long("replica.lag.max.messages", min: 0) { c.replicaLagMaxMessages = v }
        if let v = try int("replica.fetch.max.bytes", min: 1) { c.replicaFetchMaxBytes = v }
        if let v = try int("replica.fetch.wait.max.ms", min: 0) { c.replicaFetchWaitMaxMs = v }
        if let v = try int("replica.fetch.min.bytes", min: 0) { c.replicaFetchMinBytes = v }
        if let raw = str("metrics.port"), !raw.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let v = Int(raw.trimmingCharacters(in: .whitespaces)), v >= 0, v <= 65535 else {
                throw ConfigError("Invalid value \"\(raw)\" for configuration metrics.port: expected a port number in [0, 65535] (or leave it unset to serve no metrics)")
            }
            c.metricsPort = v
        }
        c.metricsHost = str("metrics.host").flatMap { $0.isEmpty ? nil : $0 }
        if c.replicaFetchWaitMaxMs > c.replicaSocketTimeoutMs {
            throw ConfigError("Invalid value \(c.replicaSocketTimeoutMs) for configuration replica.socket.timeout.ms: must be at least replica.fetch.wait.max.ms (\(c.replicaFetchWaitMaxMs))")
        }
        if c.replicaFetchWaitMaxMs > Int(c.replicaLagTimeMaxMs) {
            throw ConfigError("Invalid value \(c.replicaFetchWaitMaxMs) for configuration replica.fetch.wait.max.ms: must not exceed replica.lag.time.max.ms (\(c.replicaLagTimeMaxMs))")
        }

        // Log defaults (the broker-wide values behind the per-topic overrides).
        var l = LogConfig()
        if let v = try int("log.segment.bytes", min: 14) { l.segmentBytes = v }
        if let v = try long("log.roll.ms", min: 1) { l.segmentMs = v } else if let v = try long("log.roll.hours", min: 1) { l.segmentMs = v * 3_600_000 }
        if let v = try long("log.roll.jitter.ms", min: 0) { l.segmentJitterMs = v } else if let v = try long("log.roll.jitter.hours", min: 0) { l.segmentJitterMs = v * 3_600_000 }
        if let v = try long("log.retention.ms") { l.retentionMs = v } else if let v = try long("log.retention.minutes") { l.retentionMs = v * 60_000 } else if let v = try long("log.retention.hours") { l.retentionMs = v * 3_600_000 }
        if let v = try long("log.retention.bytes") { l.retentionBytes = v }
        if let v = try int("log.index.size.max.bytes", min: 4) { l.maxIndexSize = v }
        if let v = try int("log.index.interval.bytes", min: 0) { l.indexIntervalBytes = v }
        if let v = try long("log.flush.interval.messages", min: 1) { l.flushIntervalMessages = v }
        if let v = try long("log.flush.scheduler.interval.ms") { c.logFlushSchedulerIntervalMs = v }
        if let v = try long("log.flush.interval.ms") { l.flushMs = v } else { l.flushMs = c.logFlushSchedulerIntervalMs }
        if let v = try long("log.segment.delete.delay.ms", min: 0) { l.fileDeleteDelayMs = v }
        if let v = try long("log.cleaner.delete.retention.ms", min: 0) { l.deleteRetentionMs = v }
        if let v = try double("log.cleaner.min.cleanable.ratio") { l.minCleanableRatio = v }
        if let v = str("log.cleanup.policy") {
            guard v == "delete" || v == "compact" else { throw ConfigError("Invalid value \"\(v)\" for configuration log.cleanup.policy: expected delete or compact") }
            l.compact = v == "compact"
        }
        // Deviation from 0.8.2.2, whose KafkaServer.createLogManager drops the broker value: the
        // broker-wide min.insync.replicas is the default behind the topic override.
        if let v = try int("min.insync.replicas", min: 1) { l.minInsyncReplicas = v }
        l.maxMessageBytes = c.messageMaxBytes
        l.uncleanLeaderElection = c.uncleanLeaderElectionEnable
        c.log = l

        // Keys Kafka 0.8.2 knows whose job this broker does differently or not at all: accepted so
        // 0.8.2 files start unchanged, and named in a start-up warning (see README's config table).
        let acceptedWithoutEffect: Set<String> = [
            "num.recovery.threads.per.data.dir", "background.threads", "controller.message.queue.size",
            "replica.socket.receive.buffer.bytes", "num.replica.fetchers", "fetch.purgatory.purge.interval.requests",
            "producer.purgatory.purge.interval.requests", "zookeeper.sync.time.ms", "log.cleaner.threads",
            "log.cleaner.dedupe.buffer.size", "log.cleaner.io.buffer.size", "log.cleaner.io.buffer.load.factor",
            "log.cleaner.io.max.bytes.per.second", "offset.metadata.max.bytes",
            "offsets.load.buffer.size", "offsets.topic.replication.factor", "offsets.topic.num.partitions",
            "offsets.topic.segment.bytes", "offsets.topic.compression.codec", "offsets.retention.minutes",
            "offsets.retention.check.interval.ms", "offsets.commit.timeout.ms", "offsets.commit.required.acks",
        ]
        c.ignoredKeys = props.keys.filter { acceptedWithoutEffect.contains($0) }.sorted()
        known.formUnion(acceptedWithoutEffect)
        c.unknownKeys = props.keys.filter { !known.contains($0) }.sorted()
        return c
    }
}
