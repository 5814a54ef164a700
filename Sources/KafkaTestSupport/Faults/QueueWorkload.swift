import Synchronization
import Foundation
import KafkaClient
import KafkaProtocol
import NIOCore
import ZooKeeper

#if canImport(Glibc)
import Glibc
#endif

/// Monotonic seconds (CLOCK_MONOTONIC), the one clock of a campaign.
public func faultClock() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

struct FaultTimeout: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out: \(what)" }
}

/// Once-only latch for racing an operation against a timer.
final class FaultOnce: @unchecked Sendable {
    private let state = Mutex(false)
    func claim() -> Bool { state.withLock { done in defer { done = true }; return !done } }
}

/// Runs `op`, giving up after `seconds` (then `onTimeout` runs, e.g. closing the connection the
/// operation waits on). The abandoned operation keeps running in the background until it ends;
/// `onLate` gets its value if it succeeds after the timeout (to close a late connection).
func withFaultTimeout<T: Sendable>(_ seconds: Double, _ what: String,
                                   onTimeout: @escaping @Sendable () -> Void = {},
                                   onLate: @escaping @Sendable (T) -> Void = { _ in },
                                   _ op: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (cont: CheckedContinuation<T, Error>) in
        let once = FaultOnce()
        let timer = Task {
            try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
            if Task.isCancelled { return }
            if once.claim() {
                onTimeout()
                cont.resume(throwing: FaultTimeout(what: what))
            }
        }
        Task {
            do {
                let v = try await op()
                timer.cancel()
                if once.claim() { cont.resume(returning: v) } else { onLate(v) }
            } catch {
                timer.cancel()
                if once.claim() { cont.resume(throwing: error) }
            }
        }
    }
}

/// One produce attempt of the queue workload, as the client saw it.
public struct WriteAttempt: Sendable {
    public enum Outcome: Sendable, Equatable {
        /// Acknowledged at this offset.
        case ok(Int64)
        /// The broker answered with an error that means "not appended" (e.g. NotLeader, NotEnoughReplicas).
        case failed(ErrorCode)
        /// Maybe appended: a timeout, a dropped connection, or an error after the append (RequestTimedOut, NotEnoughReplicasAfterAppend).
        case unknown(String)
    }
    public var topic: String
    public var partition: Int32
    public var value: String
    public var start: Double
    public var end: Double
    public var broker: Int
    public var outcome: Outcome
    public var acknowledged: Bool { if case .ok = outcome { return true } else { return false } }
}

/// Where the client thinks each partition's leader is: Metadata asked of every broker (each with a
/// short timeout), and the leader most of them name. An isolated old leader's stale answer loses
/// the vote once the others know better.
final class LeaderView: @unchecked Sendable {
    let endpoints: [Int: String]   // broker id -> address
    let port: Int
    let topics: [String]
    private let state = Mutex<(leaders: [String: Int], isr: [String: [Int]], refreshedAt: Double)>(([:], [:], 0))

    init(endpoints: [Int: String], port: Int, topics: [String]) {
        self.endpoints = endpoints
        self.port = port
        self.topics = topics
    }

    static func key(_ topic: String, _ p: Int32) -> String { "\(topic)/\(p)" }

    func leader(_ topic: String, _ p: Int32) -> Int? { state.withLock { $0.leaders[Self.key(topic, p)] } }

    /// Metadata from every broker that answers within `timeout` seconds.
    func ask(timeout: Double = 1.5) async -> [Int: MetadataResponse] {
        await withTaskGroup(of: (Int, MetadataResponse?).self) { group in
            for (id, host) in endpoints {
                let port = self.port, topics = self.topics
                group.addTask {
                    let md = try? await withFaultTimeout(timeout, "metadata from broker \(id)") { () -> MetadataResponse in
                        let c = try await BrokerConnection.connect(host: host, port: port, clientId: "fault-checker-md")
                        defer { Task { await c.close() } }
                        return try await withFaultTimeout(timeout, "metadata", onTimeout: { Task { await c.close() } }) {
                            try await c.metadata(topics)
                        }
                    }
                    return (id, md)
                }
            }
            var all: [Int: MetadataResponse] = [:]
            for await (id, md) in group { if let md { all[id] = md } }
            return all
        }
    }

