import Foundation
import KafkaTestSupport
import XCTest
import ZooKeeper

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

final class ZooKeeperServerRestartTests: XCTestCase {
    /// A server restart (same port and data) keeps data and sessions: the client sees
    /// disconnected/connected but no expiry, and its ephemeral node survives.
    func testRestartKeepsDataAndSession() async throws {
        let server = try await ZooKeeperServer.start()
        defer { server.stop() }
        let zk = try await ZooKeeperClient.connect(server.connectString, sessionTimeoutMs: 10_000)
        let recorder = EventRecorder(zk.events())
        try await zk.create("/persistent", data: Array("p".utf8))
        try await zk.create("/ephemeral", data: nil, mode: .ephemeral)
        let session = zk.sessionId
        let oldPid = server.pid

        try await server.restart()
        XCTAssertNotEqual(server.pid, oldPid)
        let back = await recorder.waitUntil(timeout: 15) { $0.contains(.session(.disconnected)) && $0.last == .session(.connected) }
        XCTAssertTrue(back, "events: \(recorder.events)")
        XCTAssertEqual(zk.sessionId, session)
        let data = try await zk.get("/persistent").data
        XCTAssertEqual(data, Array("p".utf8))
        let eph = try await zk.exists("/ephemeral")
        XCTAssertEqual(eph?.ephemeralOwner, session)
        XCTAssertFalse(recorder.events.contains(.session(.expired)))
        await zk.close()
        server.stop()
        try await XCTAssertThrowsErrorAsync { try await server.restart() }
    }
}

func XCTAssertThrowsErrorAsync(_ body: () async throws -> Void, file: StaticString = #filePath, line: UInt = #line) async throws {
    do {
        try await body()
        XCTFail("expected an error", file: file, line: line)
    } catch {}
}
