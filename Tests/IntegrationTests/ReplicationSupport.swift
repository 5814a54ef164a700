import Foundation
import KafkaTestSupport
import XCTest
import ZooKeeper
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Helpers of ReplicationTests: ZooKeeper state reads, replica-id -2 reads of any replica, a
// producer that follows leader moves, and small parsers for tool output.

/// `/brokers/topics/<t>/partitions/<p>/state` as stored.
struct ZkPartitionState: Equatable, CustomStringConvertible {
    var leader: Int32
    var leaderEpoch: Int32
    var isr: [Int32]
    var controllerEpoch: Int32
    var version: Int32

    var description: String { "leader \(leader) epoch \(leaderEpoch) isr \(isr) controller_epoch \(controllerEpoch) (znode version \(version))" }
}

/// A ZooKeeper session of the test itself, for reading what the brokers wrote.
final class ZkInspector: Sendable {
    let zk: ZooKeeperClient

    private init(zk: ZooKeeperClient) { self.zk = zk }

    static func connect(_ connectString: String) async throws -> ZkInspector {
        ZkInspector(zk: try await ZooKeeperClient.connect(connectString, sessionTimeoutMs: 30000))
    }

    func close() async { await zk.close() }

    private func json(_ path: String) async throws -> (object: [String: Any], version: Int32)? {
        guard try await zk.exists(path) != nil else { return nil }
        let (data, stat) = try await zk.get(path)
        guard let data, let obj = try JSONSerialization.jsonObject(with: Data(data)) as? [String: Any] else {
            throw WireError("\(path) does not hold a JSON object: \(String(decoding: data ?? [], as: UTF8.self))")
        }
        return (obj, stat.version)
    }

    func partitionState(_ topic: String, _ partition: Int) async throws -> ZkPartitionState? {
        guard let (o, version) = try await json("/brokers/topics/\(topic)/partitions/\(partition)/state") else { return nil }
        func int(_ k: String) -> Int32 { Int32((o[k] as? NSNumber)?.intValue ?? -99) }
        let isr = ((o["isr"] as? [Any]) ?? []).compactMap { ($0 as? NSNumber).map { Int32($0.intValue) } }
        return ZkPartitionState(leader: int("leader"), leaderEpoch: int("leader_epoch"), isr: isr,
                                controllerEpoch: int("controller_epoch"), version: version)
    }

    /// The broker id in `/controller`, nil when no controller is elected.
    func controllerId() async throws -> Int32? {
        guard let (o, _) = try await json("/controller") else { return nil }
        return (o["brokerid"] as? NSNumber).map { Int32($0.intValue) }
    }

    func liveBrokerIds() async throws -> [Int32] {
        try await zk.children("/brokers/ids").compactMap { Int32($0) }.sorted()
    }

    /// Polls the partition state until `condition` holds.
    @discardableResult
    func waitForState(_ topic: String, _ partition: Int, timeout: Double, _ what: String,
                      _ condition: (ZkPartitionState) -> Bool) async throws -> ZkPartitionState {
        let deadline = Date().addingTimeInterval(timeout)
        var last: ZkPartitionState?
        while true {
            last = try await partitionState(topic, partition)
            if let s = last, condition(s) { return s }
            if Date() >= deadline {
                throw WireError("timed out after \(timeout)s waiting for \(what) in the state of \(topic)-\(partition); last: \(last.map(\.description) ?? "no state node")")
            }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
    }
}

/// Polls an async condition every 100 ms until it returns a value.
func pollAsync<T>(timeout: Double, _ what: String, _ condition: () async throws -> T?) async throws -> T {
    let deadline = Date().addingTimeInterval(timeout)
    var lastError: Error?
    while true {
        do {
            if let v = try await condition() { return v }
        } catch {
            lastError = error
        }
        if Date() >= deadline {
            throw WireError("timed out after \(timeout)s waiting for \(what)" + (lastError.map { " (last error: \($0))" } ?? ""))
        }
        try await Task.sleep(nanoseconds: 100_000_000)
    }
}

extension WireConnection {
    /// Fetch as the debugging consumer (replica id -2): served by any replica, leader or not,
    /// up to that replica's high watermark.
    func debugFetch(topic: String, partition: Int32 = 0, offset: Int64, maxBytes: Int32 = 1 << 20) throws -> FetchResult {
        try fetch(replicaId: -2, topic: topic, partition: partition, offset: offset, maxBytes: maxBytes, maxWaitMs: 0, minBytes: 0)
    }