    /// Refreshes leaders by vote; at most once per `minInterval` seconds unless forced.
    func refresh(minInterval: Double = 0.2) async {
        let now = faultClock()
        let due = state.withLock { s -> Bool in
            if now - s.refreshedAt < minInterval { return false }
            s.refreshedAt = now
            return true
        }
        guard due else { return }
        let answers = await ask()
        var votes: [String: [Int: Int]] = [:]
        var isr: [String: [Int]] = [:]
        for (_, md) in answers {
            for t in md.topics where t.error == .none {
                for p in t.partitions where p.leader >= 0 {
                    votes[Self.key(t.topic, p.partition), default: [:]][Int(p.leader), default: 0] += 1
                    isr[Self.key(t.topic, p.partition)] = p.isr.map(Int.init)
                }
            }
        }
        let leaders = votes.mapValues { v in v.max { a, b in a.value < b.value || (a.value == b.value && a.key > b.key) }!.key }
        state.withLock {
            for (k, l) in leaders { $0.leaders[k] = l }
            for (k, i) in isr { $0.isr[k] = i }
            $0.refreshedAt = faultClock()
        }
    }
}

/// Jepsen's queue workload on Kafka: one writer per partition of each topic, writing unique values
/// one at a time (one message per Produce request) with the topic's acks, recording every attempt.
public final class QueueWorkload: @unchecked Sendable {
    public struct TopicSpec: Sendable {
        public var name: String
        public var acks: Int16
        public init(name: String, acks: Int16) { self.name = name; self.acks = acks }
    }

    let topics: [TopicSpec]
    let partitions: Int
    let view: LeaderView
    let ratePerWriter: Double
    let requestTimeoutMs: Int32
    let clientTimeout: Double
    private let stopped = Mutex(false)
    private let records = Mutex<[String: [WriteAttempt]]>([:])   // per writer key
    private var tasks: [Task<Void, Never>] = []

    public init(topics: [TopicSpec], partitions: Int, endpoints: [Int: String], port: Int,
                ratePerWriter: Double = 20, requestTimeoutMs: Int32 = 3000) {
        self.topics = topics
        self.partitions = partitions
        self.view = LeaderView(endpoints: endpoints, port: port, topics: topics.map(\.name))
        self.ratePerWriter = ratePerWriter
        self.requestTimeoutMs = requestTimeoutMs
        self.clientTimeout = Double(requestTimeoutMs) / 1000 + 2
    }

    public func start() {
        for t in topics {
            for p in 0..<partitions {
                let spec = t, part = Int32(p)
                tasks.append(Task { await self.writer(spec, part) })
            }
        }
    }

    public func stop() async {
        stopped.withLock { $0 = true }
        for t in tasks { await t.value }
        tasks = []
    }

    /// Every attempt so far.
    public func attempts() -> [WriteAttempt] {
        records.withLock { $0.values.flatMap { $0 } }
    }

    /// The end time of the first acknowledged write of each writer of `topic` that ended at or after `since`.
    public func firstAck(topic: String, since: Double) -> [Int32: Double] {
        records.withLock { all in
            var out: [Int32: Double] = [:]
            for p in 0..<partitions {
                let key = LeaderView.key(topic, Int32(p))
                if let first = all[key]?.first(where: { $0.acknowledged && $0.end >= since }) {
                    out[Int32(p)] = first.end
                }
            }
            return out
        }
    }

