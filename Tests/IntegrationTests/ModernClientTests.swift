import Foundation
import KafkaTestSupport
import XCTest

/// Clients that probe the broker with ApiVersions first, run with no version settings (issue 10
/// item 7): kcat (librdkafka 2.0.2, default `api.version.request=true`) and kafka-python 3.0.12
/// (no `api_version`), plus the ApiVersions and group-membership answers on the wire.
final class ModernClientTests: IntegrationTestCase {
    /// What the broker must advertise: exactly what it serves (0.8.2's keys, the group APIs, ApiVersions,
    /// and the Produce v1-v2, Fetch v1-v2, Metadata v1 and OffsetCommit v2 that kafka-python 2.0.2 sends).
    static let served: [Int16: ClosedRange<Int16>] = [
        0: 0...2, 1: 0...2, 2: 0...0, 3: 0...1, 4: 0...0, 5: 0...0, 6: 0...0, 7: 0...0,
        8: 0...2, 9: 0...1, 10: 0...0, 11: 0...0, 12: 0...0, 13: 0...0, 14: 0...0, 18: 0...4,
    ]

    static var modernPython: String { "\(Project.root)/.venv-modern/bin/python" }

    private func requireModernPython() throws -> String {
        guard FileManager.default.isExecutableFile(atPath: Self.modernPython) else {
            throw XCTSkip("\(Self.modernPython) is missing: run bin/setup.sh to create .venv-modern with kafka-python 3.0.12")
        }
        return Self.modernPython
    }

    /// kcat with NO -X settings.
    private func kcat(_ c: TestCluster, _ args: [String], stdin: String? = nil, timeout: Double = 60) throws -> ProcessResult {
        try Project.kcat(port: c.broker.port, args, compat: false, stdin: stdin, timeout: timeout)
    }

    private func modern(_ args: [String], stdin: String?) throws -> ProcessResult {
        try Project.runInteropScript("modern_client_check.py", args, python: try requireModernPython(), stdin: stdin, timeout: 120)
    }

    /// The same driver under the .venv's kafka-python 2.0.2, also without `api_version`.
    private func legacy(_ args: [String], stdin: String?) throws -> ProcessResult {
        try Project.runInteropScript("modern_client_check.py", args, stdin: stdin, timeout: 120)
    }

    /// "partition/offset key=value" per consumed message, sorted.
    private func records(_ objs: [[String: Any]]) -> [String] {
        objs.filter { $0["offset"] != nil }.map { o in
            "\((o["partition"] as? NSNumber)?.intValue ?? -1)/\((o["offset"] as? NSNumber)?.intValue ?? -1) \(o["key"] as? String ?? "null")=\(o["value"] as? String ?? "null")"
        }.sorted()
    }

    // MARK: ApiVersions on the wire

    private func readVarint(_ r: inout WireReader) throws -> UInt32 {
        var v: UInt32 = 0
        var shift: UInt32 = 0
        while true {
            let b = UInt8(bitPattern: try r.int8())
            v |= UInt32(b & 0x7F) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
            if shift > 28 { throw WireError("varint too long") }
        }
    }

    /// Sends ApiVersions `version` (flexible body for v3+) and decodes the answer in `answerVersion`.
    private func apiVersions(_ conn: WireConnection, version: Int16, answerVersion: Int16? = nil, flexibleBody: [UInt8]? = nil)
        throws -> (error: Int16, keys: [Int16: ClosedRange<Int16>], throttle: Int32?)
    {
        var body: [UInt8] = []
        if version >= 3 {
            body = flexibleBody ?? ([0x00, 0x0E] + Array("swift-it-test".utf8) + [0x04] + Array("1.0".utf8) + [0x00])
        }
        let cid = try conn.sendRequest(apiKey: 18, apiVersion: version, body: body)
        let (got, reader) = try conn.receiveResponse()
        var r = reader
        XCTAssertEqual(got, cid)
        let v = answerVersion ?? version
        let error = try r.int16()
        var keys: [Int16: ClosedRange<Int16>] = [:]
        let n = v >= 3 ? Int(try readVarint(&r)) - 1 : Int(try r.int32())
        for _ in 0..<max(n, 0) {
            let k = try r.int16(), lo = try r.int16(), hi = try r.int16()
            guard lo <= hi else { throw WireError("key \(k): min version \(lo) above max \(hi)") }
            keys[k] = lo...hi
            if v >= 3 { XCTAssertEqual(try readVarint(&r), 0, "entry tagged fields") }
        }
        var throttle: Int32?
        if v >= 1 { throttle = try r.int32() }
        if v >= 3 { XCTAssertEqual(try readVarint(&r), 0, "body tagged fields") }
        XCTAssertEqual(r.remaining, 0, "v\(version): bytes left in the answer")
        return (error, keys, throttle)
    }

