import Foundation
import KafkaTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Issue 7, hostile input: requests a client can send must not make the broker trap, exit or grow
/// without bound (items 1 and 11).
final class HostileInputTests: IntegrationTestCase {
    /// Writes `count` messages of `valueSize` bytes to `topic`/`partition`, `perRequest` at a time.
    private func fill(_ conn: WireConnection, topic: String, partition: Int32 = 0, count: Int, valueSize: Int,
                      perRequest: Int = 20) throws {
        let value = String(repeating: "v", count: valueSize)
        var left = count
        while left > 0 {
            let n = min(left, perRequest)
            let r = try conn.produce(topic: topic, partition: partition,
                                     messages: Array(repeating: (key: nil, value: value), count: n))
            XCTAssertEqual(r.error, 0, "produce to \(topic)/\(partition)")
            left -= n
        }
    }

    /// A v0 Fetch body: (topic, partition, offset, maxBytes) entries, one topic entry per element.
    private func fetchBody(_ entries: [(topic: String, partitions: [(partition: Int32, offset: Int64, maxBytes: Int32)])],
                           maxWaitMs: Int32 = 0, minBytes: Int32 = 0) -> [UInt8] {
        var w = WireWriter()
        w.int32(-1)
        w.int32(maxWaitMs)
        w.int32(minBytes)
        w.int32(Int32(entries.count))
        for e in entries {
            w.string(e.topic)
            w.int32(Int32(e.partitions.count))
            for p in e.partitions {
                w.int32(p.partition)
                w.int64(p.offset)
                w.int32(p.maxBytes)
            }
        }
        return w.bytes
    }

    private struct FetchedPartition {
        var topic: String
        var partition: Int32
        var error: Int16
        var highWatermark: Int64
        var messageSet: [UInt8]
    }

    private func decodeFetch(_ reader: WireReader) throws -> [FetchedPartition] {
        var r = reader
        var out: [FetchedPartition] = []
        for _ in 0..<Int(try r.int32()) {
            let topic = try r.string() ?? ""
            for _ in 0..<Int(try r.int32()) {
                let p = try r.int32()
                let e = try r.int16()
                let hw = try r.int64()
                out.append(FetchedPartition(topic: topic, partition: p, error: e, highWatermark: hw, messageSet: try r.bytesField() ?? []))
            }
        }
        XCTAssertEqual(r.remaining, 0, "bytes after the fetch response's last partition")
        return out
    }

    // MARK: Item 1

    /// Item 1: a Fetch naming one partition thousands of times, each with a max bytes above the
    /// partition's size, added up to more than 2^31 bytes of response and trapped in `Int32(size)`.
    /// (The request: 22 entries × 100 MB over a 110 MB partition; here 2,100 entries over
    /// a 1.1 MB partition cross 2 GB the same way.) Kafka 0.8.2 reads the partitions into a Map:
    /// one answer per partition, with the last entry's offset and max bytes.
    func testItem1_DuplicatePartitionFetchOverflowDoesNotCrash() async throws {
        let c = try await startCluster(brokerIds: [0])
        try c.createTopic("dup")
        try c.waitForLeaders(topic: "dup")
        let conn = try c.broker.connect(timeout: 60)
        try fill(conn, topic: "dup", count: 110, valueSize: 10_000)

        // 2,099 entries at offset 0 and a last one at offset 3, each allowing 2 MB.
        var parts = Array(repeating: (partition: Int32(0), offset: Int64(0), maxBytes: Int32(2 << 20)), count: 2099)
        parts.append((partition: 0, offset: 3, maxBytes: 2 << 20))
        let body = fetchBody([(topic: "dup", partitions: parts)])
        XCTAssertLessThan(body.count, 40_000)
        _ = try conn.sendRequest(apiKey: 1, correlationId: 7, body: body)
        let (cid, reader) = try conn.receiveResponse()
        XCTAssertEqual(cid, 7)
        let fetched = try decodeFetch(reader)
        XCTAssertEqual(fetched.count, 1, "duplicates collapse to one partition entry, as in 0.8.2")
        XCTAssertEqual(fetched.first?.error, 0)
        XCTAssertEqual(fetched.first?.highWatermark, 110)
        let messages = try MessageSetCodec.decode(fetched.first?.messageSet ?? [])
        XCTAssertEqual(messages.first?.offset, 3, "the last entry's offset wins")
        XCTAssertEqual(messages.count, 107)

        // The same topic in two topic entries, partition named in both: also one entry.
        let body2 = fetchBody([(topic: "dup", partitions: [(0, 0, 1 << 20)]), (topic: "dup", partitions: [(0, 100, 1 << 20)])])
        _ = try conn.sendRequest(apiKey: 1, correlationId: 8, body: body2)
        let f2 = try decodeFetch(try conn.receiveResponse().body)
        XCTAssertEqual(f2.map(\.partition), [0])
        XCTAssertEqual(try MessageSetCodec.decode(f2.first?.messageSet ?? []).first?.offset, 100)

        XCTAssertTrue(c.broker.isRunning, "the broker must not exit")
        XCTAssertFalse(try c.broker.connect().metadata().brokers.isEmpty)
    }

