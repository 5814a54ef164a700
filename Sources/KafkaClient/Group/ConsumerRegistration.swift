import Foundation
import KafkaCluster

/// A whitelist or blacklist as Kafka's TopicFilter cleans it: trimmed, `,` → `|`, spaces
/// dropped, outer quotes stripped; it must match the whole topic name.
public struct TopicFilter: Sendable, Equatable {
    public enum Kind: String, Sendable { case whitelist = "white_list", blacklist = "black_list" }
    public let kind: Kind
    /// The cleaned regex: what the registration's subscription holds.
    public let regex: String

    public init(_ kind: Kind, _ rawRegex: String) throws {
        var r = rawRegex.trimmingCharacters(in: .whitespaces)
            .replacingOccurrences(of: ",", with: "|")
            .replacingOccurrences(of: " ", with: "")
        while let f = r.first, f == "\"" || f == "'" { r.removeFirst() }
        while let l = r.last, l == "\"" || l == "'" { r.removeLast() }
        guard let compiled = try? NSRegularExpression(pattern: "^(?:\(r))$") else {
            throw ConsumerGroupError("\(r) is an invalid regex.")
        }
        self.kind = kind
        self.regex = r
        self.compiled = RegexBox(compiled)
    }

    private final class RegexBox: @unchecked Sendable {
        let regex: NSRegularExpression
        init(_ r: NSRegularExpression) { regex = r }
    }
    private let compiled: RegexBox

    public static func == (a: TopicFilter, b: TopicFilter) -> Bool { a.kind == b.kind && a.regex == b.regex }

    /// Whitelist: matches; blacklist: does not match. Internal topics are dropped when excluded.
    public func isTopicAllowed(_ topic: String, excludeInternalTopics: Bool = true) -> Bool {
        if excludeInternalTopics && ConsumerRegistration.internalTopics.contains(topic) { return false }
        let whole = compiled.regex.firstMatch(in: topic, range: NSRange(topic.startIndex..., in: topic)) != nil
        return kind == .whitelist ? whole : !whole
    }
}

public struct ConsumerGroupError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}

/// `/consumers/<g>/ids/<consumerId>`:
/// `{"version":1,"subscription":{"t":2},"pattern":"static","timestamp":"1404263054520"}`.
/// For wildcards the subscription holds one entry, regex → stream count.
public struct ConsumerRegistration: Sendable, Equatable {
    public static let internalTopics: Set<String> = [TopicNames.offsetsTopic]

    public enum Subscription: Sendable, Equatable {
        /// topic → number of streams
        case topics([String: Int])
        case filter(TopicFilter, streams: Int)
    }

    public var subscription: Subscription
    public var timestamp: Int64

    public init(_ subscription: Subscription, timestamp: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) {
        self.subscription = subscription
        self.timestamp = timestamp
    }

    public static func topics(_ counts: [String: Int]) -> ConsumerRegistration { ConsumerRegistration(.topics(counts)) }

    public var pattern: String {
        switch subscription {
        case .topics: return "static"
        case .filter(let f, _): return f.kind.rawValue
        }
    }

    /// The znode data, in Kafka's key order and without whitespace.
    public func json() -> String {
        let entries: [(String, Int)]
        switch subscription {
        case .topics(let m): entries = m.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        case .filter(let f, let n): entries = [(f.regex, n)]
        }
        let sub = entries.map { "\(ZkData.quote($0.0)):\($0.1)" }.joined(separator: ",")
        return "{\"version\":1,\"subscription\":{\(sub)},\"pattern\":\"\(pattern)\",\"timestamp\":\"\(timestamp)\"}"
    }

    /// Reads a registration as TopicCount.constructTopicCount does: `pattern` and `subscription`
    /// must be present; it is static unless the pattern is a list and the subscription non-empty.
    public static func parse(_ bytes: [UInt8]?, path: String = "") throws -> ConsumerRegistration {
        let text = String(decoding: bytes ?? [], as: UTF8.self)
        guard let obj = (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) as? [String: Any],
              let pattern = obj["pattern"] as? String,
              let sub = obj["subscription"] as? [String: Any] else {
            throw ConsumerGroupError("error constructing TopicCount : \(text)")
        }
        var counts: [String: Int] = [:]
        for (k, v) in sub {
            guard let n = (v as? NSNumber)?.intValue ?? (v as? String).flatMap({ Int($0) }) else {
                throw ConsumerGroupError("error constructing TopicCount : \(text)")
            }
            counts[k] = n
        }
        let ts: Int64 = (obj["timestamp"] as? String).flatMap { Int64($0) } ?? (obj["timestamp"] as? NSNumber)?.int64Value ?? 0
        if let kind = TopicFilter.Kind(rawValue: pattern), let first = counts.first {
            return ConsumerRegistration(.filter(try TopicFilter(kind, first.key), streams: first.value), timestamp: ts)
        }
        return ConsumerRegistration(.topics(counts), timestamp: ts)
    }

    /// topic → this consumer's thread ids, wildcards evaluated against `allTopics`.
    public func threadIdsPerTopic(consumerId: String, allTopics: [String], excludeInternalTopics: Bool = true) -> [String: [ConsumerThreadId]] {
        var out: [String: [ConsumerThreadId]] = [:]
        switch subscription {
        case .topics(let m):
            for (t, n) in m { out[t] = (0..<max(n, 0)).map { ConsumerThreadId(consumerId, $0) } }
        case .filter(let f, let n):
            for t in allTopics where f.isTopicAllowed(t, excludeInternalTopics: excludeInternalTopics) {
                out[t] = (0..<max(n, 0)).map { ConsumerThreadId(consumerId, $0) }
            }
        }
        return out
    }
}