    func testApiVersionsAdvertisesExactlyWhatIsServed() async throws {
        let c = try await startCluster(brokerIds: [0])
        let conn = try c.broker.connect()
        for v: Int16 in 0...4 {
            let a = try apiVersions(conn, version: v)
            XCTAssertEqual(a.error, 0, "v\(v)")
            XCTAssertEqual(a.keys, Self.served, "v\(v)")
            if v >= 1 { XCTAssertEqual(a.throttle, 0, "v\(v)") }
        }
        // A version the broker does not know: a v0 answer with UNSUPPORTED_VERSION and the
        // ApiVersions versions it serves.
        for v: Int16 in [5, 99, Int16.max] {
            let a = try apiVersions(conn, version: v, answerVersion: 0, flexibleBody: [0xFF, 0xFF])
            XCTAssertEqual(a.error, 35, "v\(v)")
            XCTAssertEqual(a.keys, [18: 0...4], "v\(v)")
        }
        // A v3 body that does not parse, or names that Kafka refuses: INVALID_REQUEST (42).
        for bad: [UInt8] in [[0x00, 0x40, 0x61], [0x00, 0x01, 0x01, 0x00], [0x00, 0x03, 0x2D, 0x61, 0x02, 0x31, 0x00]] {
            let a = try apiVersions(conn, version: 3, flexibleBody: bad)
            XCTAssertEqual(a.error, 42, "\(bad)")
            XCTAssertEqual(a.keys, [:], "\(bad)")
        }
        // The connection still serves 0.8 requests.
        XCTAssertEqual(try conn.metadata().brokers.map(\.id), [0])

        // Every advertised range is served: one version above it closes the connection, as does a
        // key not advertised.
        for key: Int16 in 0...20 {
            let probe = Self.served[key].map { $0.upperBound + 1 } ?? 0
            if key == 18 { continue }
            let raw = try WireConnection(port: c.broker.port, timeout: 10)
            _ = try raw.sendRequest(apiKey: key, apiVersion: probe, body: [0, 0, 0, 0])
            let (closed, detail) = raw.waitForClose()
            XCTAssertTrue(closed, "key \(key) v\(probe) must close the connection (\(detail))")
        }
        XCTAssertTrue(c.broker.isRunning)
    }

    // MARK: The group coordinator on the wire

    private func joinGroup(_ conn: WireConnection, group: String, member: String = "", sessionTimeoutMs: Int32 = 6000)
        throws -> (error: Int16, generation: Int32, leader: String, member: String, members: Int)
    {
        var w = WireWriter()
        w.string(group); w.int32(sessionTimeoutMs); w.string(member); w.string("consumer")
        w.int32(1); w.string("range"); w.bytesField([0, 1, 2])
        var r = try conn.sendAndReceive(apiKey: 11, body: w.bytes)
        let error = try r.int16(), generation = try r.int32()
        _ = try r.string()
        let leader = try r.string() ?? "", memberId = try r.string() ?? ""
        let n = Int(try r.int32())
        for _ in 0..<n { _ = try r.string(); _ = try r.bytesField() }
        return (error, generation, leader, memberId, n)
    }

