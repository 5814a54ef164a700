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

    func testPropertiesSyntax() {
        let p = PropertiesFile.parse("a=1\n! bang comment\nb : 2\nc 3\nlong=x\\\n  y\nesc=tab\\there")
        XCTAssertEqual(p.map(\.key), ["a", "b", "c", "long", "esc"])
        XCTAssertEqual(p.map(\.value), ["1", "2", "3", "xy", "tab\there"])
    }
}
