import Foundation
import KafkaProtocol

/// Thrown when a znode holds data that is not what Kafka writes there.
public struct ZkDataError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "bad data in ZooKeeper node \(path): \(reason)" }
}

/// JSON stored in znodes, written byte-for-byte in Kafka 0.8.2's key order and without whitespace.
public enum ZkData {
    static func jsonObject(_ bytes: [UInt8]?, path: String) throws -> [String: Any] {
        guard let bytes, !bytes.isEmpty else { throw ZkDataError(path: path, reason: "empty") }
        guard let obj = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) as? [String: Any] else {
            throw ZkDataError(path: path, reason: "not a JSON object: \(String(decoding: bytes, as: UTF8.self))")
        }
        return obj
    }

    static func int(_ v: Any?) -> Int? {
        if let n = v as? NSNumber { return n.intValue }
        if let s = v as? String { return Int(s) }
        return nil
    }

    static func int32Array(_ v: Any?) -> [Int32]? {
        guard let arr = v as? [Any] else { return nil }
        var out: [Int32] = []
        for e in arr {
            guard let i = int(e) else { return nil }
            out.append(Int32(i))
        }
        return out
    }

    static func list(_ xs: [Int32]) -> String { "[" + xs.map(String.init).joined(separator: ",") + "]" }

    /// JSON string literal with Kafka's escaping (`/` is escaped as `\/`).
    public static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "/": out += "\\/"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }

    public static func nowMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

/// `/brokers/ids/<id>`: `{"jmx_port":-1,"timestamp":"…","host":"h","version":1,"port":9092}`.
public struct BrokerRegistration: Sendable, Equatable {
    public var id: Int32
    public var host: String
    public var port: Int32
    public var jmxPort: Int32
    public var timestamp: Int64

    public init(id: Int32, host: String, port: Int32, jmxPort: Int32 = -1, timestamp: Int64 = ZkData.nowMillis()) {
        self.id = id
        self.host = host
        self.port = port
        self.jmxPort = jmxPort
        self.timestamp = timestamp
    }

    public var endpoint: BrokerEndpoint { BrokerEndpoint(id: id, host: host, port: port) }

    public func json() -> String {
        "{\"jmx_port\":\(jmxPort),\"timestamp\":\"\(timestamp)\",\"host\":\(ZkData.quote(host)),\"version\":1,\"port\":\(port)}"
    }

    public static func parse(id: Int32, _ bytes: [UInt8]?, path: String) throws -> BrokerRegistration {
        let o = try ZkData.jsonObject(bytes, path: path)
        guard let host = o["host"] as? String, let port = ZkData.int(o["port"]) else {
            throw ZkDataError(path: path, reason: "missing host or port")
        }
        return BrokerRegistration(id: id, host: host, port: Int32(port), jmxPort: Int32(ZkData.int(o["jmx_port"]) ?? -1),
                                  timestamp: Int64(ZkData.int(o["timestamp"]) ?? 0))
    }
}

/// `/brokers/topics/<t>/partitions/<p>/state`.
public struct LeaderIsrState: Sendable, Equatable {
    public var leader: Int32
    public var leaderEpoch: Int32
    public var isr: [Int32]
    public var controllerEpoch: Int32

    public init(leader: Int32, leaderEpoch: Int32, isr: [Int32], controllerEpoch: Int32) {
        self.leader = leader
        self.leaderEpoch = leaderEpoch
        self.isr = isr
        self.controllerEpoch = controllerEpoch
    }

    public func json() -> String {
        "{\"controller_epoch\":\(controllerEpoch),\"leader\":\(leader),\"version\":1,\"leader_epoch\":\(leaderEpoch),\"isr\":\(ZkData.list(isr))}"
    }

    public static func parse(_ bytes: [UInt8]?, path: String) throws -> LeaderIsrState {
        let o = try ZkData.jsonObject(bytes, path: path)
        guard let leader = ZkData.int(o["leader"]), let le = ZkData.int(o["leader_epoch"]),
              let isr = ZkData.int32Array(o["isr"]), let ce = ZkData.int(o["controller_epoch"]) else {
            throw ZkDataError(path: path, reason: "missing leader, leader_epoch, isr or controller_epoch")
        }
        return LeaderIsrState(leader: Int32(leader), leaderEpoch: Int32(le), isr: isr, controllerEpoch: Int32(ce))
    }
}

/// `/controller`: `{"version":1,"brokerid":2,"timestamp":"…"}`; a bare integer is also accepted.
public enum ControllerRegistration {
    public static func json(brokerId: Int32, timestamp: Int64 = ZkData.nowMillis()) -> String {
        "{\"version\":1,\"brokerid\":\(brokerId),\"timestamp\":\"\(timestamp)\"}"
    }

