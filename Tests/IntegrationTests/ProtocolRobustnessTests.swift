import Foundation
import KafkaTestSupport
import XCTest

/// Malformed input closes only the offending connection; the broker keeps serving the others.
/// Responses come back strictly in request order on each connection.
final class ProtocolRobustnessTests: IntegrationTestCase {
    /// Sends `bytes` on a fresh connection and asserts the broker closes it, while `witness`
    /// (opened before) and a new connection still get Metadata answers.
    private func assertClosesOnly(_ c: TestCluster, sending bytes: [UInt8], _ what: String,
                                  file: StaticString = #filePath, line: UInt = #line) throws {
        let witness = try c.broker.connect()
        XCTAssertFalse(try witness.metadata().brokers.isEmpty, file: file, line: line)

        let bad = try WireConnection(port: c.broker.port, timeout: 10)
        try bad.sendRaw(bytes)
        let (closed, detail) = bad.waitForClose()
        XCTAssertTrue(closed, "\(what): the broker must close the connection (\(detail))", file: file, line: line)

        XCTAssertFalse(try witness.metadata().brokers.isEmpty, "\(what): another connection must keep working",
                       file: file, line: line)
        XCTAssertFalse(try c.broker.connect().metadata().brokers.isEmpty, "\(what): new connections must work",
                       file: file, line: line)
        XCTAssertTrue(c.broker.isRunning, "\(what): the broker must not exit", file: file, line: line)
    }

    private func frame(_ body: [UInt8]) -> [UInt8] {
        var w = WireWriter()
        w.int32(Int32(body.count))
        w.raw(body)
        return w.bytes
    }

    func testGarbageFrameClosesThatConnectionOnly() async throws {
        let c = try await startCluster(brokerIds: [0])
        // A frame too short for a request header.
        try assertClosesOnly(c, sending: frame([0xFF, 0x13]), "a 2-byte frame")
        // A Metadata header whose body claims 1,000,000 topics in a 20-byte frame.
        var w = WireWriter()
        w.int16(3); w.int16(0); w.int32(9); w.string("x")
        w.int32(1_000_000); w.int16(5); w.raw([0x41, 0x42])
        try assertClosesOnly(c, sending: frame(w.bytes), "a truncated Metadata body")
        // Random bytes.
        var rng = SystemRandomNumberGenerator()
        let noise = (0..<64).map { _ in UInt8.random(in: 0...255, using: &rng) }
        try assertClosesOnly(c, sending: frame(noise), "64 random bytes")
    }

    func testOversizeOrNegativeSizePrefixClosesTheConnection() async throws {
        let c = try await startCluster(brokerIds: [0], overrides: ["socket.request.max.bytes": "1048576"])
        var big = WireWriter()
        big.int32(1_048_577)     // one byte over socket.request.max.bytes
        big.raw([0, 3, 0, 0])
        try assertClosesOnly(c, sending: big.bytes, "a size prefix over socket.request.max.bytes")
        var huge = WireWriter()
        huge.int32(Int32.max)
        try assertClosesOnly(c, sending: huge.bytes, "a size prefix of 2^31-1")
        var negative = WireWriter()
        negative.int32(-5)
        try assertClosesOnly(c, sending: negative.bytes, "a negative size prefix")
    }

    func testUnknownApiKeyOrVersionClosesTheConnection() async throws {
        let c = try await startCluster(brokerIds: [0])
        for (key, version, what) in [(Int16(99), Int16(0), "api key 99"), (Int16(16), Int16(0), "ListGroups (key 16)"),
                                     (Int16(11), Int16(5), "JoinGroup v5"),
                                     (Int16(3), Int16(5), "Metadata v5"), (Int16(-1), Int16(0), "api key -1"),
                                     // One above each range served (kafka-python 2.0.2's versions are the maxima).
                                     (Int16(0), Int16(3), "Produce v3"), (Int16(1), Int16(3), "Fetch v3"),
                                     (Int16(3), Int16(2), "Metadata v2"), (Int16(8), Int16(3), "OffsetCommit v3")] {
            var w = WireWriter()
            w.int16(key); w.int16(version); w.int32(42); w.string("probe")
            w.int32(0)
            try assertClosesOnly(c, sending: frame(w.bytes), what)
        }
        // Malformed bodies of the newer versions served (kafka-python 2.0.2's) close the connection too.
        var shortCommit = WireWriter()
        shortCommit.string("g"); shortCommit.int32(1); shortCommit.string("m")   // no retention_time
        var hugeTopics = WireWriter()
        hugeTopics.int32(Int32.max)
        var truncatedProduce = WireWriter()
        truncatedProduce.int16(1); truncatedProduce.int32(1000); truncatedProduce.int32(1); truncatedProduce.string("t")
        truncatedProduce.int32(1); truncatedProduce.int32(0); truncatedProduce.int32(500)  // message set shorter than its size
        for (key, version, body, what) in [(Int16(3), Int16(1), [UInt8](repeating: 0xFE, count: 4), "Metadata v1 with count -2"),
                                           (Int16(3), Int16(1), hugeTopics.bytes, "Metadata v1 with a huge count"),
                                           (Int16(8), Int16(2), shortCommit.bytes, "OffsetCommit v2 without retention_time"),
                                           (Int16(0), Int16(2), truncatedProduce.bytes, "Produce v2 with a truncated set"),
                                           (Int16(1), Int16(2), [0, 0, 0], "Fetch v2 truncated")] {
            var w = WireWriter()
            w.int16(key); w.int16(version); w.int32(43); w.string("probe")
            w.raw(body)
            try assertClosesOnly(c, sending: frame(w.bytes), what)
        }
    }

