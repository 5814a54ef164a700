import Foundation
import KafkaTestSupport
import XCTest

/// The librdkafka benchmark client of bin/kafka-benchmark.sh (bench/rdkafka_bench.c, built by
/// bin/setup.sh into .build/bench/rdkafka-bench): it compiles, and short latency, produce and
/// consume runs against a test broker print their key=value result lines.
final class BenchClientTests: IntegrationTestCase {
    private func buildClient() throws -> String {
        guard FileManager.default.fileExists(atPath: "/usr/include/librdkafka/rdkafka.h") else {
            throw XCTSkip("librdkafka-dev is not installed; run bin/setup.sh --no-start")
        }
        let r = try ProcessRunner.run("/bin/bash", ["-c", ". bin/lib.sh && kafka_build_bench_client"],
                                      currentDirectory: Project.root, timeout: 120)
        XCTAssertEqual(r.exitCode, 0, r.summary)
        let path = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard FileManager.default.isExecutableFile(atPath: path) else { throw WireError("no client at \(path)\n\(r.summary)") }
        return path
    }

    private func fields(_ line: String) -> [String: String] {
        var d: [String: String] = [:]
        for kv in line.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            let p = kv.split(separator: "=", maxSplits: 1)
            if p.count == 2 { d[String(p[0])] = String(p[1]) }
        }
        return d
    }

    func testLatencyProduceConsumeRuns() async throws {
        let client = try buildClient()
        let c = try await startCluster()
        try c.createTopic("lat")
        try c.waitForLeaders(topic: "lat")
        try c.createTopic("tp", partitions: 2)
        try c.waitForLeaders(topic: "tp", partitions: 2)
        let bootstrap = "127.0.0.1:\(c.broker.port)"
        let pid = "\(c.broker.pid ?? 0)"

        let lat = try ProcessRunner.run(client, ["--mode", "latency", "--bootstrap", bootstrap, "--topic", "lat",
                                                 "--rate", "1000", "--seconds", "2", "--warmup", "1",
                                                 "--broker-pids", pid], timeout: 60)
        XCTAssertEqual(lat.exitCode, 0, lat.summary)
        let l = fields(lat.stdout)
        XCTAssertEqual(l["mode"], "latency", lat.summary)
        XCTAssertEqual(l["sent"], "2000", lat.summary)
        XCTAssertEqual(l["lost"], "0", lat.summary)
        for key in ["p50_ms", "p99_ms", "p999_ms", "max_ms", "client_cpu_ns_msg", "broker_cpu_ns_msg", "broker_rss_mb"] {
            XCTAssertNotNil(l[key].flatMap(Double.init), "\(key) missing\n\(lat.summary)")
        }

        let prod = try ProcessRunner.run(client, ["--mode", "produce", "--bootstrap", bootstrap, "--topic", "tp",
                                                  "--messages", "20000", "--broker-pids", pid], timeout: 60)
        XCTAssertEqual(prod.exitCode, 0, prod.summary)
        let p = fields(prod.stdout)
        XCTAssertEqual(p["delivered"], "20000", prod.summary)
        XCTAssertEqual(p["partitions"], "2", prod.summary)
        XCTAssertNotNil(p["msg_s"].flatMap(Double.init), prod.summary)
        XCTAssertNotNil(p["broker_cpu_ns_msg"].flatMap(Double.init), prod.summary)

        let cons = try ProcessRunner.run(client, ["--mode", "consume", "--bootstrap", bootstrap, "--topic", "tp",
                                                  "--messages", "20000"], timeout: 60)
        XCTAssertEqual(cons.exitCode, 0, cons.summary)
        let k = fields(cons.stdout)
        XCTAssertEqual(k["consumed"], "20000", cons.summary)
        XCTAssertNotNil(k["mb_s"].flatMap(Double.init), cons.summary)
    }
}
