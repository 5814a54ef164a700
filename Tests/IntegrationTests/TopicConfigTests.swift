import Foundation
import KafkaTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Per-topic overrides through bin/kafka-topics.sh: --alter --config reaches a running broker via
/// /config/changes, --deleteConfig reverts to the broker default, and unknown keys or bad values are refused
/// by the tool itself.
final class TopicConfigTests: IntegrationTestCase {
    private func topics(_ c: TestCluster, _ args: [String]) throws -> ProcessResult {
        try Project.run("kafka-topics.sh", ["--zookeeper", c.zkConnect] + args)
    }

    /// The `Configs:` field of `--describe`.
    private func describedConfigs(_ c: TestCluster, _ topic: String) throws -> String {
        let r = try topics(c, ["--describe", "--topic", topic])
        XCTAssertEqual(r.exitCode, 0, r.summary)
        guard let line = r.stdout.split(separator: "\n").first(where: { $0.hasPrefix("Topic:\(topic)\t") }),
              let range = line.range(of: "Configs:") else { return "" }
        return String(line[range.upperBound...])
    }

    private func produce(_ conn: WireConnection, _ topic: String, bytes: Int) throws -> Int64 {
        var last: Int64 = -1
        var written = 0
        while written < bytes {
            let batch = (0..<10).map { (key: nil as String?, value: "payload-\($0)-" + String(repeating: "p", count: 100) as String?) }
            let (error, base) = try conn.produce(topic: topic, messages: batch)
            XCTAssertEqual(error, 0)
            last = base + 9
            written += 10 * 136
        }
        return last + 1
    }

    private func configChangesProcessed(_ b: TestBroker) -> Int {
        b.output().components(separatedBy: "Processed topic config change").count - 1
    }

    func testAlterAndDeleteConfigReachARunningBroker() async throws {
        let topic = "altered"
        let c = try await startCluster(overrides: ["log.retention.check.interval.ms": "300", "log.segment.delete.delay.ms": "100"])
        try LogTools.createTopic(c, topic, configs: ["segment.bytes": "4096"])
        try c.waitForLeaders(topic: topic)
        XCTAssertEqual(try describedConfigs(c, topic), "segment.bytes=4096")
        let conn = try c.broker.connect()
        var leo = try produce(conn, topic, bytes: 40_000)
        XCTAssertGreaterThan(LogDirectory.segments(LogDirectory.partitionDir(c.broker, topic)).count, 5)
        usleep(1_500_000)
        XCTAssertEqual(try conn.offsets(topic: topic, time: -2).offsets.first, 0, "the default retention (7 days) keeps everything")

        // --alter --config retention.ms=1000: the running broker applies it and deletes the old segments.
        let alter = try topics(c, ["--alter", "--topic", topic, "--config", "retention.ms=1000"])
        XCTAssertEqual(alter.exitCode, 0, alter.summary)
        XCTAssertTrue(alter.stdout.contains("Updated config for topic \"\(topic)\"."), alter.summary)
        let described = try describedConfigs(c, topic)
        XCTAssertTrue(described.contains("retention.ms=1000") && described.contains("segment.bytes=4096"), described)
        _ = try poll(timeout: 20, "retention.ms=1000 to delete every old segment (log end offset \(leo))") { () -> Bool? in
            try conn.offsets(topic: topic, time: -2).offsets.first == leo ? true : nil
        }
        XCTAssertGreaterThanOrEqual(configChangesProcessed(c.broker), 1, c.broker.tail(30))
        XCTAssertEqual(try conn.fetch(topic: topic, offset: 0).error, 1, "the deleted data is out of range")

        // --deleteConfig retention.ms: back to the broker default; new data stays.
        let processedBefore = configChangesProcessed(c.broker)
        let delete = try topics(c, ["--alter", "--topic", topic, "--deleteConfig", "retention.ms"])
        XCTAssertEqual(delete.exitCode, 0, delete.summary)
        XCTAssertEqual(try describedConfigs(c, topic), "segment.bytes=4096")
        _ = try poll(timeout: 20, "the broker to process the --deleteConfig notification") {
            configChangesProcessed(c.broker) > processedBefore ? true : nil
        }
        let start = leo
        leo = try produce(conn, topic, bytes: 40_000)
        usleep(2_500_000)   // several retention checks, each more than 1000 ms after the writes
        XCTAssertEqual(try conn.offsets(topic: topic, time: -2).offsets.first, start,
                       "without retention.ms=1000 the broker keeps the new segments")
        XCTAssertEqual(try conn.fetchAll(topic: topic, from: start).count, Int(leo - start))
    }

    func testUnknownKeysAndBadValuesAreRefusedByTheTool() async throws {
        let topic = "guarded"
        let c = try await startCluster()
        try LogTools.createTopic(c, topic, configs: ["retention.ms": "86400000"])
        try c.waitForLeaders(topic: topic)

        // (arguments, words the error must contain)
        let refused: [([String], [String])] = [
            (["--config", "no.such.key=1"], ["no.such.key", "Unknown configuration"]),
            (["--config", "retention.ms=soon"], ["retention.ms", "soon"]),
            (["--config", "segment.bytes=10"], ["segment.bytes", "10", "at least"]),
            (["--config", "segment.bytes=99999999999"], ["segment.bytes", "99999999999"]),
            (["--config", "cleanup.policy=shred"], ["cleanup.policy", "shred"]),
            (["--config", "min.cleanable.dirty.ratio=2"], ["min.cleanable.dirty.ratio", "between 0 and 1"]),
            (["--config", "unclean.leader.election.enable=maybe"], ["unclean.leader.election.enable", "maybe"]),
            (["--config", "retention.ms"], ["retention.ms", "key=value"]),
            (["--config", "retention.ms=1000", "--config", "bogus=2"], ["bogus"]),
            (["--deleteConfig", "no.such.key"], ["no.such.key", "Unknown configuration"]),
        ]
        for (args, words) in refused {
            let r = try topics(c, ["--alter", "--topic", topic] + args)
            XCTAssertNotEqual(r.exitCode, 0, "\(args) must be refused: \(r.summary)")
            let text = r.stderr + r.stdout
            for w in words { XCTAssertTrue(text.contains(w), "\(args): the message must mention \"\(w)\": \(r.summary)") }
            XCTAssertFalse(text.contains("Updated config"), "\(args): \(r.summary)")
        }
        // Nothing was written: the topic keeps its one override.
        XCTAssertEqual(try describedConfigs(c, topic), "retention.ms=86400000")

        // --create with a bad config creates nothing.
        let create = try topics(c, ["--create", "--topic", "never", "--partitions", "1", "--replication-factor", "1",
                                    "--config", "retention.bytes=lots"])
        XCTAssertNotEqual(create.exitCode, 0, create.summary)
        XCTAssertTrue((create.stderr + create.stdout).contains("retention.bytes"), create.summary)
        let list = try topics(c, ["--list"])
        XCTAssertEqual(list.exitCode, 0)
        XCTAssertFalse(list.stdout.split(separator: "\n").contains("never"), list.summary)
    }
}