    private func groupCall(_ conn: WireConnection, key: Int16, group: String, generation: Int32? = nil, member: String,
                           assignment: [UInt8]? = nil) throws -> (error: Int16, assignment: [UInt8]?) {
        var w = WireWriter()
        w.string(group)
        if let generation { w.int32(generation) }
        w.string(member)
        if let assignment { w.int32(1); w.string(member); w.bytesField(assignment) }
        var r = try conn.sendAndReceive(apiKey: key, body: w.bytes)
        let error = try r.int16()
        return (error, key == 14 ? try r.bytesField() : nil)
    }

    private func coordinator(_ conn: WireConnection, group: String) throws -> Int32 {
        var w = WireWriter()
        w.string(group)
        var r = try conn.sendAndReceive(apiKey: 10, body: w.bytes)
        XCTAssertEqual(try r.int16(), 0)
        return try r.int32()
    }

    func testTheLowestLiveBrokerCoordinatesGroups() async throws {
        let c = try await startCluster(brokerIds: [1, 2])
        let one = try c.brokers[0].connect(), two = try c.brokers[1].connect()
        // Both name broker 1 once they know it is alive.
        _ = try poll(timeout: 30, "broker 2 to name broker 1 as coordinator") { try coordinator(two, group: "wg") == 1 ? true : nil }
        XCTAssertEqual(try coordinator(one, group: "wg"), 1)
        XCTAssertEqual(try joinGroup(two, group: "wg").error, 16, "NOT_COORDINATOR on broker 2")
        XCTAssertEqual(try groupCall(two, key: 12, group: "wg", generation: 1, member: "m").error, 16)

        XCTAssertEqual(try joinGroup(one, group: "wg", sessionTimeoutMs: 10).error, 26, "session timeout below 6 s")
        XCTAssertEqual(try joinGroup(one, group: "wg", member: "stranger").error, 25)
        let j = try joinGroup(one, group: "wg")
        XCTAssertEqual(j.error, 0)
        XCTAssertEqual(j.generation, 1)
        XCTAssertEqual(j.leader, j.member)
        XCTAssertEqual(j.members, 1, "the leader gets every member's metadata")
        let sync = try groupCall(one, key: 14, group: "wg", generation: 1, member: j.member, assignment: [7, 8, 9])
        XCTAssertEqual(sync.error, 0)
        XCTAssertEqual(sync.assignment, [7, 8, 9])
        XCTAssertEqual(try groupCall(one, key: 12, group: "wg", generation: 1, member: j.member).error, 0)
        XCTAssertEqual(try groupCall(one, key: 12, group: "wg", generation: 5, member: j.member).error, 22)

        // A member's commit is checked against its generation; ZooKeeper gets only the valid one.
        try c.createTopic("gt")
        try c.waitForLeaders(topic: "gt")
        func commit(_ generation: Int32, _ offset: Int64, version: Int16 = 1) throws -> Int16 {
            var w = WireWriter()
            w.string("wg"); w.int32(generation); w.string(j.member)
            if version == 2 { w.int64(-1) }  // retention_time
            w.int32(1); w.string("gt"); w.int32(1); w.int32(0); w.int64(offset)
            if version == 1 { w.int64(-1) }  // per-partition timestamp (v1 only)
            w.string("")
            var r = try one.sendAndReceive(apiKey: 8, apiVersion: version, body: w.bytes)
            _ = try r.int32(); _ = try r.string(); _ = try r.int32(); _ = try r.int32()
            return try r.int16()
        }
        XCTAssertEqual(try commit(1, 42), 0)
        XCTAssertEqual(try commit(4, 99), 22)
        let get = try Project.run("zookeeper-shell.sh", [c.zkConnect, "get", "/consumers/wg/offsets/gt/0"], timeout: 60)
        XCTAssertTrue(get.stdout.split(separator: "\n").contains("42"), get.summary)
        // OffsetCommit v2 (kafka-python 2.0.2's): the same checks, the same ZooKeeper node.
        XCTAssertEqual(try commit(1, 43, version: 2), 0)
        XCTAssertEqual(try commit(4, 98, version: 2), 22)
        let get2 = try Project.run("zookeeper-shell.sh", [c.zkConnect, "get", "/consumers/wg/offsets/gt/0"], timeout: 60)
        XCTAssertTrue(get2.stdout.split(separator: "\n").contains("43"), get2.summary)

        XCTAssertEqual(try groupCall(one, key: 13, group: "wg", member: j.member).error, 0)
        XCTAssertEqual(try groupCall(one, key: 12, group: "wg", generation: 1, member: j.member).error, 25)

        // Broker 1 stops: broker 2 takes over (state starts empty; members join afresh).
        XCTAssertNotNil(c.brokers[0].terminate(), "broker 1 must stop on SIGTERM")
        _ = try poll(timeout: 60, "broker 2 to name itself coordinator") { try coordinator(two, group: "wg") == 2 ? true : nil }
        let again = try joinGroup(two, group: "wg")
        XCTAssertEqual(again.error, 0)
        XCTAssertEqual(again.generation, 1)
    }

