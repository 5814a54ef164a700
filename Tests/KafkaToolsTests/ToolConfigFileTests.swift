import Foundation
import KafkaClient
import KafkaProtocol
import KafkaTools
import XCTest

/// The console tools' `--consumer.config` / `--producer.config` files go through `PropertiesFile`
/// (java.util.Properties syntax, as Kafka's tools read them with `Utils.loadProps`).
final class ToolConfigFileTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("toolcfg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    private func write(_ name: String, _ text: String) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testConsumerConfigUsesPropertiesSyntax() throws {
        let path = try write("consumer.properties", """
        # consumer.config as Kafka's sample file writes it\r
        ! bang comment
        group.id : my\\-group\\u005F1
        auto.commit.interval.ms 250
        partition.assignment.strategy = roundrobin   \t
        client.id=console-\\
            tool
        zookeeper.connect=h1:2181,h2:2181/kafka
        """)
        let props = try ConsoleConsumerCommand.loadConsumerConfig(path: path)
        XCTAssertEqual(props, [
            "group.id": "my-group_1",
            "auto.commit.interval.ms": "250",
            "partition.assignment.strategy": "roundrobin",
            "client.id": "console-tool",
            "zookeeper.connect": "h1:2181,h2:2181/kafka",
        ])
        // The group consumer takes them as they are.
        let cfg = try ZookeeperConsumerConfig(properties: props)
        XCTAssertEqual(cfg.groupId, "my-group_1")
        XCTAssertEqual(cfg.autoCommitIntervalMs, 250)
        XCTAssertEqual(cfg.clientId, "console-tool")
    }

    func testConsumerConfigMissingFileIsNamed() throws {
        let path = dir.appendingPathComponent("absent.properties").path
        XCTAssertThrowsError(try ConsoleConsumerCommand.loadConsumerConfig(path: path)) { e in
            XCTAssertEqual("\(e)", "--consumer.config file \(path) does not exist")
        }
    }

    func testProducerConfigUsesPropertiesSyntax() throws {
        let path = try write("producer.properties", """
        # producer.config
        compression.codec : lz4
        request.required.acks=-1
        message.send.max.retries  7
        retry.backoff.ms=\\
          250
        serializer.class=kafka.serializer.DefaultEncoder
        """)
        let cfg = try ConsoleProducerFileConfig.load(path: path)
        XCTAssertEqual(cfg, ConsoleProducerFileConfig(compressionCodec: "lz4", requiredAcks: -1, retries: 7, retryBackoffMs: 250))
        XCTAssertEqual(try ConsoleProducerFileConfig.load(path: try write("empty.properties", "# nothing\n")), ConsoleProducerFileConfig())
    }

    func testProducerConfigErrorsNameFileAndKey() throws {
        let path = try write("bad.properties", "request.required.acks = all\n")
        XCTAssertThrowsError(try ConsoleProducerFileConfig.load(path: path)) { e in
            XCTAssertEqual("\(e)", "Invalid value \"all\" for request.required.acks in \(path): expected an integer")
        }
        let retries = try write("bad2.properties", "message.send.max.retries=many")
        XCTAssertThrowsError(try ConsoleProducerFileConfig.load(path: retries)) { e in
            XCTAssertTrue("\(e)".contains("message.send.max.retries") && "\(e)".contains(retries), "\(e)")
        }
        let missing = dir.appendingPathComponent("absent.properties").path
        XCTAssertThrowsError(try ConsoleProducerFileConfig.load(path: missing)) { e in
            XCTAssertEqual("\(e)", "--producer.config file \(missing) does not exist")
        }
    }
}
