import Foundation
import KafkaClient
import KafkaProtocol
import Synchronization
import XCTest
import ZooKeeper

/// Issue 11 item 5: 20 group consumers (the library's `ZookeeperConsumer`, default rebalance
/// settings) join one group on a 60-partition topic at once, then 10 of them leave at once. Each
/// time the group must converge within 10 s: every partition has one owner node in
/// `/consumers/<g>/owners`, held by a live member, range-balanced (3 each, then 6 each), every
/// member stable (none gave up with "can't rebalance after N retries"). Messages are produced
/// before and during each phase; none may be consumed twice (clean hand-offs commit before
/// releasing, so the uncommitted window is empty here) and all must be consumed. Five rounds.
final class RebalanceStormTests: IntegrationTestCase {
    static let partitions = 60
    static let members = 20
    static let leaving = 10
    static let rounds = 5
    static let limit = 10.0

    /// (partition, offset) → how many times it was delivered, over all members of a group.
    final class Deliveries: Sendable {
        private let counts = Mutex<[Int32: [Int64: Int]]>([:])
        func record(_ chunk: ArraySlice<ConsumedMessage>) {
            guard !chunk.isEmpty else { return }
            counts.withLock { c in for m in chunk { c[m.partition, default: [:]][m.offset, default: 0] += 1 } }
        }
        var duplicates: [String] {
            counts.withLock { c in
                c.flatMap { p, offs in offs.filter { $0.value > 1 }.map { "p\(p)@\($0.key)x\($0.value)" } }.sorted()
            }
        }
        func delivered(_ p: Int32) -> Int { counts.withLock { $0[p]?.count ?? 0 } }
    }

    struct Member: Sendable {
        let consumer: ZookeeperConsumer
        let loop: Task<Void, Never>
    }

    private func owners(_ zk: ZooKeeperClient, group: String, topic: String) async -> [Int32: String] {
        var out: [Int32: String] = [:]
        for p in (try? await zk.children("/consumers/\(group)/owners/\(topic)")) ?? [] {
            if let (data, _) = try? await zk.get("/consumers/\(group)/owners/\(topic)/\(p)"), let id = Int32(p) {
                out[id] = String(decoding: data ?? [], as: UTF8.self)
            }
        }
        return out
    }