    // MARK: Magic-1 messages (clients that take the broker for 0.10)

    /// One magic-1 message (8-byte timestamp after the attributes) as a log entry.
    private func magic1Entry(offset: Int64, key: String?, value: String, timestamp: Int64) -> [UInt8] {
        var body = WireWriter()
        body.int8(1)            // magic
        body.int8(0)            // attributes
        body.int64(timestamp)
        if let key { body.int32(Int32(key.utf8.count)); body.raw(Array(key.utf8)) } else { body.int32(-1) }
        body.int32(Int32(value.utf8.count)); body.raw(Array(value.utf8))
        return MessageSetCodec.entry(offset: offset, body: body.bytes)
    }

    func testMagicOneMessagesAreStoredInTheZeroEightFormat() async throws {
        let c = try await startCluster(brokerIds: [0])
        try c.createTopic("m1")
        try c.waitForLeaders(topic: "m1")
        let conn = try c.broker.connect()
        let set = magic1Entry(offset: 0, key: "k1", value: "v1", timestamp: 1_700_000_000_000)
            + magic1Entry(offset: 1, key: nil, value: "v2", timestamp: 1_700_000_000_001)
        var r = try conn.sendAndReceive(apiKey: 0, body: WireConnection.produceBody(topic: "m1", partition: 0, messageSet: set, acks: 1, timeoutMs: 5000))
        _ = try r.int32(); _ = try r.string(); _ = try r.int32(); _ = try r.int32()
        XCTAssertEqual(try r.int16(), 0, "magic-1 produce must be accepted")
        XCTAssertEqual(try r.int64(), 0)
        // A corrupt magic-1 message is refused as any corrupt message (InvalidMessage).
        var bad = magic1Entry(offset: 0, key: nil, value: "bad", timestamp: 0)
        bad[bad.count - 1] ^= 0xFF
        r = try conn.sendAndReceive(apiKey: 0, body: WireConnection.produceBody(topic: "m1", partition: 0, messageSet: bad, acks: 1, timeoutMs: 5000))
        _ = try r.int32(); _ = try r.string(); _ = try r.int32(); _ = try r.int32()
        XCTAssertEqual(try r.int16(), 2)
        // Stored as magic 0: the 0.8 decoder reads the keys and values back.
        XCTAssertEqual(try conn.fetchAll(topic: "m1"), [WireMessage(offset: 0, key: "k1", value: "v1"), WireMessage(offset: 1, key: nil, value: "v2")])
        let dump = try Project.run("kafka-dump-log.sh", ["--files", "\(c.broker.logDir)/m1-0/00000000000000000000.log", "--print-data-log"])
        XCTAssertEqual(dump.stdout.components(separatedBy: "magic: 0").count - 1, 2, dump.summary)
    }

    // MARK: kcat without -X

    func testKcatWithoutFlagsListsProducesSnappyAndConsumes() async throws {
        _ = try Project.requireTool("kcat", install: "apt-get install kcat")
        let c = try await startCluster(brokerIds: [0])
        try c.createTopic("plain", partitions: 2)
        try c.waitForLeaders(topic: "plain", partitions: 2)

        let list = try kcat(c, ["-L", "-J"], timeout: 30)
        XCTAssertEqual(list.exitCode, 0, list.summary)
        let json = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any]
        XCTAssertEqual((json?["brokers"] as? [[String: Any]])?.compactMap { ($0["id"] as? NSNumber)?.intValue }, [0], list.stdout)
        let topic = (json?["topics"] as? [[String: Any]])?.first { $0["topic"] as? String == "plain" }
        XCTAssertEqual((topic?["partitions"] as? [Any])?.count, 2, list.stdout)

