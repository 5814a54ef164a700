import Foundation
import KafkaTestSupport
import XCTest
import ZooKeeper

/// A broker whose ZooKeeper session expires (its link to ZooKeeper cut for longer than the
/// session timeout) re-registers with a new session, becomes controller again, and keeps
/// every acknowledged message.
final class SessionExpiryTests: XCTestCase {
    func testBrokerReRegistersAfterSessionExpiry() async throws {
        let cluster = try await TestCluster.start(brokerIds: [])
        defer { cluster.stop() }
        let proxy = try TCPProxy.start(to: cluster.zooKeeper.port)
        defer { proxy.stop() }
        let broker = try cluster.addBroker(id: 0, overrides: ["zookeeper.connect": proxy.connectString,
                                                             "zookeeper.session.timeout.ms": "2000"])
        try broker.start()
        try broker.waitUntilReady()
        try cluster.createTopic("expiry")

        let zk = try await ZooKeeperClient.connect(cluster.zkConnect, sessionTimeoutMs: 10000)
        defer { Task { await zk.close() } }
        guard let before = try await zk.exists("/brokers/ids/0") else { return XCTFail("broker not registered") }

        let conn = try broker.connect()
        try await waitForLeader(conn, topic: "expiry")
        for i in 0..<3 {
            let r = try conn.produce(topic: "expiry", messages: [(key: "k\(i)", value: "before-\(i)")])
            XCTAssertEqual(r.error, 0)
            XCTAssertEqual(r.offset, Int64(i))
        }

        // Cut the broker off ZooKeeper until the server expires its session.
        proxy.cut()
        let deadline = Date().addingTimeInterval(30)
        while try await zk.exists("/brokers/ids/0") != nil {
            XCTAssertLessThan(Date(), deadline, "the broker's ephemeral node never vanished")
            if Date() > deadline { return }
            try await Task.sleep(nanoseconds: 200_000_000)
        }
        proxy.heal()

        // It comes back by itself with a new session.
        var after: ZNodeStat?
        let back = Date().addingTimeInterval(30)
        while Date() < back {
            after = try await zk.exists("/brokers/ids/0")
            if after != nil, try await zk.exists("/controller") != nil { break }
            try await Task.sleep(nanoseconds: 200_000_000)
        }
        guard let after else { return XCTFail("broker did not re-register:\n\(broker.tail(40))") }
        XCTAssertNotEqual(after.ephemeralOwner, before.ephemeralOwner, "a new session owns the node")
        let (controller, _) = try await zk.get("/controller")
        XCTAssertTrue(String(decoding: controller ?? [], as: UTF8.self).contains("\"brokerid\":0"))
        XCTAssertTrue(broker.output().contains("re-registering broker 0"), broker.tail(40))

        // Still serving, nothing lost, offsets continue.
        let conn2 = try broker.connect()
        try await waitForLeader(conn2, topic: "expiry")
        let r = try conn2.produce(topic: "expiry", messages: [(key: "k3", value: "after-3")])
        XCTAssertEqual(r.error, 0, broker.tail(30))
        XCTAssertEqual(r.offset, 3)
        let all = try conn2.fetchAll(topic: "expiry")
        XCTAssertEqual(all.map(\.offset), [0, 1, 2, 3])
        XCTAssertEqual(all.map { $0.value ?? "" }, ["before-0", "before-1", "before-2", "after-3"])
    }

    private func waitForLeader(_ conn: WireConnection, topic: String) async throws {
        for _ in 0..<100 {
            if let t = try conn.metadata([topic]).topic(topic), t.error == 0, t.partitions.first?.leader == 0 { return }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        XCTFail("no leader for \(topic)")
    }
}
