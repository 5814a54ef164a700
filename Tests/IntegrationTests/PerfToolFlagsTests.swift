import Foundation
import XCTest

/// The perf tools accept Kafka 0.8.2.2's ProducerPerformance / ConsumerPerformance / PerfConfig flags
/// (`--threads` among them) and print 0.8.2's columns.
final class PerfToolFlagsTests: IntegrationTestCase {
    func testPerfToolsAccept082Flags() async throws {
        let c = try await startCluster()
        let topic = "perf-flags"
        try c.createTopic(topic, partitions: 3)
        try c.waitForLeaders(topic: topic, partitions: 3)
        let p = try Project.run("kafka-producer-perf-test.sh",
                                ["--broker-list", "127.0.0.1:\(c.broker.port)", "--topics", topic, "--messages", "1000",
                                 "--threads", "2", "--sync", "--producer-num-retries", "3", "--producer-retry-backoff-ms", "100",
                                 "--request-num-acks", "1", "--initial-message-id", "0", "--message-size", "50",
                                 "--batch-size", "100", "--reporting-interval", "500", "--csv-reporter-enabled",
                                 "--metrics-dir", "/tmp/unused", "--new-producer", "--date-format", "yyyy-MM-dd HH:mm:ss"], timeout: 120)
        XCTAssertEqual(p.exitCode, 0, p.summary)
        let plines = p.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(plines.first, "start.time, end.time, compression, message.size, batch.size, total.data.sent.in.MB, MB.sec, total.data.sent.in.nMsg, nMsg.sec", p.summary)
        let pcols = (plines.last ?? "").components(separatedBy: ", ")
        XCTAssertEqual(pcols.count, 9, p.summary)
        if pcols.count == 9 { XCTAssertEqual(pcols[7], "1000", p.summary); XCTAssertEqual(pcols[3], "50", p.summary) }

        let cArgs = ["--zookeeper", c.zkConnect, "--topic", topic, "--messages", "1000", "--threads", "1",
                     "--group", "perf-group", "--fetch-size", "65536", "--socket-buffer-size", "1048576",
                     "--num-fetch-threads", "1", "--reporting-interval", "500", "--date-format", "yyyy-MM-dd HH:mm:ss:SSS"]
        let r = try Project.run("kafka-consumer-perf-test.sh", cArgs, timeout: 120)
        XCTAssertEqual(r.exitCode, 0, r.summary)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "start.time, end.time, fetch.size, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec", r.summary)
        let cols = (lines.last ?? "").components(separatedBy: ", ")
        XCTAssertEqual(cols.count, 7, r.summary)
        if cols.count == 7 { XCTAssertEqual(cols[2], "65536", r.summary); XCTAssertEqual(cols[5], "1000", r.summary) }

        // Several threads, per-thread detailed stats (0.8.2: "time, threadId, fetch.size, MB, MB.sec, nMsg, nMsg.sec").
        let d = try Project.run("kafka-consumer-perf-test.sh",
                                ["--zookeeper", c.zkConnect, "--topic", topic, "--threads", "3", "--show-detailed-stats",
                                 "--hide-header", "--reporting-interval", "100000"], timeout: 120)
        XCTAssertEqual(d.exitCode, 0, d.summary)
        let dlines = d.stdout.split(separator: "\n").map { $0.components(separatedBy: ", ") }
        XCTAssertEqual(dlines.count, 3, d.summary)
        XCTAssertTrue(dlines.allSatisfy { $0.count == 7 }, d.summary)
        XCTAssertEqual(Set(dlines.map { $0[1] }), ["0", "1", "2"], d.summary)
        XCTAssertEqual(dlines.compactMap { Int($0.count == 7 ? $0[5] : "") }.reduce(0, +), 1000, d.summary)

        let bad = try Project.run("kafka-consumer-perf-test.sh", ["--zookeeper", c.zkConnect, "--topic", topic, "--no-such-flag"], timeout: 30)
        XCTAssertNotEqual(bad.exitCode, 0, bad.summary)
        XCTAssertTrue((bad.stdout + bad.stderr).contains("--no-such-flag"), bad.summary)
    }
}
