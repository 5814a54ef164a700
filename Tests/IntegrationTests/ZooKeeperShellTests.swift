import Foundation
import XCTest

/// bin/zookeeper-shell.sh (0.8.2's `zookeeper-shell.sh host:port[/chroot] [cmd args]`) wraps Debian's
/// ZooKeeperMain: it lists the broker registrations of a running cluster.
final class ZooKeeperShellTests: IntegrationTestCase {
    func testListsRootAndBrokerIds() async throws {
        let c = try await startCluster()
        let root = try Project.run("zookeeper-shell.sh", [c.zkConnect, "ls", "/"], timeout: 60)
        XCTAssertEqual(root.exitCode, 0, root.summary)
        XCTAssertTrue(root.stdout.contains("brokers"), root.summary)
        let ids = try Project.run("zookeeper-shell.sh", [c.zkConnect, "ls", "/brokers/ids"], timeout: 60)
        XCTAssertEqual(ids.exitCode, 0, ids.summary)
        XCTAssertTrue(ids.stdout.contains("[\(c.broker.id)]"), ids.summary)
        // A command ZooKeeperMain does not have: its command list, the command named, non-zero exit.
        let bad = try Project.run("zookeeper-shell.sh", [c.zkConnect, "lsr", "/"], timeout: 60)
        XCTAssertNotEqual(bad.exitCode, 0, bad.summary)
        XCTAssertTrue(bad.stderr.contains("Command not found lsr"), bad.summary)
        XCTAssertTrue(bad.stderr.contains("ls [-s] [-w] [-R] path"), bad.summary)
    }

    func testUnreachableServerFailsFast() throws {
        let r = try Project.run("zookeeper-shell.sh", ["127.0.0.1:1/chroot", "ls", "/"], timeout: 30)
        XCTAssertEqual(r.exitCode, 1, r.summary)
        XCTAssertTrue(r.stderr.contains("cannot connect to ZooKeeper at 127.0.0.1:1"), r.summary)
    }

    func testMissingServerArgumentIsNamed() throws {
        let r = try Project.run("zookeeper-shell.sh", [], timeout: 30)
        XCTAssertEqual(r.exitCode, 1, r.summary)
        XCTAssertTrue(r.stderr.contains("missing argument: zookeeper_host:port[/path]"), r.summary)
    }
}