    /// Every message a replica has below its high watermark (replica id -2).
    func debugFetchAll(topic: String, partition: Int32 = 0) throws -> (messages: [WireMessage], highWatermark: Int64) {
        var out: [WireMessage] = []
        var next: Int64 = 0
        var hw: Int64 = 0
        for _ in 0..<1000 {
            let f = try debugFetch(topic: topic, partition: partition, offset: next)
            guard f.error == 0 else { throw WireError("debug fetch \(topic)/\(partition) at \(next) from port \(port): error \(f.error)") }
            hw = f.highWatermark
            let fresh = f.messages.filter { $0.offset >= next }
            out += fresh
            if let last = fresh.last { next = last.offset + 1 }
            if next >= f.highWatermark || fresh.isEmpty { break }
        }
        return (out, hw)
    }

    /// Offsets as the debugging consumer: the log end offset of any replica (not capped at the HW).
    func debugLogEndOffset(topic: String, partition: Int32 = 0) throws -> Int64 {
        var w = WireWriter()
        w.int32(-2)
        w.int32(1)
        w.string(topic)
        w.int32(1)
        w.int32(partition)
        w.int64(-1)
        w.int32(1)
        let cid = try sendRequest(apiKey: 2, body: w.bytes)
        var (got, r) = try receiveResponse()
        guard got == cid else { throw WireError("correlation id \(got) in the response to request \(cid)") }
        guard try r.int32() == 1, try r.string() == topic, try r.int32() == 1, try r.int32() == partition else {
            throw WireError("offsets response does not echo \(topic)/\(partition)")
        }
        let error = try r.int16()
        guard error == 0, try r.int32() >= 1 else { throw WireError("debug offsets of \(topic)/\(partition) from port \(port): error \(error)") }
        return try r.int64()
    }
}

/// A client that produces one message per request and, like a real producer, refreshes
/// metadata and retries against the new leader when the old one fails or moves. Records
/// every acknowledged offset with its value.
final class FailoverProducer: @unchecked Sendable {
    struct Attempt { var value: String; var error: String }

    let topic: String
    let partition: Int32
    let acks: Int16
    private let candidatePorts: () -> [Int]
    private struct State {
        var _acked: [(offset: Int64, value: String)] = []
        var _failures: [Attempt] = []
    }
    private let state = Mutex(State())
    private var conn: WireConnection?
    private var leaderPort: Int?

    /// `candidatePorts` lists the brokers that may answer Metadata (asked in order).
    init(topic: String, partition: Int32 = 0, acks: Int16 = -1, candidatePorts: @escaping () -> [Int]) {
        self.topic = topic
        self.partition = partition
        self.acks = acks
        self.candidatePorts = candidatePorts
    }

    var acked: [(offset: Int64, value: String)] { state.withLock { st in st._acked } }
    var failures: [Attempt] { state.withLock { st in st._failures } }

    /// Finds the leader through Metadata from the first candidate that answers with one.
    private func refreshLeader() -> Int? {
        for port in candidatePorts() {
            guard let c = try? WireConnection(port: port, timeout: 3), let md = try? c.metadata([topic]),
                  let p = md.topic(topic)?.partitions.first(where: { $0.id == partition }), p.leader >= 0,
                  let b = md.brokers.first(where: { $0.id == p.leader }) else { continue }
            return Int(b.port)
        }
        return nil
    }

    /// Sends `value` until it is acknowledged or `timeout` passes; returns its offset.
    @discardableResult
    func send(_ value: String, timeout: Double = 60) -> Int64? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if conn == nil {
                guard let port = refreshLeader(), let c = try? WireConnection(port: port, timeout: 15) else {
                    usleep(100_000)
                    continue
                }
                conn = c
                leaderPort = port
            }
            do {
                let (error, offset) = try conn!.produce(topic: topic, partition: partition, messages: [(key: nil, value: value)],
                                                        acks: acks, timeoutMs: 10_000)
                if error == 0 {
                    state.withLock { st in st._acked.append((offset, value)) }
                    return offset
                }
                state.withLock { st in st._failures.append(Attempt(value: value, error: "error code \(error) from port \(leaderPort ?? -1)")) }
            } catch {
                state.withLock { st in st._failures.append(Attempt(value: value, error: "\(error) (port \(leaderPort ?? -1))")) }
            }
            conn = nil
            usleep(100_000)
        }
        return nil
    }
}

