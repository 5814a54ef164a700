import Foundation
import KafkaTestSupport
import XCTest

final class TestSupportTests: XCTestCase {
    func testProcessRunner() throws {
        let echo = try ProcessRunner.run("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"])
        XCTAssertEqual(echo.exitCode, 3)
        XCTAssertEqual(echo.stdout, "out\n")
        XCTAssertEqual(echo.stderr, "err\n")

        let cat = try ProcessRunner.run("cat", [], stdin: "line1\nline2\n")
        XCTAssertEqual(cat.exitCode, 0)
        XCTAssertEqual(cat.stdout, "line1\nline2\n")

        let env = try ProcessRunner.run("/bin/sh", ["-c", "echo $FOO; pwd"], environment: ["FOO": "bar"],
                                        currentDirectory: "/tmp")
        XCTAssertEqual(env.stdout, "bar\n/tmp\n")

        let start = Date()
        XCTAssertThrowsError(try ProcessRunner.run("sleep", ["30"], timeout: 0.5))
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
    }

    func testBackgroundProcess() throws {
        let dir = NSTemporaryDirectory() + "bg-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }

        let p = try BackgroundProcess.launch("/bin/sh", ["-c", "echo started; exec sleep 30"],
                                             outputFile: dir + "/out.log")
        XCTAssertGreaterThan(p.pid, 0)
        XCTAssertNil(p.waitForExit(timeout: 0.3))
        XCTAssertEqual(p.output(), "started\n")
        p.terminate()
        XCTAssertEqual(p.waitForExit(timeout: 5), 128 + SIGTERM)

        let q = try BackgroundProcess.launch("/bin/sh", ["-c", "trap '' TERM; sleep 30"], outputFile: dir + "/q.log")
        usleep(200_000)
        q.terminate()
        XCTAssertNil(q.waitForExit(timeout: 0.3))
        q.kill()
        XCTAssertEqual(q.waitForExit(timeout: 5), 128 + SIGKILL)

        let r = try BackgroundProcess.launch("/bin/sh", ["-c", "exit 7"], outputFile: dir + "/r.log")
        XCTAssertEqual(r.waitForExit(timeout: 5), 7)
    }

    func testPortsAndPaths() throws {
        let port = try FreePort.allocate()
        XCTAssertGreaterThan(port, 1024)
        XCTAssertFalse(TestNetwork.waitForPort(port, timeout: 0.2))
        XCTAssertTrue(FileManager.default.fileExists(atPath: ProjectPaths.root + "/Package.swift"))
        XCTAssertEqual(ProjectPaths.releaseBinDir, ProjectPaths.root + "/.build/release")
    }

    func testZooKeeperServerStartsAndStops() async throws {
        let server = try await ZooKeeperServer.start()
        XCTAssertEqual(server.connectString, "127.0.0.1:\(server.port)")
        XCTAssertTrue(TestNetwork.waitForPort(server.port, timeout: 1))
        let srvr = TestNetwork.fourLetterWord("srvr", port: server.port)
        XCTAssertTrue(srvr?.contains("Mode: standalone") ?? false, srvr ?? "no answer")
        let pid = try XCTUnwrap(server.pid)
        server.stop()
        server.stop()
        XCTAssertNotEqual(kill(pid, 0), 0, "the JVM is gone")
        XCTAssertFalse(TestNetwork.isOpen(server.port))
        XCTAssertFalse(FileManager.default.fileExists(atPath: server.directory))
    }
}
