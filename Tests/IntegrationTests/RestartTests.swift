import Foundation
import KafkaTestSupport
import XCTest

/// A broker that is killed or stopped and started again keeps every acknowledged message, and new
/// offsets continue without gaps or repeats.
final class RestartTests: IntegrationTestCase {
    /// Produces `count` keyed messages one request at a time (acks=1) and returns what was acknowledged.
    private func produce(_ conn: WireConnection, topic: String, prefix: String, count: Int,
                         file: StaticString = #filePath, line: UInt = #line) throws -> [WireMessage] {
        var acked: [WireMessage] = []
        var i = 0
        while i < count {
            let batch = (i..<min(count, i + 7)).map { (key: "\(prefix)-k\($0)" as String?, value: "\(prefix)-value-\($0)" as String?) }
            let (error, base) = try conn.produce(topic: topic, messages: batch)
            XCTAssertEqual(error, 0, "produce error code", file: file, line: line)
            guard error == 0 else { break }
            for (j, m) in batch.enumerated() {
                acked.append(WireMessage(offset: base + Int64(j), key: m.key, value: m.value))
            }
            i += batch.count
        }
        return acked
    }

    private func assertContiguous(_ messages: [WireMessage], from: Int64 = 0,
                                  file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(messages.map(\.offset), Array(from..<from + Int64(messages.count)),
                       "offsets must be contiguous without gaps or repeats", file: file, line: line)
    }

    func testKill9ThenRestartKeepsAcknowledgedMessages() async throws {
        // A short session timeout: the restarted broker waits for the old session's ephemeral node to expire.
        let c = try await startCluster(brokerIds: [0], overrides: ["zookeeper.session.timeout.ms": "4000"])
        try c.createTopic("durable")
        try c.waitForLeaders(topic: "durable")

        let before = try produce(try c.broker.connect(), topic: "durable", prefix: "a", count: 50)
        XCTAssertEqual(before.count, 50)
        assertContiguous(before)

        c.broker.kill9()
        XCTAssertFalse(c.broker.isRunning)
        let started = Date()
        try c.broker.start()   // at once: /brokers/ids/0 from the killed session still exists
        try c.broker.waitUntilReady(timeout: 90)
        try c.waitForLeaders(topic: "durable", timeout: 60)
        print("broker came back \(String(format: "%.1f", Date().timeIntervalSince(started))) s after kill -9")

        let conn = try c.broker.connect()
        let afterRestart = try conn.fetchAll(topic: "durable")
        XCTAssertEqual(afterRestart, before, "every acknowledged message must survive kill -9")

        let latest = try conn.offsets(topic: "durable", time: -1)
        XCTAssertEqual(latest.error, 0)
        XCTAssertEqual(latest.offsets.first, 50, "log end offset after restart")

        let more = try produce(conn, topic: "durable", prefix: "b", count: 10)
        XCTAssertEqual(more.first?.offset, 50, "new offsets continue where the acknowledged ones stopped")
        let all = try conn.fetchAll(topic: "durable")
        XCTAssertEqual(all, before + more)
        assertContiguous(all)
    }

    func testCleanStopThenRestartContinuesOffsets() async throws {
        let c = try await startCluster(brokerIds: [0])
        try c.createTopic("clean", partitions: 2)
        try c.waitForLeaders(topic: "clean", partitions: 2)
        let before = try produce(try c.broker.connect(), topic: "clean", prefix: "a", count: 30)
        XCTAssertEqual(before.count, 30)
        assertContiguous(before)

        let code = c.broker.terminate(timeout: 30)
        XCTAssertNotNil(code, "the broker must exit within 30 s of SIGTERM")
        XCTAssertEqual(code, 0, "a clean shutdown exits 0:\n\(c.broker.tail(30))")

        // A clean stop deregisters at once, so the restart does not wait for a session to expire.
        let started = Date()
        try c.broker.start()
        try c.broker.waitUntilReady(timeout: 30)
        try c.waitForLeaders(topic: "clean", partitions: 2)
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertLessThan(elapsed, 20, "restart after a clean stop took \(elapsed) s")

        let conn = try c.broker.connect()
        XCTAssertEqual(try conn.fetchAll(topic: "clean"), before)
        let more = try produce(conn, topic: "clean", prefix: "b", count: 5)
        XCTAssertEqual(more.map(\.offset), [30, 31, 32, 33, 34])
        assertContiguous(try conn.fetchAll(topic: "clean"))
        // The other partition is still empty and readable.
        let p1 = try conn.fetch(topic: "clean", partition: 1, offset: 0)
        XCTAssertEqual(p1.error, 0)
        XCTAssertEqual(p1.highWatermark, 0)
    }

