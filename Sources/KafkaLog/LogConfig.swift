/// A rejected per-topic override.
public struct LogConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var key: String
    public var value: String
    public var reason: String
    public var description: String { "Invalid topic config \(key)=\(value): \(reason)" }
}

/// Per-log configuration; defaults are Kafka 0.8.2's.
public struct LogConfig: Sendable, Equatable {
    public var segmentBytes = 1_073_741_824
    public var segmentMs: Int64 = 168 * 3600 * 1000
    public var segmentJitterMs: Int64 = 0
    public var maxIndexSize = 10_485_760
    public var indexIntervalBytes = 4096
    public var flushIntervalMessages: Int64 = .max
    public var flushMs: Int64 = .max
    public var retentionMs: Int64 = 168 * 3600 * 1000
    public var retentionBytes: Int64 = -1
    public var maxMessageBytes = 1_000_012
    public var fileDeleteDelayMs: Int64 = 60000
    public var deleteRetentionMs: Int64 = 86_400_000
    public var minCleanableRatio = 0.5
    public var compact = false
    public var minInsyncReplicas = 1
    public var uncleanLeaderElection = true

    public init() {}

    public static let segmentBytesProp = "segment.bytes"
    public static let segmentMsProp = "segment.ms"
    public static let segmentJitterMsProp = "segment.jitter.ms"
    public static let segmentIndexBytesProp = "segment.index.bytes"
    public static let flushMessagesProp = "flush.messages"
    public static let flushMsProp = "flush.ms"
    public static let retentionBytesProp = "retention.bytes"
    public static let retentionMsProp = "retention.ms"
    public static let maxMessageBytesProp = "max.message.bytes"
    public static let indexIntervalBytesProp = "index.interval.bytes"
    public static let deleteRetentionMsProp = "delete.retention.ms"
    public static let fileDeleteDelayMsProp = "file.delete.delay.ms"
    public static let minCleanableDirtyRatioProp = "min.cleanable.dirty.ratio"
    public static let cleanupPolicyProp = "cleanup.policy"
    public static let uncleanLeaderElectionEnableProp = "unclean.leader.election.enable"
    public static let minInSyncReplicasProp = "min.insync.replicas"

    /// Kafka 0.8.2's topic-level config names (`LogConfig.ConfigNames`).
    public static let topicConfigNames: Set<String> = [
        segmentBytesProp, segmentMsProp, segmentJitterMsProp, segmentIndexBytesProp, flushMessagesProp, flushMsProp,
        retentionBytesProp, retentionMsProp, maxMessageBytesProp, indexIntervalBytesProp, deleteRetentionMsProp,
        fileDeleteDelayMsProp, minCleanableDirtyRatioProp, cleanupPolicyProp, uncleanLeaderElectionEnableProp,
        minInSyncReplicasProp,
    ]

    /// Applies topic-level overrides. Unknown key or bad value → `LogConfigError` naming both.
    public func applying(_ overrides: [String: String]) throws -> LogConfig {
        var c = self
        for key in overrides.keys.sorted() {
            let raw = overrides[key]!
            let v = raw.trimmingWhitespace()
            func bad(_ why: String) -> LogConfigError { LogConfigError(key: key, value: raw, reason: why) }
            func int() throws -> Int {
                guard let x = Int32(v) else { throw bad("not a valid 32-bit integer") }
                return Int(x)
            }
            func long() throws -> Int64 {
                guard let x = Int64(v) else { throw bad("not a valid 64-bit integer") }
                return x
            }
            func positiveInt(min: Int) throws -> Int {
                let x = try int()
                guard x >= min else { throw bad("must be at least \(min)") }
                return x
            }
            func nonNegativeLong() throws -> Int64 {
                let x = try long()
                guard x >= 0 else { throw bad("must not be negative") }
                return x
            }
            switch key {
            case Self.segmentBytesProp: c.segmentBytes = try positiveInt(min: 14)
            case Self.segmentMsProp: c.segmentMs = try long(); if c.segmentMs <= 0 { throw bad("must be positive") }
            case Self.segmentJitterMsProp: c.segmentJitterMs = try nonNegativeLong()
            case Self.segmentIndexBytesProp: c.maxIndexSize = try positiveInt(min: 8)
            case Self.flushMessagesProp: c.flushIntervalMessages = try long(); if c.flushIntervalMessages <= 0 { throw bad("must be positive") }
            case Self.flushMsProp: c.flushMs = try nonNegativeLong()
            case Self.retentionBytesProp: c.retentionBytes = try long()
            case Self.retentionMsProp: c.retentionMs = try long()
            case Self.maxMessageBytesProp: c.maxMessageBytes = try positiveInt(min: 0)
            case Self.indexIntervalBytesProp: c.indexIntervalBytes = try positiveInt(min: 0)
            case Self.deleteRetentionMsProp: c.deleteRetentionMs = try nonNegativeLong()
            case Self.fileDeleteDelayMsProp: c.fileDeleteDelayMs = try nonNegativeLong()
            case Self.minCleanableDirtyRatioProp:
                guard let d = Double(v), d.isFinite else { throw bad("not a valid number") }
                guard d >= 0 && d <= 1 else { throw bad("must be between 0 and 1") }
                c.minCleanableRatio = d
            case Self.cleanupPolicyProp:
                switch v.lowercased() {
                case "delete": c.compact = false
                case "compact": c.compact = true
                default: throw bad("must be \"delete\" or \"compact\"")
                }
            case Self.uncleanLeaderElectionEnableProp:
                switch v.lowercased() {
                case "true": c.uncleanLeaderElection = true
                case "false": c.uncleanLeaderElection = false
                default: throw bad("must be true or false")
                }
            case Self.minInSyncReplicasProp:
                c.minInsyncReplicas = try positiveInt(min: 1)
            default:
                throw LogConfigError(key: key, value: raw, reason: "unknown topic config name")
            }
        }
        return c
    }

    /// The config as Kafka topic-level properties (every name in `topicConfigNames`).
    public var asProperties: [String: String] {
        [
            Self.segmentBytesProp: String(segmentBytes), Self.segmentMsProp: String(segmentMs),
            Self.segmentJitterMsProp: String(segmentJitterMs), Self.segmentIndexBytesProp: String(maxIndexSize),
            Self.flushMessagesProp: String(flushIntervalMessages), Self.flushMsProp: String(flushMs),
            Self.retentionBytesProp: String(retentionBytes), Self.retentionMsProp: String(retentionMs),
            Self.maxMessageBytesProp: String(maxMessageBytes), Self.indexIntervalBytesProp: String(indexIntervalBytes),
            Self.deleteRetentionMsProp: String(deleteRetentionMs), Self.fileDeleteDelayMsProp: String(fileDeleteDelayMs),
            Self.minCleanableDirtyRatioProp: String(minCleanableRatio),
            Self.cleanupPolicyProp: compact ? "compact" : "delete",
            Self.uncleanLeaderElectionEnableProp: String(uncleanLeaderElection),
            Self.minInSyncReplicasProp: String(minInsyncReplicas),
        ]
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