    public static func parseBrokerId(_ bytes: [UInt8]?, path: String = ZkPaths.controller) throws -> Int32 {
        if let bytes, let s = String(bytes: bytes, encoding: .utf8), let i = Int32(s.trimmingCharacters(in: .whitespaces)) { return i }
        let o = try ZkData.jsonObject(bytes, path: path)
        guard let id = ZkData.int(o["brokerid"]) else { throw ZkDataError(path: path, reason: "missing brokerid") }
        return Int32(id)
    }
}

/// `/brokers/topics/<t>`: `{"version":1,"partitions":{"0":[0,1]}}` — partition → assigned replicas.
public enum TopicAssignment {
    public static func json(_ assignment: [Int32: [Int32]]) -> String {
        let parts = assignment.keys.sorted().map { "\"\($0)\":\(ZkData.list(assignment[$0]!))" }
        return "{\"version\":1,\"partitions\":{" + parts.joined(separator: ",") + "}}"
    }

    public static func parse(_ bytes: [UInt8]?, path: String) throws -> [Int32: [Int32]] {
        let o = try ZkData.jsonObject(bytes, path: path)
        guard let parts = o["partitions"] as? [String: Any] else { throw ZkDataError(path: path, reason: "missing partitions") }
        var out: [Int32: [Int32]] = [:]
        for (k, v) in parts {
            guard let p = Int32(k), let replicas = ZkData.int32Array(v) else { throw ZkDataError(path: path, reason: "bad partition entry \(k)") }
            out[p] = replicas
        }
        return out
    }
}

/// `/config/topics/<t>`: `{"version":1,"config":{"k":"v"}}`.
public enum TopicConfigData {
    public static func json(_ config: [String: String]) -> String {
        let entries = config.keys.sorted().map { "\(ZkData.quote($0)):\(ZkData.quote(config[$0]!))" }
        return "{\"version\":1,\"config\":{" + entries.joined(separator: ",") + "}}"
    }

    public static func parse(_ bytes: [UInt8]?, path: String) throws -> [String: String] {
        guard let bytes, !bytes.isEmpty else { return [:] }
        let o = try ZkData.jsonObject(bytes, path: path)
        guard let cfg = o["config"] as? [String: Any] else { return [:] }
        var out: [String: String] = [:]
        for (k, v) in cfg { out[k] = (v as? String) ?? "\(v)" }
        return out
    }
}

/// `/admin/preferred_replica_election`: `{"version":1,"partitions":[{"topic":"t","partition":0}]}`.
public enum PreferredReplicaElectionData {
    public static func json(_ partitions: [TopicPartition]) -> String {
        let items = partitions.map { "{\"topic\":\(ZkData.quote($0.topic)),\"partition\":\($0.partition)}" }
        return "{\"version\":1,\"partitions\":[" + items.joined(separator: ",") + "]}"
    }

    public static func parse(_ bytes: [UInt8]?, path: String) throws -> [TopicPartition] {
        let o = try ZkData.jsonObject(bytes, path: path)
        guard let list = o["partitions"] as? [[String: Any]] else { throw ZkDataError(path: path, reason: "missing partitions list") }
        return try list.map { e in
            guard let t = e["topic"] as? String, let p = ZkData.int(e["partition"]) else { throw ZkDataError(path: path, reason: "bad partition entry \(e)") }
            return TopicPartition(t, Int32(p))
        }
    }
}

/// `/admin/reassign_partitions` (and the reassignment tool's files):
/// `{"version":1,"partitions":[{"topic":"foo","partition":1,"replicas":[1,2,3]}]}`.
public enum ReassignmentData {
    public static func json(_ reassignment: [TopicPartition: [Int32]]) -> String {
        let items = reassignment.keys.sorted().map {
            "{\"topic\":\(ZkData.quote($0.topic)),\"partition\":\($0.partition),\"replicas\":\(ZkData.list(reassignment[$0]!))}"
        }
        return "{\"version\":1,\"partitions\":[" + items.joined(separator: ",") + "]}"
    }

    public static func parse(_ bytes: [UInt8]?, path: String) throws -> [TopicPartition: [Int32]] {
        let o = try ZkData.jsonObject(bytes, path: path)
        guard let list = o["partitions"] as? [[String: Any]] else { throw ZkDataError(path: path, reason: "missing partitions list") }
        var out: [TopicPartition: [Int32]] = [:]
        for e in list {
            guard let t = e["topic"] as? String, let p = ZkData.int(e["partition"]), let r = ZkData.int32Array(e["replicas"]) else {
                throw ZkDataError(path: path, reason: "bad partition entry \(e)")
            }
            out[TopicPartition(t, Int32(p))] = r
        }
        return out
    }
}