/// Runs `body` on a plain thread (blocking socket work off the Swift concurrency pool).
final class BackgroundWork: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private struct State {
        var _stop = false
        var _finished = false
    }
    private let state = Mutex(State())

    var shouldStop: Bool { state.withLock { st in st._stop } }

    init(_ body: @escaping @Sendable (BackgroundWork) -> Void) {
        let t = Thread { [self] in
            body(self)
            self.done.signal()
        }
        t.start()
    }

    /// Waits up to `timeout` seconds for the body to end (true when it has; may be called again).
    func wait(timeout: Double) -> Bool {
        if state.withLock({ st in st._finished }) { return true }
        guard done.wait(timeout: .now() + timeout) == .success else { return false }
        state.withLock { st in st._finished = true }
        return true
    }

    /// Asks the body to stop and waits up to `timeout` seconds for it to end.
    @discardableResult
    func stopAndWait(timeout: Double) -> Bool {
        state.withLock { st in st._stop = true }
        return wait(timeout: timeout)
    }
}

/// One `Topic: ... Partition: ... Leader: ... Replicas: ... Isr: ...` line of kafka-topics.sh --describe.
struct DescribedPartition: Equatable {
    var partition: Int32
    var leader: Int32?
    var replicas: [Int32]
    var isr: [Int32]

    static func parse(_ describe: String, topic: String) -> [DescribedPartition] {
        describe.split(separator: "\n").compactMap { line -> DescribedPartition? in
            var fields: [String: String] = [:]
            for part in line.split(separator: "\t") {
                guard let colon = part.firstIndex(of: ":") else { continue }
                fields[part[..<colon].trimmingCharacters(in: .whitespaces)] = part[part.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            guard fields["Topic"] == topic, let p = fields["Partition"].flatMap({ Int32($0) }) else { return nil }
            func ids(_ s: String?) -> [Int32] { (s ?? "").split(separator: ",").compactMap { Int32($0) } }
            return DescribedPartition(partition: p, leader: fields["Leader"].flatMap { Int32($0) },
                                      replicas: ids(fields["Replicas"]), isr: ids(fields["Isr"]))
        }.sorted { $0.partition < $1.partition }
    }
}

/// `partition 0, leader 1, replicas: 1,2,3, isrs: 1,2,3` lines of `kcat -L` for one topic.
struct KcatPartition: Equatable {
    var partition: Int32
    var leader: Int32
    var replicas: [Int32]
    var isr: [Int32]

    static func parse(_ listing: String, topic: String) -> [KcatPartition] {
        var inTopic = false
        var out: [KcatPartition] = []
        for raw in listing.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("topic \"") {
                inTopic = line.hasPrefix("topic \"\(topic)\"")
                continue
            }
            guard inTopic, line.hasPrefix("partition ") else { continue }
            // partition 0, leader 1, replicas: 1,2,3, isrs: 1,2,3
            func after(_ key: String) -> String? {
                guard let r = line.range(of: key) else { return nil }
                return String(line[r.upperBound...])
            }
            func ids(_ s: String?) -> [Int32] {
                guard let s else { return [] }
                return s.split(separator: " ").first.map { $0.split(separator: ",").compactMap { Int32($0) } } ?? []
            }
            let p = Int32(line.dropFirst("partition ".count).prefix { $0.isNumber }) ?? -1
            let leader = after("leader ").flatMap { Int32($0.prefix { $0.isNumber || $0 == "-" }) } ?? -1
            out.append(KcatPartition(partition: p, leader: leader, replicas: ids(after("replicas: ")), isr: ids(after("isrs: "))))
        }
        return out.sorted { $0.partition < $1.partition }
    }
}

/// The `offset: N ... payload: V` lines of kafka-dump-log.sh --print-data-log for a partition
/// directory's segments (the header lines naming the files left out).
func dumpedMessages(partitionDir: String) throws -> [String] {
    let segments = try FileManager.default.contentsOfDirectory(atPath: partitionDir)
        .filter { $0.hasSuffix(".log") }.sorted().map { "\(partitionDir)/\($0)" }
    guard !segments.isEmpty else { throw WireError("no segment in \(partitionDir)") }
    let r = try Project.run("kafka-dump-log.sh", ["--files", segments.joined(separator: ","), "--print-data-log"], timeout: 60)
    guard r.exitCode == 0 else { throw WireError("kafka-dump-log.sh failed: \(r.summary)") }
    return r.stdout.split(separator: "\n").filter { $0.hasPrefix("offset: ") }.map(String.init)
}