    /// Item 1, the other way to cross 2 GB: distinct partitions whose reads add up past the
    /// response bound. With the bound lowered to 700,000 bytes (test-only environment variable),
    /// the first partitions are answered in full, the one that crosses the bound partly, the rest
    /// with an empty message set and no error; every partition is still listed.
    func testItem1_FetchResponseIsBoundedAcrossPartitions() async throws {
        setenv("KAFKA_FETCH_RESPONSE_MAX_BYTES", "700000", 1)
        defer { unsetenv("KAFKA_FETCH_RESPONSE_MAX_BYTES") }
        let c = try await startCluster(brokerIds: [0])
        unsetenv("KAFKA_FETCH_RESPONSE_MAX_BYTES")
        try c.createTopic("wide", partitions: 4)
        try c.waitForLeaders(topic: "wide", partitions: 4)
        let conn = try c.broker.connect(timeout: 30)
        for p in Int32(0)..<4 { try fill(conn, topic: "wide", partition: p, count: 30, valueSize: 10_000) }

        let body = fetchBody([(topic: "wide", partitions: (0..<4).map { (partition: Int32($0), offset: 0, maxBytes: 1 << 20) })])
        _ = try conn.sendRequest(apiKey: 1, correlationId: 1, body: body)
        let fetched = try decodeFetch(try conn.receiveResponse().body)
        XCTAssertEqual(fetched.map(\.partition), [0, 1, 2, 3])
        XCTAssertEqual(fetched.map(\.error), [0, 0, 0, 0])
        XCTAssertEqual(fetched.map(\.highWatermark), [30, 30, 30, 30])
        let sizes = fetched.map(\.messageSet.count)
        let total = sizes.reduce(0, +)
        XCTAssertLessThanOrEqual(total + 8 + 2 + 4 + 4 + 4 * 18, 700_000, "response within the bound: \(sizes)")
        XCTAssertEqual(try MessageSetCodec.decode(fetched[0].messageSet).count, 30)
        XCTAssertEqual(try MessageSetCodec.decode(fetched[1].messageSet).count, 30)
        XCTAssertGreaterThan(sizes[2], 0, "the partition crossing the bound gets what fits")
        XCTAssertLessThan(sizes[2], sizes[0])
        XCTAssertEqual(sizes[3], 0, "past the bound: an empty message set")
        // Fetching the rest on its own works.
        let rest = try conn.fetch(topic: "wide", partition: 3, offset: 0)
        XCTAssertEqual(rest.error, 0)
        XCTAssertEqual(rest.messages.count, 30)
        XCTAssertTrue(c.broker.isRunning)
    }
}