    /// Polls until every partition is owned by one of `live` (each owning `each`) and every live
    /// member is stable with exactly what ZooKeeper says it owns. Returns the seconds it took
    /// from `since`; fails at once when a member gave up.
    private func converge(_ zk: ZooKeeperClient, group: String, topic: String, live: [ZookeeperConsumer],
                          each: Int, since: Date, what: String) async throws -> Double {
        let ids = Set(live.map(\.consumerId))
        let deadline = since.addingTimeInterval(Self.limit + 20)   // measured against the limit below; waits longer to report
        var last = ""
        while Date() < deadline {
            for c in live {
                let m = await c.membership
                if m.phase == .gaveUp || m.phase == .failed {
                    XCTFail("\(what): \(c.consumerId) gave up (phase \(m.phase))")
                    throw WireError("\(what): a member gave up")
                }
            }
            let o = await owners(zk, group: group, topic: topic)
            let byOwner = Dictionary(grouping: o.keys, by: { String(o[$0]!.dropLast(2)) })   // "<consumerId>-0"
            var ok = o.count == Self.partitions && Set(byOwner.keys) == ids && byOwner.values.allSatisfy { $0.count == each }
            if ok {
                for c in live {
                    let m = await c.membership
                    let mine = Set(m.owned.keys.map(\.partition))
                    if m.phase != .stable || mine != Set(byOwner[c.consumerId] ?? []) { ok = false; break }
                }
            }
            if ok { return Date().timeIntervalSince(since) }
            last = "owners \(o.count)/\(Self.partitions), \(byOwner.count) owners, sizes \(byOwner.values.map(\.count).sorted())"
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        XCTFail("\(what): no convergence after \(Self.limit + 20) s (\(last))")
        throw WireError("\(what): no convergence")
    }

    private func produce(_ c: TestCluster, topic: String, round: Int, batch: Int, count: Int) throws {
        let conn = try c.broker.connect()
        defer { conn.close() }
        for p in 0..<Self.partitions {
            let r = try conn.produce(topic: topic, partition: Int32(p), messages: (0..<count).map { (nil, "r\(round)-b\(batch)-p\(p)-\($0)") })
            XCTAssertEqual(r.error, 0)
        }
    }

    private static func start(_ zkConnect: String, group: String, topic: String, deliveries: Deliveries) async throws -> Member {
        let cfg = try ZookeeperConsumerConfig(properties: ["zookeeper.connect": zkConnect, "group.id": group,
                                                           "auto.offset.reset": "smallest", "auto.commit.interval.ms": "1000"])
        let consumer = try await ZookeeperConsumer.connect(cfg)
        try await consumer.subscribe(topics: [topic: 1])
        let loop = Task {
            while !Task.isCancelled {
                guard let chunk = try? await consumer.nextChunk(timeoutMs: 200) else { return }
                deliveries.record(chunk)
            }
        }
        return Member(consumer: consumer, loop: loop)
    }

    private static func stop(_ m: Member) async {
        m.loop.cancel()
        _ = await m.loop.value
        await m.consumer.shutdown()
    }

    func testStormConvergesFiveTimes() async throws {
        let c = try await startCluster()
        let topic = "storm"
        try c.createTopic(topic, partitions: Self.partitions)
        _ = try c.waitForLeaders(topic: topic, partitions: Self.partitions)
        let zk = try await ZooKeeperClient.connect(c.zkConnect, sessionTimeoutMs: 30000)
        defer { Task { await zk.close() } }
        var produced = 0
        var report: [String] = []

        for round in 1...Self.rounds {
            let group = "storm-\(round)"
            let deliveries = Deliveries()
            try produce(c, topic: topic, round: round, batch: 0, count: 20)
            produced += 20

            // 20 join at once.
            let joinStart = Date()
            let zkConnect = c.zkConnect
            var members = try await withThrowingTaskGroup(of: Member.self) { g in
                for _ in 0..<Self.members { g.addTask { try await Self.start(zkConnect, group: group, topic: topic, deliveries: deliveries) } }
                var out: [Member] = []
                for try await m in g { out.append(m) }
                return out
            }
            try produce(c, topic: topic, round: round, batch: 1, count: 10)
            produced += 10
            let join = try await converge(zk, group: group, topic: topic, live: members.map(\.consumer),
                                          each: Self.partitions / Self.members, since: joinStart, what: "round \(round) join")

            // 10 leave at once, while messages keep coming.
            try produce(c, topic: topic, round: round, batch: 2, count: 10)
            produced += 10
            let leavers = Array(members.prefix(Self.leaving))
            members.removeFirst(Self.leaving)
            let leaveStart = Date()
            await withTaskGroup(of: Void.self) { g in
                for m in leavers { g.addTask { await Self.stop(m) } }
            }
            try produce(c, topic: topic, round: round, batch: 3, count: 10)
            produced += 10
            let leave = try await converge(zk, group: group, topic: topic, live: members.map(\.consumer),
                                           each: Self.partitions / (Self.members - Self.leaving), since: leaveStart, what: "round \(round) leave")

            // Everything produced so far is consumed, nothing twice.
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline, (0..<Self.partitions).contains(where: { deliveries.delivered(Int32($0)) < produced }) {
                try await Task.sleep(nanoseconds: 100_000_000)
            }
            let missing = (0..<Self.partitions).filter { deliveries.delivered(Int32($0)) < produced }
            XCTAssertEqual(missing, [], "round \(round): partitions not fully consumed")
            XCTAssertEqual(deliveries.duplicates, [], "round \(round): messages consumed twice")
            XCTAssertLessThanOrEqual(join, Self.limit, "round \(round): 20 joining took \(join) s")
            XCTAssertLessThanOrEqual(leave, Self.limit, "round \(round): 10 leaving took \(leave) s")
            let line = String(format: "round %d: 20 join -> converged in %.2f s; 10 leave -> converged in %.2f s", round, join, leave)
            report.append(line)
            print("RebalanceStorm \(line)")

            await withTaskGroup(of: Void.self) { g in
                for m in members { g.addTask { await Self.stop(m) } }
            }
        }
        print("RebalanceStorm summary:\n" + report.joined(separator: "\n"))
    }
}