extension ReassignmentData {
    /// The reassignment tool's `--reassignment-json-file`, entries in file order and duplicates
    /// kept (0.8.2 `parsePartitionReassignmentDataWithoutDedup`), so the tool can name them.
    /// A file without a `partitions` list yields no entries (0.8.2 then says the file is empty).
    public static func parseList(_ bytes: [UInt8]?, path: String) throws -> [(TopicPartition, [Int32])] {
        let o = try ZkData.jsonObject(bytes, path: path)
        guard let raw = o["partitions"] else { return [] }
        guard let list = raw as? [[String: Any]] else { throw ZkDataError(path: path, reason: "\"partitions\" is not a list of objects") }
        return try list.map { e in
            guard let t = e["topic"] as? String else { throw ZkDataError(path: path, reason: "entry without a \"topic\" string: \(entryText(e))") }
            guard let p = ZkData.int(e["partition"]) else { throw ZkDataError(path: path, reason: "entry without an integer \"partition\": \(entryText(e))") }
            guard let r = ZkData.int32Array(e["replicas"]) else { throw ZkDataError(path: path, reason: "entry without a \"replicas\" list of integers: \(entryText(e))") }
            return (TopicPartition(t, Int32(p)), r)
        }
    }

    static func entryText(_ e: [String: Any]) -> String {
        (try? JSONSerialization.data(withJSONObject: e, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "\(e)"
    }
}

/// The reassignment tool's `--topics-to-move-json-file`:
/// `{"topics":[{"topic":"foo"},{"topic":"foo1"}],"version":1}` (0.8.2 `ZkUtils.parseTopicsData`;
/// duplicates kept so the tool can name them).
public enum TopicsToMoveData {
    public static func json(_ topics: [String]) -> String {
        "{\"topics\":[" + topics.map { "{\"topic\":\(ZkData.quote($0))}" }.joined(separator: ",") + "],\"version\":1}"
    }

    public static func parse(_ bytes: [UInt8]?, path: String) throws -> [String] {
        let o = try ZkData.jsonObject(bytes, path: path)
        guard let raw = o["topics"] else { return [] }
        guard let list = raw as? [[String: Any]] else { throw ZkDataError(path: path, reason: "\"topics\" is not a list of objects") }
        return try list.map { e in
            guard let t = e["topic"] as? String else { throw ZkDataError(path: path, reason: "entry without a \"topic\" string: \(ReassignmentData.entryText(e))") }
            return t
        }
    }
}

/// `/consumers/<g>/offsets/<t>/<p>`: the next offset to consume as a plain decimal string (what
/// 0.8.2's consumer, its OffsetCommit v0 handling, kazoo scripts and Burrow read and write). The
/// one codec of the node: readers trim surrounding whitespace (a hand-written `set` may end in a
/// newline); anything else that is not a decimal is malformed.
public enum ConsumerOffsetData {
    /// The node's data could not be read as an offset.
    public struct Malformed: Error, CustomStringConvertible, Sendable, Equatable {
        public var path: String
        public var text: String
        public init(path: String, text: String) {
            self.path = path
            self.text = text
        }
        public var description: String { "For input string: \"\(text)\"" }
    }

    public static func encode(_ offset: Int64) -> [UInt8] { Array(String(offset).utf8) }

    public static func decode(_ bytes: [UInt8]?) -> Int64? {
        Int64(String(decoding: bytes ?? [], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    static func decode(_ bytes: [UInt8]?, path: String) throws -> Int64 {
        guard let v = decode(bytes) else { throw Malformed(path: path, text: String(decoding: bytes ?? [], as: UTF8.self)) }
        return v
    }
}

/// `/consumers/<g>/owners/<t>/<p>`: the owning consumer thread id as plain text.
public enum PartitionOwnerData {
    public static func encode(_ threadId: String) -> [UInt8] { Array(threadId.utf8) }
    public static func decode(_ bytes: [UInt8]?) -> String? { bytes.map { String(decoding: $0, as: UTF8.self) } }
}

/// `/config/changes/config_change_<10-digit seq>`: the changed topic as a JSON string (`"t"`,
/// with the quotes), the node created persistent-sequential.
public enum ConfigChangeNotification {
    public static let prefix = ZkPaths.configChangePrefix

    public static func encode(topic: String) -> [UInt8] { Array(ZkData.quote(topic).utf8) }

    /// The topic a notification names: a JSON string, or (leniently) bare text.
    public static func decode(_ bytes: [UInt8]?) -> String {
        let text = String(decoding: bytes ?? [], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("\""), let s = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) as? String {
            return s
        }
        if text.hasPrefix("\"") && text.hasSuffix("\"") && text.count >= 2 { return String(text.dropFirst().dropLast()) }
        return text
    }

    /// The change number of a child name (`config_change_0000000007` → 7), nil for other names.
    public static func sequence(_ child: String) -> Int64? {
        guard child.hasPrefix(prefix) else { return nil }
        return Int64(child.dropFirst(prefix.count))
    }

    public static func childName(sequence: Int64) -> String {
        let digits = String(sequence)
        return prefix + String(repeating: "0", count: max(0, 10 - digits.count)) + digits
    }
}
