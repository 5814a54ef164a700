import Foundation

/// `auto.offset.reset`: where a partition without a committed offset (or with one out of range) starts.
public enum AutoOffsetReset: String, Sendable, Equatable {
    /// The log start (Kafka's `smallest`).
    case smallest
    /// The log end (Kafka's `largest`, the default).
    case largest
}

/// A consumer property that cannot be used, with 0.8.2's wording where it has one.
public enum ConsumerConfigError: Error, Equatable, CustomStringConvertible, Sendable {
    case missing(String)
    case illegalGroupId(String)
    case notANumber(key: String, value: String)
    case notABoolean(key: String, value: String)
    case invalidAutoOffsetReset(String)
    case outOfRange(key: String, value: Int, requirement: String)

    public var description: String {
        switch self {
        case .missing(let k): return "Missing required configuration \"\(k)\""
        case .illegalGroupId(let g): return "group.id \(g) is illegal, contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        case .notANumber(let k, let v): return "Invalid value \(v) for configuration \(k): not a number"
        case .notABoolean(let k, let v): return "Invalid value \(v) for configuration \(k): expected true or false"
        case .invalidAutoOffsetReset(let v): return "Wrong value \(v) of auto.offset.reset in ConsumerConfig; Valid values are smallest and largest"
        case .outOfRange(let k, let v, let r): return "Invalid value \(v) for configuration \(k): \(r)"
        }
    }
}

/// The group consumer's settings: 0.8.2's ConsumerConfig names and defaults.
public struct ZookeeperConsumerConfig: Sendable, Equatable {
    public var zookeeperConnect: String
    public var groupId: String
    /// `consumer.id`: the consumer id becomes `<group>_<consumer.id>` instead of a generated one.
    public var consumerId: String? = nil
    public var autoOffsetReset = AutoOffsetReset.largest
    public var autoCommitEnable = true
    public var autoCommitIntervalMs = 60000
    public var fetchMessageMaxBytes: Int32 = 1 << 20
    public var fetchMinBytes: Int32 = 1
    public var fetchWaitMaxMs: Int32 = 100
    /// `socket.timeout.ms`: a fetch with no response by then drops the connection.
    public var socketTimeoutMs = 30000
    public var sessionTimeoutMs = 6000
    /// `zookeeper.connection.timeout.ms` (0.8.2 default 6000).
    public var connectionTimeoutMs = 6000
    public var rebalanceMaxRetries = 4
    public var rebalanceBackoffMs = 2000
    /// `refresh.leader.backoff.ms`: how long a partition whose leader failed waits before the next lookup.
    public var refreshLeaderBackoffMs = 200
    /// `queued.max.message.chunks`: fetched responses buffered ahead of the iterator, per fetcher.
    public var queuedMaxMessageChunks = 2
    public var partitionAssignmentStrategy = PartitionAssignmentStrategy.range
    public var excludeInternalTopics = true
    public var clientIdOverride: String? = nil
    public var clientId: String { clientIdOverride ?? groupId }

    public init(zookeeperConnect: String, groupId: String) {
        self.zookeeperConnect = zookeeperConnect
        self.groupId = groupId
    }

    /// A config from Kafka's consumer properties; `group.id` and `zookeeper.connect` are required,
    /// unknown keys are ignored (as 0.8.2 only warns about them).
    public init(properties p: [String: String]) throws {
        guard let zk = p["zookeeper.connect"] else { throw ConsumerConfigError.missing("zookeeper.connect") }
        guard let g = p["group.id"] else { throw ConsumerConfigError.missing("group.id") }
        guard !g.isEmpty, g.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") }) else {
            throw ConsumerConfigError.illegalGroupId(g)
        }
        self.init(zookeeperConnect: zk, groupId: g)
        func int(_ k: String, min lower: Int? = nil) throws -> Int? {
            guard let raw = p[k] else { return nil }
            let v = raw.trimmingCharacters(in: .whitespaces)
            guard let n = Int(v) else { throw ConsumerConfigError.notANumber(key: k, value: raw) }
            if let lower, n < lower { throw ConsumerConfigError.outOfRange(key: k, value: n, requirement: "must be at least \(lower)") }
            return n
        }
        func int32(_ k: String, min lower: Int? = nil) throws -> Int32? {
            guard let n = try int(k, min: lower) else { return nil }
            guard let v = Int32(exactly: n) else { throw ConsumerConfigError.outOfRange(key: k, value: n, requirement: "must fit in 32 bits") }
            return v
        }
        func bool(_ k: String) throws -> Bool? {
            guard let raw = p[k] else { return nil }
            switch raw.trimmingCharacters(in: .whitespaces).lowercased() {
            case "true": return true
            case "false": return false
            default: throw ConsumerConfigError.notABoolean(key: k, value: raw)
            }
        }
        consumerId = p["consumer.id"]
        clientIdOverride = p["client.id"]
        if let v = p["auto.offset.reset"] {
            guard let r = AutoOffsetReset(rawValue: v.trimmingCharacters(in: .whitespaces)) else { throw ConsumerConfigError.invalidAutoOffsetReset(v) }
            autoOffsetReset = r
        }
        if let v = try bool("auto.commit.enable") { autoCommitEnable = v }
        if let v = try int("auto.commit.interval.ms", min: 0) { autoCommitIntervalMs = v }
        if let v = try int32("fetch.message.max.bytes", min: 1) { fetchMessageMaxBytes = v }
        if let v = try int32("fetch.min.bytes", min: 0) { fetchMinBytes = v }
        if let v = try int32("fetch.wait.max.ms", min: 0) { fetchWaitMaxMs = v }
        if let v = try int("socket.timeout.ms", min: 1) { socketTimeoutMs = v }
        if let v = try int("zookeeper.session.timeout.ms", min: 1) { sessionTimeoutMs = v }
        if let v = try int("zookeeper.connection.timeout.ms", min: 1) { connectionTimeoutMs = v }
        if let v = try int("rebalance.max.retries") { rebalanceMaxRetries = max(v, 1) }
        // rebalance.backoff.ms defaults to zookeeper.sync.time.ms (2000).
        if let v = try int("zookeeper.sync.time.ms", min: 0) { rebalanceBackoffMs = v }
        if let v = try int("rebalance.backoff.ms", min: 0) { rebalanceBackoffMs = v }
        if let v = try int("refresh.leader.backoff.ms", min: 0) { refreshLeaderBackoffMs = v }
        if let v = try int("queued.max.message.chunks", min: 1) { queuedMaxMessageChunks = v }
        if let v = p["partition.assignment.strategy"] { partitionAssignmentStrategy = PartitionAssignmentStrategy(config: v) }
        if let v = try bool("exclude.internal.topics") { excludeInternalTopics = v }
        // 0.8.2: "socket.timeout.ms should always be at least fetch.wait.max.ms".
        if socketTimeoutMs < Int(fetchWaitMaxMs) {
            throw ConsumerConfigError.outOfRange(key: "socket.timeout.ms", value: socketTimeoutMs, requirement: "should always be at least fetch.wait.max.ms (\(fetchWaitMaxMs))")
        }
    }
}