    private func writer(_ spec: TopicSpec, _ p: Int32) async {
        let key = LeaderView.key(spec.name, p)
        var seq = 0
        var conn: BrokerConnection?
        var connBroker = -1
        let interval = 1 / ratePerWriter
        while !stopped.withLock({ $0 }) {
            let tick = faultClock()
            if conn == nil {
                if view.leader(spec.name, p) == nil { await view.refresh() }
                guard let leader = view.leader(spec.name, p), let host = view.endpoints[leader] else {
                    try? await Task.sleep(nanoseconds: 100_000_000)
                    await view.refresh()
                    continue
                }
                do {
                    conn = try await withFaultTimeout(2, "connect to broker \(leader)", onLate: { c in Task { await c.close() } }) {
                        try await BrokerConnection.connect(host: host, port: self.view.port, clientId: "fault-checker-\(key)")
                    }
                    connBroker = leader
                } catch {
                    try? await Task.sleep(nanoseconds: 100_000_000)
                    await view.refresh()
                    continue
                }
            }
            let c = conn!
            let value = "\(spec.name)|\(p)|\(seq)"
            seq += 1
            var set = ByteBufferAllocator().buffer(capacity: 64)
            set.writeBytes((try? MessageSetBuilder.build([(key: nil, value: Array(value.utf8))])) ?? [])
            let req = ProduceRequest(requiredAcks: spec.acks, timeoutMs: requestTimeoutMs,
                                     topics: [.init(topic: spec.name, partitions: [.init(partition: p, messageSet: set)])])
            let start = faultClock()
            var outcome: WriteAttempt.Outcome
            do {
                let resp = try await withFaultTimeout(clientTimeout, "produce", onTimeout: { Task { await c.close() } }) {
                    try await c.produce(req)
                }
                let r = resp?.topics.first?.partitions.first
                switch r?.error {
                case .some(.none): outcome = .ok(r!.offset)
                case .some(.requestTimedOut), .some(.notEnoughReplicasAfterAppend), .some(.unknown), nil:
                    outcome = .unknown("error \(r.map { "\($0.error)" } ?? "empty response")")
                case .some(let e): outcome = .failed(e)
                }
            } catch {
                outcome = .unknown("\(error)")
            }
            let attempt = WriteAttempt(topic: spec.name, partition: p, value: value, start: start, end: faultClock(),
                                       broker: connBroker, outcome: outcome)
            records.withLock { $0[key, default: []].append(attempt) }
            if !attempt.acknowledged {
                if case .unknown = outcome { await c.close(); conn = nil }
                if case .failed(let e) = outcome, e == .notLeaderForPartition || e == .unknownTopicOrPartition || e == .leaderNotAvailable {
                    await c.close(); conn = nil
                }
                await view.refresh()
                if conn != nil, view.leader(spec.name, p) != connBroker { await c.close(); conn = nil }
                try? await Task.sleep(nanoseconds: 50_000_000)
                continue
            }
            let wait = tick + interval - faultClock()
            if wait > 0 { try? await Task.sleep(nanoseconds: UInt64(wait * 1e9)) }
        }
        if let conn { await conn.close() }
    }

    /// Reads every partition of `topic` from its leader from offset 0 up to the high watermark.
    public func drain(topic: String) async throws -> [Int32: (highWatermark: Int64, messages: [(offset: Int64, value: String)])] {
        var out: [Int32: (highWatermark: Int64, messages: [(offset: Int64, value: String)])] = [:]
        for p in 0..<Int32(partitions) {
            var lastError: Error?
            var done = false
            for _ in 0..<20 where !done {
                do {
                    await view.refresh(minInterval: 0)
                    guard let leader = view.leader(topic, p), let host = view.endpoints[leader] else {
                        throw TestSupportError("no leader for \(topic) partition \(p)")
                    }
                    let consumer = try await SimpleConsumer.connect(host: host, port: view.port, clientId: "fault-checker-drain")
                    defer { Task { await consumer.close() } }
                    var offset: Int64 = 0
                    var hw: Int64 = -1
                    var msgs: [(offset: Int64, value: String)] = []
                    while true {
                        let from = offset
                        let r = try await withFaultTimeout(10, "fetch") {
                            try await consumer.fetch(TopicPartition(topic, p), offset: from, maxBytes: 1 << 20, maxWaitMs: 0)
                        }
                        guard r.error == .none else { throw TestSupportError("fetch \(topic)-\(p) at \(offset): \(r.error)") }
                        hw = r.highWatermark
                        for m in r.messages { msgs.append((m.offset, String(decoding: m.value ?? [], as: UTF8.self))) }
                        if r.nextOffset >= hw || r.messages.isEmpty { break }
                        offset = r.nextOffset
                    }
                    out[p] = (hw, msgs)
                    done = true
                } catch {
                    lastError = error
                    try? await Task.sleep(nanoseconds: 500_000_000)
                }
            }
            if !done { throw lastError ?? TestSupportError("cannot drain \(topic) partition \(p)") }
        }
        return out
    }
}
