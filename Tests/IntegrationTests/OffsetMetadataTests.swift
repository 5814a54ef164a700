import Foundation
import XCTest
import ZooKeeper

/// OffsetCommit v1 metadata strings come back from OffsetFetch v1 (sarama's offset manager commits
/// one and reads it back), while `/consumers/<g>/offsets/<t>/<p>` stays the plain decimal that Burrow
/// and the offset checker read.
final class OffsetMetadataTests: IntegrationTestCase {
    private func commit(_ conn: WireConnection, version: Int16, group: String, topic: String,
                        offset: Int64, metadata: String) throws -> Int16 {
        var w = WireWriter()
        w.string(group)
        if version >= 1 { w.int32(-1); w.string("") } // generation id, consumer id
        w.int32(1); w.string(topic)
        w.int32(1); w.int32(0); w.int64(offset)
        if version >= 1 { w.int64(-1) } // timestamp
        w.string(metadata)
        let cid = try conn.sendRequest(apiKey: 8, apiVersion: version, body: w.bytes)
        var (rcid, r) = try conn.receiveResponse()
        XCTAssertEqual(rcid, cid)
        XCTAssertEqual(try r.int32(), 1); XCTAssertEqual(try r.string(), topic)
        XCTAssertEqual(try r.int32(), 1); XCTAssertEqual(try r.int32(), 0)
        return try r.int16()
    }

    private func fetch(_ conn: WireConnection, version: Int16, group: String, topic: String) throws -> (offset: Int64, metadata: String?, error: Int16) {
        var w = WireWriter()
        w.string(group)
        w.int32(1); w.string(topic); w.int32(1); w.int32(0)
        let cid = try conn.sendRequest(apiKey: 9, apiVersion: version, body: w.bytes)
        var (rcid, r) = try conn.receiveResponse()
        XCTAssertEqual(rcid, cid)
        XCTAssertEqual(try r.int32(), 1); XCTAssertEqual(try r.string(), topic)
        XCTAssertEqual(try r.int32(), 1); XCTAssertEqual(try r.int32(), 0)
        return (try r.int64(), try r.string(), try r.int16())
    }

    func testV1CommitMetadataIsReturnedAndOffsetNodeStaysDecimal() async throws {
        let c = try await startCluster()
        let topic = "meta", group = "meta-group"
        try c.createTopic(topic)
        try c.waitForLeaders(topic: topic)
        let conn = try c.broker.connect()
        defer { conn.close() }

        XCTAssertEqual(try commit(conn, version: 1, group: group, topic: topic, offset: 42, metadata: "sarama-meta {\"x\":1}"), 0)
        let f = try fetch(conn, version: 1, group: group, topic: topic)
        XCTAssertEqual(f.error, 0)
        XCTAssertEqual(f.offset, 42)
        XCTAssertEqual(f.metadata, "sarama-meta {\"x\":1}")

        let zk = try await ZooKeeperClient.connect(c.zkConnect, sessionTimeoutMs: 30000)
        let node = String(decoding: try await zk.get("/consumers/\(group)/offsets/\(topic)/0").data ?? [], as: UTF8.self)
        XCTAssertEqual(node, "42", "the offset znode must stay a plain decimal")
        let children = try await zk.children("/consumers/\(group)/offsets/\(topic)")
        XCTAssertEqual(children, ["0"], "only partitions under /offsets/<topic>")

        // v0 fetch returns no metadata (0.8.2's ZooKeeper-stored offsets); a v0 commit drops it.
        XCTAssertEqual(try fetch(conn, version: 0, group: group, topic: topic).metadata, "")
        XCTAssertEqual(try commit(conn, version: 0, group: group, topic: topic, offset: 50, metadata: "ignored"), 0)
        let g = try fetch(conn, version: 1, group: group, topic: topic)
        XCTAssertEqual(g.offset, 50)
        XCTAssertEqual(g.metadata, "")
        // A node written by something else (a 0.8 group consumer) makes older metadata read as "".
        XCTAssertEqual(try commit(conn, version: 1, group: group, topic: topic, offset: 60, metadata: "m60"), 0)
        XCTAssertEqual(try fetch(conn, version: 1, group: group, topic: topic).metadata, "m60")
        _ = try await zk.set("/consumers/\(group)/offsets/\(topic)/0", data: Array("61".utf8))
        let h = try fetch(conn, version: 1, group: group, topic: topic)
        XCTAssertEqual(h.offset, 61)
        XCTAssertEqual(h.metadata, "")
        await zk.close()
    }
}
