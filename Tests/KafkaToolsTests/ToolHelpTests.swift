import Foundation
import KafkaTools
import XCTest

/// Help texts keep example commands on one line, and the shared ZooKeeper settings of the tools.
final class ToolHelpTests: XCTestCase {
    /// Every indented line of a command's discussion (example commands, JSON samples) appears whole
    /// in its help at 80 columns (ArgumentParser used to wrap them mid-command), and prose still
    /// wraps to the width.
    func testExampleCommandsStayOnOneLine() throws {
        let discussions = KafkaToolsMain.commandDiscussions
        XCTAssertGreaterThanOrEqual(discussions.count, 10)
        var examplesChecked = 0
        for (name, discussion) in discussions.sorted(by: { $0.key < $1.key }) {
            let help = try XCTUnwrap(KafkaToolsMain.helpText(name, columns: 80), name)
            let lines = Set(help.split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
            for line in discussion.split(separator: "\n").map(String.init) {
                if line.first == " " {
                    XCTAssertTrue(lines.contains(line), "\(name): the discussion line\n\(line)\nis not a whole line of its help:\n\(help)")
                }
                // A command anywhere in the discussion stays whole on one line of the help.
                if let r = line.range(of: "bin/") ?? line.range(of: "kafka-tools ") {
                    let command = String(line[r.lowerBound...])
                    XCTAssertTrue(lines.contains { $0.contains(command) }, "\(name): the example\n\(command)\nis split in its help:\n\(help)")
                    examplesChecked += 1
                }
            }
            // The options part is ArgumentParser's own, after USAGE.
            XCTAssertTrue(help.contains("USAGE:"), "\(name): \(help)")
            XCTAssertTrue(help.contains("OPTIONS:"), "\(name): \(help)")
            // Prose lines of the overview still fit the width.
            let overview = help.components(separatedBy: "USAGE:")[0]
            for line in overview.split(separator: "\n").map(String.init)
            where line.first != " " && line.contains(" ") {
                XCTAssertLessThanOrEqual(line.count, 80, "\(name): prose line wider than 80 columns: \(line)")
            }
        }
        XCTAssertGreaterThanOrEqual(examplesChecked, 10, "example commands checked")
        // The longest example of kafka-topics.sh, whole.
        let topics = try XCTUnwrap(KafkaToolsMain.helpText("topics", columns: 80))
        XCTAssertTrue(topics.contains("\n  bin/kafka-topics.sh --zookeeper localhost:2181 --create --topic test --partitions 1 --replication-factor 1\n"), topics)
    }

    func testZooKeeperServersOfAConnectString() {
        let s = ToolZooKeeper.servers("zk1:2181,zk2:2182/kafka")
        XCTAssertEqual(s.map(\.host), ["zk1", "zk2"])
        XCTAssertEqual(s.map(\.port), [2181, 2182])
        XCTAssertEqual(ToolZooKeeper.servers("localhost").map(\.port), [2181])
        XCTAssertEqual(ToolZooKeeper.servers("[::1]:2185").map(\.host), ["::1"])
        XCTAssertEqual(ToolZooKeeper.servers("[::1]:2185").map(\.port), [2185])
        // One default for every tool: 0.8.2's zookeeper.connection.timeout.ms.
        XCTAssertEqual(ToolZooKeeper.defaultConnectionTimeoutMs, 6000)
    }
}
