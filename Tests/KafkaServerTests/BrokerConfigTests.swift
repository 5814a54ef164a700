import Foundation
import KafkaProtocol
import KafkaServer
import XCTest

final class BrokerConfigTests: XCTestCase {
    func parse(_ text: String) throws -> BrokerConfig {
        try BrokerConfig.parse(PropertiesFile.parse(text))
    }

    func testKafkaNamesAndDefaults() throws {
        let c = try parse("""
        # comment
        broker.id=3
        port = 9093
        log.dirs=/a,/b
        zookeeper.connect=h1:2181,h2:2181/kafka
        log.segment.bytes=1048576
        log.retention.minutes=5
        auto.create.topics.enable=false
        """)
        XCTAssertEqual(c.brokerId, 3)
        XCTAssertEqual(c.port, 9093)
        XCTAssertEqual(c.logDirs, ["/a", "/b"])
        XCTAssertEqual(c.zookeeperConnect, "h1:2181,h2:2181/kafka")
        XCTAssertEqual(c.log.segmentBytes, 1048576)
        XCTAssertEqual(c.log.retentionMs, 300000)
        XCTAssertFalse(c.autoCreateTopics)
        XCTAssertEqual(c.numPartitions, 1)
        XCTAssertEqual(c.messageMaxBytes, 1000012)
        XCTAssertEqual(c.zookeeperConnectionTimeoutMs, 6000)
    }

    func testMalformedValueNamesTheKey() {
        XCTAssertThrowsError(try parse("broker.id=0\nzookeeper.connect=x:1\nport=abc")) { e in
            XCTAssertTrue("\(e)".contains("port"), "\(e)")
        }
        XCTAssertThrowsError(try parse("broker.id=0\nzookeeper.connect=x:1\nauto.create.topics.enable=maybe")) { e in
            XCTAssertTrue("\(e)".contains("auto.create.topics.enable"), "\(e)")
        }
        XCTAssertThrowsError(try parse("zookeeper.connect=x:1")) { e in XCTAssertTrue("\(e)".contains("broker.id")) }
        XCTAssertThrowsError(try parse("broker.id=0")) { e in XCTAssertTrue("\(e)".contains("zookeeper.connect")) }
    }

    func testUnknownKeysAreCollectedForWarnings() throws {
        let c = try parse("broker.id=0\nzookeeper.connect=x:1\nno.such.key=1\nnum.io.threads=8")
        XCTAssertEqual(c.unknownKeys, ["no.such.key"])
    }

    /// server.properties on disk: the shared reader's syntax, and errors naming the file and the key.
    func testLoadFromFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("brokercfg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("server.properties").path
        try "broker.id : 4\nzookeeper.connect=h:2181\nlog.dirs=/a,\\\n    /b\nport 9095\n".write(toFile: file, atomically: true, encoding: .utf8)
        let c = try BrokerConfig.load(path: file)
        XCTAssertEqual(c.brokerId, 4)
        XCTAssertEqual(c.logDirs, ["/a", "/b"])
        XCTAssertEqual(c.port, 9095)

        try "broker.id=0\nzookeeper.connect=h:2181\nport=abc\n".write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try BrokerConfig.load(path: file)) { e in
            XCTAssertTrue(e is ConfigError, "\(e)")
            XCTAssertTrue("\(e)".hasPrefix(file + ": "), "\(e)")
            XCTAssertTrue("\(e)".contains("port"), "\(e)")
        }
        let missing = dir.appendingPathComponent("nope.properties").path
        XCTAssertThrowsError(try BrokerConfig.load(path: missing)) { e in
            XCTAssertTrue(e is ConfigError, "\(e)")
            XCTAssertEqual("\(e)", "config file \(missing) does not exist")
        }
    }

    /// `metrics.port` is off unless set; its value must be a port; `metrics.host` is optional.
    func testMetricsPort() throws {
        let base = "broker.id=0\nzookeeper.connect=x:1\n"
        let off = try parse(base)
        XCTAssertNil(off.metricsPort)
        XCTAssertNil(off.metricsHost)
        XCTAssertFalse(off.unknownKeys.contains("metrics.port"))
        XCTAssertNil(try parse(base + "metrics.port=").metricsPort, "an empty value leaves it off")
        let on = try parse(base + "metrics.port=9404\nmetrics.host=127.0.0.1")
        XCTAssertEqual(on.metricsPort, 9404)
        XCTAssertEqual(on.metricsHost, "127.0.0.1")
        XCTAssertFalse(on.unknownKeys.contains("metrics.port") || on.unknownKeys.contains("metrics.host"))
        XCTAssertEqual(try parse(base + "metrics.port=0").metricsPort, 0, "0 picks a free port")
        for bad in ["abc", "-1", "65536", "9404x"] {
            XCTAssertThrowsError(try parse(base + "metrics.port=\(bad)"), bad) { e in
                XCTAssertTrue("\(e)".contains("for configuration metrics.port"), "\(e)")
            }
        }
    }
}