    func testPipelinedRequestsAreAnsweredInOrder() async throws {
        let c = try await startCluster(brokerIds: [0])
        try c.createTopic("order")
        try c.waitForLeaders(topic: "order")
        let conn = try c.broker.connect(timeout: 15)

        // A long-poll fetch on an empty partition, then requests that could be answered at once:
        // their responses must wait for the fetch's.
        var sent: [Int32] = []
        sent.append(try conn.sendRequest(apiKey: 1, correlationId: 100, body: WireConnection.fetchBody(
            topic: "order", partition: 0, offset: 0, maxBytes: 1 << 20, maxWaitMs: 700, minBytes: 1)))
        sent.append(try conn.sendRequest(apiKey: 3, correlationId: 101, body: WireConnection.metadataBody(["order"])))
        // acks=0: no response at all.
        _ = try conn.sendRequest(apiKey: 0, correlationId: 102, body: WireConnection.produceBody(
            topic: "order", partition: 0, messageSet: MessageSetCodec.encode([(key: nil, value: "fire and forget")]),
            acks: 0, timeoutMs: 1000))
        sent.append(try conn.sendRequest(apiKey: 0, correlationId: 103, body: WireConnection.produceBody(
            topic: "order", partition: 0, messageSet: MessageSetCodec.encode([(key: "k", value: "acked")]),
            acks: 1, timeoutMs: 5000)))
        for i in 0..<10 {
            sent.append(try conn.sendRequest(apiKey: 3, correlationId: 200 + Int32(i), body: WireConnection.metadataBody([])))
        }
        var received: [Int32] = []
        for _ in sent { received.append(try conn.receiveResponse().correlationId) }
        XCTAssertEqual(received, sent, "responses must come back in request order, and acks=0 gets none")

        // The same with correlation id 0 on every request, as pykafka does.
        for _ in 0..<5 { _ = try conn.sendRequest(apiKey: 2, correlationId: 0, body: offsetsBody("order")) }
        for _ in 0..<5 {
            var r = try conn.receiveResponse()
            XCTAssertEqual(r.correlationId, 0)
            XCTAssertEqual(try r.body.int32(), 1)   // one topic in each Offsets response
        }
        let all = try conn.fetchAll(topic: "order")
        XCTAssertEqual(all.map(\.value), ["fire and forget", "acked"])
    }

    private func offsetsBody(_ topic: String) -> [UInt8] {
        var w = WireWriter()
        w.int32(-1); w.int32(1); w.string(topic); w.int32(1); w.int32(0); w.int64(-1); w.int32(1)
        return w.bytes
    }

    func testErrorCodes() async throws {
        let c = try await startCluster(brokerIds: [0], overrides: ["auto.create.topics.enable": "false",
                                                                   "message.max.bytes": "10000"])
        try c.createTopic("codes")
        try c.waitForLeaders(topic: "codes")
        let conn = try c.broker.connect()

        // 3 UnknownTopicOrPartition: unknown topic (no auto-create), unknown partition.
        let md = try conn.metadata(["nosuchtopic"])
        XCTAssertEqual(md.topic("nosuchtopic")?.error, 3)
        XCTAssertEqual(try conn.produce(topic: "nosuchtopic", messages: [(key: nil, value: "x")]).error, 3)
        XCTAssertEqual(try conn.produce(topic: "codes", partition: 7, messages: [(key: nil, value: "x")]).error, 3)
        XCTAssertEqual(try conn.fetch(topic: "nosuchtopic", offset: 0).error, 3)

        // 1 OffsetOutOfRange.
        XCTAssertEqual(try conn.produce(topic: "codes", messages: [(key: nil, value: "one")]).error, 0)
        XCTAssertEqual(try conn.fetch(topic: "codes", offset: 1000).error, 1)
        // Offsets: earliest 0, latest 1.
        XCTAssertEqual(try conn.offsets(topic: "codes", time: -2).offsets, [0])
        XCTAssertEqual(try conn.offsets(topic: "codes", time: -1).offsets, [1])

        // 2 InvalidMessage (bad CRC) and 10 MessageSizeTooLarge; neither is appended.
        XCTAssertEqual(try conn.produce(topic: "codes", messages: [(key: nil, value: "bad")], corruptCRC: true).error, 2)
        let big = String(repeating: "x", count: 20_000)
        XCTAssertEqual(try conn.produce(topic: "codes", messages: [(key: nil, value: big)]).error, 10)
        XCTAssertEqual(try conn.fetchAll(topic: "codes").map(\.value), ["one"])
        XCTAssertEqual(try conn.offsets(topic: "codes", time: -1).offsets, [1])
    }
}