        let input = (1...6).map { "k\($0):snappy value \($0)" }.joined(separator: "\n") + "\n"
        let produced = try kcat(c, ["-P", "-t", "plain", "-p", "1", "-K:", "-z", "snappy"], stdin: input, timeout: 30)
        XCTAssertEqual(produced.exitCode, 0, produced.summary)
        let consumed = try kcat(c, ["-C", "-t", "plain", "-p", "1", "-e", "-o", "beginning", "-f", "%k=%s@%o\\n"], timeout: 30)
        XCTAssertEqual(consumed.exitCode, 0, consumed.summary)
        XCTAssertEqual(consumed.stdout, (1...6).map { "k\($0)=snappy value \($0)@\($0 - 1)\n" }.joined(), consumed.summary)
        // Stored as one snappy wrapper (librdkafka sent magic 0 with snappy: it saw Produce v0 only).
        let dump = try Project.run("kafka-dump-log.sh", ["--files", "\(c.broker.logDir)/plain-1/00000000000000000000.log"])
        XCTAssertTrue(dump.stdout.contains("compresscodec: SnappyCompressionCodec"), dump.summary)
        XCTAssertTrue(dump.stdout.contains("magic: 0"), dump.summary)
    }

    func testKcatGroupConsumerCommitsToZooKeeperAndResumes() async throws {
        _ = try Project.requireTool("kcat", install: "apt-get install kcat")
        let c = try await startCluster(brokerIds: [0])
        try c.createTopic("grouped", partitions: 2)
        try c.waitForLeaders(topic: "grouped", partitions: 2)
        for p in 0..<2 {
            let input = (1...5).map { "k\(p)\($0):p\(p) value \($0)" }.joined(separator: "\n") + "\n"
            let r = try kcat(c, ["-P", "-t", "grouped", "-p", "\(p)", "-K:", "-z", "snappy"], stdin: input, timeout: 30)
            XCTAssertEqual(r.exitCode, 0, r.summary)
        }
        // A balanced consumer (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, OffsetCommit v1,
        // LeaveGroup) from the beginning to the end of both partitions.
        let first = try kcat(c, ["-G", "kg", "-o", "beginning", "-e", "-f", "%p/%o %k=%s\\n", "grouped"], timeout: 90)
        XCTAssertEqual(first.exitCode, 0, first.summary)
        let expected = (0..<2).flatMap { p in (1...5).map { "\(p)/\($0 - 1) k\(p)\($0)=p\(p) value \($0)" } }.sorted()
        XCTAssertEqual(first.stdout.split(separator: "\n").map(String.init).sorted(), expected, first.summary)

        // The offsets it committed are in 0.8's ZooKeeper nodes, where 0.8 tools read them.
        for p in 0..<2 {
            let get = try Project.run("zookeeper-shell.sh", [c.zkConnect, "get", "/consumers/kg/offsets/grouped/\(p)"], timeout: 60)
            XCTAssertTrue(get.stdout.split(separator: "\n").contains("5"), "partition \(p): \(get.summary)")
        }

        // More messages; the group resumes from its committed offsets.
        let more = try kcat(c, ["-P", "-t", "grouped", "-p", "0", "-K:"], stdin: "late:after the commit\n", timeout: 30)
        XCTAssertEqual(more.exitCode, 0, more.summary)
        let second = try kcat(c, ["-G", "kg", "-e", "-f", "%p/%o %k=%s\\n", "grouped"], timeout: 90)
        XCTAssertEqual(second.exitCode, 0, second.summary)
        XCTAssertEqual(second.stdout, "0/5 late=after the commit\n", second.summary)
    }

    // MARK: kafka-python 3.0.12 without api_version

    /// Runs modern_client_check.py (arguments, stdin) under one kafka-python.
    private typealias Driver = (_ args: [String], _ stdin: String?) throws -> ProcessResult

    /// kafka-python (through `driver`) with `api_version` unset against a one-broker cluster with a
    /// two-partition `topic`: produces four keyed messages per codec in `compressions`, each
    /// answered after ApiVersions led the client to "0.10.0" (magic-1 sets); checks the log holds
    /// exactly what was acknowledged, in 0.8's format (magic 0, inside the compressed wrappers
    /// too); reads it back without a group and as member of `group`; `afterGroupRead` checks what
    /// that member left (its commits); a message produced then is all a second member reads.
    @discardableResult
    private func kafkaPythonRoundTrip(_ c: TestCluster, topic: String, compressions: [String], group: String,
                                      driver: Driver, afterGroupRead: () throws -> Void = {}) throws -> [String] {
        let bootstrap = "127.0.0.1:\(c.broker.port)"
        var acked: [String] = []
        for compression in compressions {
            let input = (1...4).map { "\(compression)\($0):\(compression) value \($0)" }.joined(separator: "\n") + "\n"
            let p = try driver(["produce", "--bootstrap", bootstrap, "--topic", topic, "--compression", compression], input)
            XCTAssertEqual(p.exitCode, 0, p.summary)
            let lines = try Project.jsonLines(p.stdout)
            // ApiVersions answered: the client concludes "0.10.0" (it knows no older broker that answers
            // ApiVersions) and sends magic-1 messages, which the broker stores as magic 0.
            XCTAssertEqual(lines.last?["broker_version"] as? String, "0.10.0", p.summary)
            acked += records(lines)
        }
        XCTAssertEqual(acked.count, 4 * compressions.count, acked.description)

        // The log holds what was acknowledged, every message (inside the compressed ones too) in
        // 0.8's format (magic 0).
        var stored: [String] = []
        for p in 0..<2 {
            let dump = try Project.run("kafka-dump-log.sh", ["--files", "\(c.broker.logDir)/\(topic)-\(p)/00000000000000000000.log",
                                                             "--deep-iteration", "--print-data-log"])
            for line in dump.stdout.split(separator: "\n") where line.hasPrefix("offset: ") {
                let f = line.split(separator: " ").map(String.init)
                func field(_ name: String) -> String? { f.firstIndex(of: name + ":").map { f[$0 + 1] } }
                XCTAssertEqual(field("magic"), "0", String(line))
                let payload = line.range(of: " payload: ").map { String(line[$0.upperBound...]) } ?? "?"
                stored.append("\(p)/\(field("offset") ?? "?") \(field("key") ?? "?")=\(payload)")
            }
        }
        XCTAssertEqual(stored.sorted(), acked.sorted())
        let conn = try c.broker.connect()

        // Read back without a group...
        let count = "\(acked.count)"
        let plain = try driver(["consume", "--bootstrap", bootstrap, "--topic", topic, "--count", count], nil)
        XCTAssertEqual(plain.exitCode, 0, plain.summary)
        XCTAssertEqual(records(try Project.jsonLines(plain.stdout)), acked.sorted(), plain.summary)

        // ...and as a group member...
        let grouped = try driver(["consume", "--bootstrap", bootstrap, "--topic", topic, "--count", count, "--group", group], nil)
        XCTAssertEqual(grouped.exitCode, 0, grouped.summary)
        XCTAssertEqual(records(try Project.jsonLines(grouped.stdout)), acked.sorted(), grouped.summary)
        try afterGroupRead()
        // ...and a second member resumes from the offsets the first one committed.
        _ = try conn.produce(topic: topic, partition: 1, messages: [(key: "z", value: "after")])
        let resumed = try driver(["consume", "--bootstrap", bootstrap, "--topic", topic, "--count", "1", "--group", group], nil)
        XCTAssertEqual(resumed.exitCode, 0, resumed.summary)
        let after = records(try Project.jsonLines(resumed.stdout))
        XCTAssertEqual(after.count, 1, resumed.summary)
        XCTAssertTrue(after.first?.hasSuffix(" z=after") == true, resumed.summary)
        return acked
    }

    func testKafkaPythonWithoutApiVersionProducesAndConsumes() async throws {
        _ = try requireModernPython()
        let c = try await startCluster(brokerIds: [0])
        try c.createTopic("py", partitions: 2)
        try c.waitForLeaders(topic: "py", partitions: 2)
        try kafkaPythonRoundTrip(c, topic: "py", compressions: ["none", "gzip", "snappy"], group: "pyg", driver: modern)
    }
    // MARK: kafka-python 2.0.2 without api_version

    /// Metadata v1, Produce v1/v2 and Fetch v1/v2 on the wire (the layouts kafka-python 2.0.2 reads).
    func testNewerVersionsOfTheZeroEightApisOnTheWire() async throws {
        let c = try await startCluster(brokerIds: [0])
        try c.createTopic("wv")
        try c.waitForLeaders(topic: "wv")
        let conn = try c.broker.connect()

        // Metadata v1: null is every topic, empty is none; brokers carry a null rack, the controller
        // id follows them, topics carry is_internal.
        func metadataV1(_ topics: [String]?) throws -> (brokers: [Int32], controller: Int32, topics: [String]) {
            var w = WireWriter()
            if let topics { w.int32(Int32(topics.count)); for t in topics { w.string(t) } } else { w.int32(-1) }
            var r = try conn.sendAndReceive(apiKey: 3, apiVersion: 1, body: w.bytes)
            var brokers: [Int32] = []
            for _ in 0..<(try r.int32()) {
                brokers.append(try r.int32()); _ = try r.string(); _ = try r.int32()
                XCTAssertNil(try r.string(), "rack")
            }
            let controller = try r.int32()
            var names: [String] = []
            for _ in 0..<(try r.int32()) {
                XCTAssertEqual(try r.int16(), 0)
                names.append(try r.string() ?? "?")
                XCTAssertEqual(try r.int8(), 0, "is_internal")
                for _ in 0..<(try r.int32()) {
                    _ = try r.int16(); _ = try r.int32(); _ = try r.int32()
                    for _ in 0..<(try r.int32()) { _ = try r.int32() }
                    for _ in 0..<(try r.int32()) { _ = try r.int32() }
                }
            }
            XCTAssertEqual(r.remaining, 0)
            return (brokers, controller, names)
        }
        let all = try metadataV1(nil)
        XCTAssertEqual(all.brokers, [0])
        XCTAssertEqual(all.controller, 0, "the only broker is the controller")
        XCTAssertEqual(all.topics, ["wv"])
        XCTAssertEqual(try metadataV1([]).topics, [], "v1: an empty list names no topic")
        XCTAssertEqual(try metadataV1(["wv"]).topics, ["wv"])
        XCTAssertEqual(try conn.metadata([]).topics.map(\.name), ["wv"], "v0: an empty list is every topic")

        // Produce v1 (throttle time last) and v2 (log_append_time -1 per partition).
        for (version, expectedOffset) in [(Int16(1), Int64(0)), (2, 1)] {
            let body = WireConnection.produceBody(topic: "wv", partition: 0, messageSet: MessageSetCodec.encode([(key: "k", value: "v\(version)")]),
                                                  acks: 1, timeoutMs: 5000)
            var r = try conn.sendAndReceive(apiKey: 0, apiVersion: version, body: body)
            XCTAssertEqual(try r.int32(), 1); XCTAssertEqual(try r.string(), "wv"); XCTAssertEqual(try r.int32(), 1)
            XCTAssertEqual(try r.int32(), 0); XCTAssertEqual(try r.int16(), 0); XCTAssertEqual(try r.int64(), expectedOffset)
            if version == 2 { XCTAssertEqual(try r.int64(), -1, "log_append_time") }
            XCTAssertEqual(try r.int32(), 0, "throttle_time_ms")
            XCTAssertEqual(r.remaining, 0, "v\(version)")
        }

        // Fetch v1/v2: throttle time first, then v0's topics; the messages as stored (magic 0).
        for version: Int16 in [1, 2] {
            let body = WireConnection.fetchBody(topic: "wv", partition: 0, offset: 0, maxBytes: 1 << 20, maxWaitMs: 0, minBytes: 0)
            var r = try conn.sendAndReceive(apiKey: 1, apiVersion: version, body: body)
            XCTAssertEqual(try r.int32(), 0, "throttle_time_ms")
            XCTAssertEqual(try r.int32(), 1); XCTAssertEqual(try r.string(), "wv"); XCTAssertEqual(try r.int32(), 1)
            XCTAssertEqual(try r.int32(), 0); XCTAssertEqual(try r.int16(), 0); XCTAssertEqual(try r.int64(), 2, "high watermark")
            let set = try r.bytesField() ?? []
            XCTAssertEqual(try MessageSetCodec.decode(set).map(\.description), ["0:k:v1", "1:k:v2"])
            XCTAssertEqual(r.remaining, 0, "v\(version)")
        }
        // A parked v2 fetch (minBytes not met) answers in the v2 layout when its wait ends.
        let parked = WireConnection.fetchBody(topic: "wv", partition: 0, offset: 2, maxBytes: 1 << 20, maxWaitMs: 200, minBytes: 1)
        var r = try conn.sendAndReceive(apiKey: 1, apiVersion: 2, body: parked)
        XCTAssertEqual(try r.int32(), 0, "throttle_time_ms")
        XCTAssertEqual(try r.int32(), 1); XCTAssertEqual(try r.string(), "wv"); XCTAssertEqual(try r.int32(), 1)
        XCTAssertEqual(try r.int32(), 0); XCTAssertEqual(try r.int16(), 0); XCTAssertEqual(try r.int64(), 2)
        XCTAssertEqual(try r.bytesField() ?? [], [])
        XCTAssertEqual(r.remaining, 0)
        // 0.8 requests on the same connection are unchanged.
        XCTAssertEqual(try conn.fetch(topic: "wv", offset: 0).messages.count, 2)
    }

    /// kafka-python 2.0.2 (the .venv) with `api_version` unset: ApiVersions answered, it concludes
    /// "0.10.0" whatever the list says and sends Metadata v1, Produce v2 (magic-1 sets), Fetch v2,
    /// ListOffsets v0, OffsetFetch v1, OffsetCommit v2 and the v0 group APIs.
    func testKafkaPython202WithoutApiVersionProducesAndConsumes() async throws {
        let python = try Project.requireVenvPython()
        let version = try ProcessRunner.run(python, ["-c", "import kafka; print(kafka.__version__)"], timeout: 30)
        XCTAssertEqual(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "2.0.2", version.summary)
        let c = try await startCluster(brokerIds: [0])
        try c.createTopic("py2", partitions: 2)
        try c.waitForLeaders(topic: "py2", partitions: 2)

        // Without a group: Fetch v2, ListOffsets v0; with group_id: JoinGroup/SyncGroup v0,
        // OffsetFetch v1, OffsetCommit v2, whose commits are in 0.8's ZooKeeper nodes.
        let acked = try kafkaPythonRoundTrip(c, topic: "py2", compressions: ["none", "gzip"], group: "py2g", driver: legacy) {
            var committed = 0
            for p in 0..<2 {
                let get = try Project.run("zookeeper-shell.sh", [c.zkConnect, "get", "/consumers/py2g/offsets/py2/\(p)"], timeout: 60)
                committed += get.stdout.split(separator: "\n").compactMap { Int($0) }.first ?? 0
            }
            XCTAssertEqual(committed, 8, "the committed offsets add up to the messages read")
        }
        XCTAssertEqual(Set(acked.map { $0.split(separator: " ")[0] }).count, 8, "distinct offsets: \(acked)")
        XCTAssertTrue(c.broker.isRunning)
    }
}

private extension WireConnection {
    /// One request, its response body (after the correlation id).
    func sendAndReceive(apiKey: Int16, apiVersion: Int16 = 0, body: [UInt8]) throws -> WireReader {
        let cid = try sendRequest(apiKey: apiKey, apiVersion: apiVersion, body: body)
        let (got, reader) = try receiveResponse()
        guard got == cid else { throw WireError("correlation id \(got) in the response to request \(cid)") }
        return reader
    }
}
