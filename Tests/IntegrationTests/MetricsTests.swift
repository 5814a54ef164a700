import Foundation
import KafkaClient
import KafkaProtocol
import KafkaTestSupport
import XCTest
import ZooKeeper

#if canImport(Glibc)
import Glibc
#endif

/// `metrics.port`: the broker's Prometheus endpoint, scraped over HTTP after real traffic from
/// the project's client (issue 10 item 1).
final class MetricsTests: IntegrationTestCase {
    /// Messages and bytes in/out, request counts and latency, leader and partition counts, the
    /// controller gauges and a group's lag (equal to the offset checker's), all from one scrape.
    func testScrapeAfterProduceConsumeAndCommit() async throws {
        let metricsPort = try FreePort.allocate()
        let c = try await startCluster(overrides: ["metrics.port": "\(metricsPort)", "metrics.host": "127.0.0.1"])
        let topic = "metered", group = "metered-group"
        try c.createTopic(topic, partitions: 2)
        try c.waitForLeaders(topic: topic, partitions: 2)

        // 30 + 20 messages with the project's producer, 3 requests.
        let producer = try Producer(config: ProducerConfig(brokerList: c.brokerList))
        func batch(_ n: Int, _ tag: String) -> [(key: [UInt8]?, value: [UInt8]?)] {
            (0..<n).map { i in (key: nil, value: Array("\(tag)-\(i)".utf8)) }
        }
        try await producer.send(topic: topic, messages: batch(20, "a"), partition: 0)
        try await producer.send(topic: topic, messages: batch(10, "b"), partition: 0)
        try await producer.send(topic: topic, messages: batch(20, "c"), partition: 1)
        await producer.close()

        // Consume partition 0 with the simple consumer and commit offset 12 for the group.
        let consumer = try await SimpleConsumer.connect(host: "127.0.0.1", port: c.broker.port, clientId: "metrics-test")
        let fetched = try await consumer.fetch(TopicPartition(topic, 0), offset: 0)
        XCTAssertEqual(fetched.messages.count, 30)
        let conn = try await BrokerConnection.connect(host: "127.0.0.1", port: c.broker.port, clientId: "metrics-test")
        var body = try await conn.send(OffsetCommitRequest(group: group, topics: [(topic, [.init(partition: 0, offset: 12)])]))
        let committed = try OffsetCommitResponse.decode(from: &body)
        XCTAssertEqual(committed.topics.first?.partitions.first?.error, ErrorCode.none)
        await conn.close()
        await consumer.close()

        let scrape = try Scrape.get(port: metricsPort)
        XCTAssertEqual(scrape.status, 200, scrape.raw)
        XCTAssertTrue(scrape.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") ?? false, scrape.raw)
        let m = scrape.samples
        let t = "{topic=\"\(topic)\"}"
        XCTAssertEqual(m["kafka_server_brokertopicmetrics_messagesin_total\(t)"], 50, scrape.body)
        XCTAssertEqual(m["kafka_server_brokertopicmetrics_alltopicsmessagesin_total"], 50, scrape.body)
        let bytesIn = try XCTUnwrap(m["kafka_server_brokertopicmetrics_bytesin_total\(t)"], scrape.body)
        XCTAssertGreaterThan(bytesIn, 50 * 26, "each message costs at least 26 bytes of entry overhead")
        XCTAssertEqual(m["kafka_server_brokertopicmetrics_alltopicsbytesin_total"], bytesIn)
        let bytesOut = try XCTUnwrap(m["kafka_server_brokertopicmetrics_bytesout_total\(t)"], scrape.body)
        XCTAssertGreaterThan(bytesOut, 30 * 26)
        XCTAssertEqual(m["kafka_server_brokertopicmetrics_failedproducerequests_total\(t)"], 0)

        XCTAssertEqual(m["kafka_network_requestmetrics_requests_total{request=\"Produce\"}"], 3, scrape.body)
        XCTAssertEqual(m["kafka_network_requestmetrics_requests_total{request=\"OffsetCommit\"}"], 1, scrape.body)
        XCTAssertGreaterThanOrEqual(m["kafka_network_requestmetrics_requests_total{request=\"Fetch\"}"] ?? 0, 1, scrape.body)
        XCTAssertGreaterThanOrEqual(m["kafka_network_requestmetrics_requests_total{request=\"Metadata\"}"] ?? 0, 1, scrape.body)
        XCTAssertEqual(m["kafka_network_requestmetrics_requests_total{request=\"FetchConsumer\"}"],
                       m["kafka_network_requestmetrics_requests_total{request=\"Fetch\"}"], "a lone broker has no follower fetches")
        XCTAssertEqual(m["kafka_network_requestmetrics_requests_total{request=\"FetchFollower\"}"], 0, scrape.body)
        XCTAssertEqual(m["kafka_network_requestmetrics_totaltime_seconds_count{request=\"Produce\"}"], 3, scrape.body)
        XCTAssertEqual(m["kafka_network_requestmetrics_totaltime_seconds_bucket{request=\"Produce\",le=\"+Inf\"}"], 3, scrape.body)

        XCTAssertEqual(m["kafka_server_replicamanager_partitioncount"], 2, scrape.body)
        XCTAssertEqual(m["kafka_server_replicamanager_leadercount"], 2, scrape.body)
        XCTAssertEqual(m["kafka_server_replicamanager_underreplicatedpartitions"], 0, scrape.body)
        XCTAssertEqual(m["kafka_controller_kafkacontroller_activecontrollercount"], 1, scrape.body)
        XCTAssertEqual(m["kafka_controller_kafkacontroller_offlinepartitionscount"], 0, scrape.body)
        XCTAssertEqual(m["kafka_server_fetchrequestpurgatory_numdelayedrequests"], 0, scrape.body)
        XCTAssertEqual(m["kafka_server_producerequestpurgatory_purgatorysize"], 0, scrape.body)
        XCTAssertEqual(m["kafka_log_log_logendoffset{topic=\"\(topic)\",partition=\"0\"}"], 30, scrape.body)
        XCTAssertEqual(m["kafka_log_log_logendoffset{topic=\"\(topic)\",partition=\"1\"}"], 20, scrape.body)

        // Lag = log end (30) - committed (12); partition 1 has no commit and no series.
        let lagKey = "kafka_consumergroup_lag{group=\"\(group)\",topic=\"\(topic)\",partition=\"0\"}"
        XCTAssertEqual(m[lagKey], 18, scrape.body)
        XCTAssertEqual(m["kafka_consumergroup_current_offset{group=\"\(group)\",topic=\"\(topic)\",partition=\"0\"}"], 12, scrape.body)
        XCTAssertNil(m["kafka_consumergroup_lag{group=\"\(group)\",topic=\"\(topic)\",partition=\"1\"}"], scrape.body)
        let checker = try Project.run("kafka-consumer-offset-checker.sh", ["--zookeeper", c.zkConnect, "--group", group, "--topic", topic])
        XCTAssertEqual(checker.exitCode, 0, checker.summary)
        var checkerLag: String?
        for line in checker.stdout.split(separator: "\n") {
            let cols: [String] = line.split(separator: " ").map(String.init)
            if cols.count >= 6 && cols[0] == group && cols[2] == "0" { checkerLag = cols[5] }
        }
        XCTAssertEqual(checkerLag, "18", "offset checker's lag column:\n\(checker.stdout)")

        // A newer commit moves the lag at the next scrape.
        let conn2 = try await BrokerConnection.connect(host: "127.0.0.1", port: c.broker.port, clientId: "metrics-test")
        _ = try await conn2.send(OffsetCommitRequest(group: group, topics: [(topic, [.init(partition: 0, offset: 30)])]))
        await conn2.close()
        XCTAssertEqual(try Scrape.get(port: metricsPort).samples[lagKey], 0)
        // A deleted group's series go away.
        let zk = try await ZooKeeperClient.connect(c.zkConnect, sessionTimeoutMs: 30000)
        try await zk.deleteRecursive("/consumers/\(group)")
        await zk.close()
        let afterDelete = try Scrape.get(port: metricsPort).samples
        XCTAssertNil(afterDelete[lagKey])
        XCTAssertNotNil(afterDelete["kafka_server_replicamanager_leadercount"])

        // Other paths and methods.
        XCTAssertEqual(try Scrape.get(port: metricsPort, path: "/").status, 404)
        XCTAssertEqual(try Scrape.get(port: metricsPort, method: "POST").status, 405)
        // Keep-alive: two pipelined scrapes on one connection get two answers, in order.
        let two = try Scrape.exchange(port: metricsPort, request:
            "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        XCTAssertTrue(two.hasPrefix("HTTP/1.1 200 OK\r\n"), String(two.prefix(200)))
        XCTAssertTrue(two.contains("HTTP/1.1 404 Not Found\r\n"), String(two.suffix(300)))
        print("a scrape of /metrics (\(scrape.body.utf8.count) bytes), kafka_ lines:\n" +
              scrape.body.split(separator: "\n").filter { $0.contains(topic) || $0.contains("replicamanager") || $0.contains("controller") }.joined(separator: "\n"))
    }

    /// UnderReplicatedPartitions on the leader rises while its follower is down and drops back to
    /// 0 once it has caught up again; the ISR shrink and expand are counted.
    func testUnderReplicatedWhileFollowerDown() async throws {
        let c = try await startCluster(brokerIds: [])
        var metricsPorts: [Int: Int] = [:]
        for id in [1, 2] {
            let port = try FreePort.allocate()
            metricsPorts[id] = port
            try c.addBroker(id: id, overrides: ["metrics.port": "\(port)", "replica.lag.time.max.ms": "2000"]).start()
        }
        for b in c.brokers { try b.waitUntilReady() }
        func scrape(_ id: Int) throws -> [String: Double] { try Scrape.get(port: metricsPorts[id]!).samples }

        let topic = "replicated-metered"
        try c.createTopic(topic, partitions: 1, replicationFactor: 2)
        let leaderId = Int(try c.waitForLeaders(topic: topic).partitions[0].leader)
        let followerId = leaderId == 1 ? 2 : 1
        let follower = try XCTUnwrap(c.brokers.first { $0.id == followerId })
        let producer = try Producer(config: ProducerConfig(brokerList: c.brokerList))
        try await producer.send(topic: topic, messages: [(key: nil, value: Array("one".utf8))], partition: 0)

        let urp = "kafka_server_replicamanager_underreplicatedpartitions"
        try poll(timeout: 30, "the ISR to hold both replicas") { try scrape(leaderId)[urp] == 0 ? true : nil }
        let before = try scrape(leaderId)
        XCTAssertEqual(before["kafka_server_replicamanager_leadercount"], 1)
        XCTAssertEqual(try scrape(followerId)["kafka_server_replicamanager_leadercount"], 0)
        XCTAssertEqual(try scrape(followerId)["kafka_server_replicamanager_partitioncount"], 1)
        XCTAssertEqual((before["kafka_controller_kafkacontroller_activecontrollercount"] ?? 0)
                       + (try scrape(followerId)["kafka_controller_kafkacontroller_activecontrollercount"] ?? 0), 1,
                       "exactly one active controller")
        let shrinksBefore = before["kafka_server_replicamanager_isrshrinks_total"] ?? 0
        let expandsBefore = before["kafka_server_replicamanager_isrexpands_total"] ?? 0

        // Follower down: the leader drops it from the ISR after replica.lag.time.max.ms.
        follower.kill9()
        try await producer.send(topic: topic, messages: [(key: nil, value: Array("two".utf8))], partition: 0)
        let down = try poll(timeout: 30, "UnderReplicatedPartitions = 1 on the leader") { () -> [String: Double]? in
            let m = try scrape(leaderId)
            return m[urp] == 1 ? m : nil
        }
        XCTAssertGreaterThan(down["kafka_server_replicamanager_isrshrinks_total"] ?? 0, shrinksBefore)
        XCTAssertGreaterThan(down["kafka_network_requestmetrics_requests_total{request=\"FetchFollower\"}"] ?? 0, 0)

        // Back: it catches up, rejoins the ISR, and the gauge returns to 0.
        try follower.start()
        try follower.waitUntilReady()
        let up = try poll(timeout: 60, "UnderReplicatedPartitions back to 0 on the leader") { () -> [String: Double]? in
            let m = try scrape(leaderId)
            return m[urp] == 0 ? m : nil
        }
        XCTAssertGreaterThan(up["kafka_server_replicamanager_isrexpands_total"] ?? 0, expandsBefore)
        XCTAssertEqual(up["kafka_server_brokertopicmetrics_messagesin_total{topic=\"\(topic)\"}"], 2)
        await producer.close()
    }

    /// Without `metrics.port` the broker listens on its Kafka port only; a bad value stops the
    /// start with an error naming the property, and so does a metrics port already in use.
    func testOffByDefaultAndBadValues() async throws {
        let c = try await startCluster()
        let pid = try XCTUnwrap(c.broker.pid)
        XCTAssertEqual(ListeningPorts.of(pid: pid), [c.broker.port], "a broker without metrics.port listens on its port only")

        for bad in ["abc", "70000", "-1"] {
            let dir = c.directory + "/bad-\(bad)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let props = "broker.id=9\nport=\(try FreePort.allocate())\nzookeeper.connect=\(c.zkConnect)\nlog.dirs=\(dir)/logs\nmetrics.port=\(bad)\n"
            try props.write(toFile: dir + "/server.properties", atomically: true, encoding: .utf8)
            let r = try Project.run("kafka-server-start.sh", [dir + "/server.properties"], timeout: 30)
            XCTAssertNotEqual(r.exitCode, 0, r.summary)
            XCTAssertTrue((r.stdout + r.stderr).contains("for configuration metrics.port"), r.summary)
        }

        // A metrics port that is taken (the first broker's Kafka port): start-up fails naming it.
        let b = try c.addBroker(id: 7, overrides: ["metrics.port": "\(c.broker.port)"])
        try b.start()
        let code = b.process?.waitForExit(timeout: 60)
        XCTAssertNotNil(code, b.tail(30))
        XCTAssertNotEqual(code, 0, b.tail(30))
        XCTAssertTrue(b.output().contains("metrics.port=\(c.broker.port)"), b.tail(30))
    }
}

/// One HTTP/1.1 exchange over a plain socket, and the Prometheus text parsed into samples.
struct Scrape {
    var status: Int
    var headers: [String: String]
    var body: String
    var raw: String

    /// `series` (name plus labels exactly as rendered) → value.
    var samples: [String: Double] {
        var out: [String: Double] = [:]
        for line in body.split(separator: "\n") where !line.hasPrefix("#") {
            guard let sp = line.lastIndex(of: " "), let v = Double(line[line.index(after: sp)...]) else { continue }
            out[String(line[..<sp])] = v
        }
        return out
    }

    static func get(port: Int, path: String = "/metrics", method: String = "GET", timeout: Double = 30) throws -> Scrape {
        let raw = try exchange(port: port, request: "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n",
                               timeout: timeout)
        guard let split = raw.range(of: "\r\n\r\n") else { throw WireError("no HTTP header in: \(raw)") }
        let headLines = raw[..<split.lowerBound].split(separator: "\r\n")
        let statusParts = headLines.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, statusParts[0] == "HTTP/1.1", let status = Int(statusParts[1]) else {
            throw WireError("bad status line in: \(raw)")
        }
        var headers: [String: String] = [:]
        for l in headLines.dropFirst() {
            guard let colon = l.firstIndex(of: ":") else { continue }
            headers[l[..<colon].lowercased()] = l[l.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let body = String(raw[split.upperBound...])
        if let len = headers["content-length"].flatMap(Int.init) {
            XCTAssertEqual(body.utf8.count, len, "Content-Length")
        }
        return Scrape(status: status, headers: headers, body: body, raw: raw)
    }

    /// Writes `request` as is and reads until the server closes the connection.
    static func exchange(port: Int, request text: String, timeout: Double = 30) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw WireError("socket failed") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw WireError("cannot connect to 127.0.0.1:\(port): \(String(cString: strerror(errno)))") }
        let request = Array(text.utf8)
        guard write(fd, request, request.count) == request.count else { throw WireError("write failed") }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n < 0 { throw WireError("read failed: \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            data += chunk[0..<n]
        }
        return String(decoding: data, as: UTF8.self)
    }
}

/// The TCP ports a process listens on: its socket inodes matched against /proc/net/tcp{,6}.
enum ListeningPorts {
    static func of(pid: Int32) -> [Int] {
        let fdDir = "/proc/\(pid)/fd"
        var inodes = Set<String>()
        for fd in (try? FileManager.default.contentsOfDirectory(atPath: fdDir)) ?? [] {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(fdDir)/\(fd)"),
                  target.hasPrefix("socket:[") else { continue }
            inodes.insert(String(target.dropFirst(8).dropLast()))
        }
        var ports = Set<Int>()
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let f = line.split(separator: " ")
                // sl local_address rem_address st ... inode (10th field)
                guard f.count > 9, f[3] == "0A", inodes.contains(String(f[9])),
                      let portHex = f[1].split(separator: ":").last, let port = Int(portHex, radix: 16) else { continue }
                ports.insert(port)
            }
        }
        return ports.sorted()
    }
}