    func testSecondBrokerWithTheSameIdFailsToStart() async throws {
        let c = try await startCluster(brokerIds: [0])
        let twin = try c.addBroker(id: 0)
        try twin.start()
        let code = twin.process?.waitForExit(timeout: 60)
        XCTAssertNotNil(code, "a second broker.id=0 must exit:\n\(twin.tail(30))")
        XCTAssertNotEqual(code, 0, twin.tail(30))
        let out = twin.output().lowercased()
        XCTAssertTrue(out.contains("already registered") || out.contains("broker.id"),
                      "the error must say that broker 0 is already registered:\n\(twin.tail(30))")
        // The first broker is unaffected.
        XCTAssertTrue(c.broker.isRunning)
        try c.broker.waitUntilReady(timeout: 10)
    }

    /// bin/kafka-server-start.sh -daemon and bin/kafka-server-stop.sh, with the pid and log files in a
    /// temporary PID_DIR / LOG_DIR (so the stop script only sees this broker).
    func testDaemonStartAndStopScripts() async throws {
        try Project.requireReleaseBuild()
        let zk = try await ZooKeeperServer.start()
        defer { zk.stop() }
        let dir = NSTemporaryDirectory() + "kafka-swift-daemon-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let port = try FreePort.allocate()
        let props = "\(dir)/server.properties"
        try """
            broker.id=7
            port=\(port)
            host.name=127.0.0.1
            log.dirs=\(dir)/kafka-logs
            zookeeper.connect=\(zk.connectString)

            """.write(toFile: props, atomically: true, encoding: .utf8)
        let env = ["PID_DIR": "\(dir)/run", "LOG_DIR": "\(dir)/logs"]

        let start = try Project.run("kafka-server-start.sh", ["-daemon", props], environment: env)
        XCTAssertEqual(start.exitCode, 0, start.summary)
        let pidText = try String(contentsOfFile: "\(dir)/run/kafka-server-7.pid", encoding: .utf8)
        let pid = Int32(pidText.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        XCTAssertGreaterThan(pid, 0)
        defer { if pid > 0 && processIsAlive(pid) { kill(pid, SIGKILL) } }
        let daemonLog = "\(dir)/logs/kafka-server-7.log"
        func logTail() -> String {
            let text = (try? String(contentsOfFile: daemonLog, encoding: .utf8)) ?? "(no \(daemonLog))"
            return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(40).joined(separator: "\n")
        }
        XCTAssertTrue(TestNetwork.waitForPort(port, timeout: 60), "the daemon broker did not open port \(port):\n\(logTail())")
        do {
            _ = try poll(timeout: 60, "daemon broker metadata") { () -> Bool? in
                guard processIsAlive(pid) else { throw WireError("the daemon broker (pid \(pid)) exited") }
                return try WireConnection(port: port).metadata().brokers.contains { $0.id == 7 } ? true : nil
            }
        } catch {
            XCTFail("\(error)\n--- \(daemonLog) ---\n\(logTail())\n--- start script ---\n\(start.summary)")
            return
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/logs/kafka-server-7.log"))

        // With the properties file the script only looks at this broker's pid file (no pgrep fallback,
        // which could reach brokers of other test runs).
        let stop = try Project.run("kafka-server-stop.sh", [props], timeout: 90, environment: env)
        XCTAssertEqual(stop.exitCode, 0, stop.summary)
        XCTAssertFalse(processIsAlive(pid), "the broker (pid \(pid)) must have exited")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/run/kafka-server-7.pid"))
        XCTAssertFalse(TestNetwork.isOpen(port))

        let again = try Project.run("kafka-server-stop.sh", [props], timeout: 30, environment: env)
        XCTAssertEqual(again.exitCode, 1, "nothing left to stop: \(again.summary)")
    }
}
