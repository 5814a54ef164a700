import Foundation
import KafkaTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Issue 10 item 6, "a newcomer's rough edges": each one tried as a new user meets it.
final class NewcomerTests: IntegrationTestCase {
    private func tempDir(_ prefix: String) throws -> String {
        let dir = NSTemporaryDirectory() + prefix + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    private func keepOrRemove(_ dir: String) {
        if ProcessInfo.processInfo.environment["KAFKA_TEST_KEEP_TMP"] != "1" {
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    /// Runs `body` and returns its result with the seconds it took.
    private func timed<T>(_ body: () throws -> T) rethrows -> (T, Double) {
        let start = Date()
        let r = try body()
        return (r, Date().timeIntervalSince(start))
    }

    // MARK: 1. zookeeper-server-stop.sh

    /// bin/zookeeper-server-start.sh -daemon, then bin/zookeeper-server-stop.sh: stopped within a few
    /// seconds (it took ~12 s: SIGINT was ignored, only the SIGTERM 10 s later worked) and
    /// zookeeper.out has no stack trace. A daemon ZooKeeper also stops on SIGINT now.
    func testZooKeeperStopScriptIsFastAndClean() throws {
        let dir = try tempDir("kafka-swift-zkstop-")
        defer { keepOrRemove(dir) }
        let port = try FreePort.allocate()
        let props = "\(dir)/zookeeper.properties"
        try "dataDir=\(dir)/data\nclientPort=\(port)\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\nadmin.enableServer=false\n"
            .write(toFile: props, atomically: true, encoding: .utf8)
        let env = ["PID_DIR": "\(dir)/run", "LOG_DIR": "\(dir)/logs", "KAFKA_HEAP_OPTS": "-Xmx128M -Xms32M"]
        let out = "\(dir)/logs/zookeeper.out"
        func pidFromFile() -> Int32 {
            let text = (try? String(contentsOfFile: "\(dir)/run/zookeeper.pid", encoding: .utf8)) ?? ""
            return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }

        for round in 1...2 {
            let start = try Project.run("zookeeper-server-start.sh", ["-daemon", props], timeout: 60, environment: env)
            XCTAssertEqual(start.exitCode, 0, start.summary)
            let pid = pidFromFile()
            XCTAssertGreaterThan(pid, 0, start.summary)
            defer { if pid > 0 && processIsAlive(pid) { kill(pid, SIGKILL) } }
            // Serving (srvr answers); no bare connect-and-close, which ZooKeeper logs as an exception.
            XCTAssertNotNil(try? poll(timeout: 30, "ZooKeeper to answer srvr") { TestNetwork.fourLetterWord("srvr", port: port) },
                            "ZooKeeper does not serve on \(port)")

            if round == 1 {
                let (stop, seconds) = try timed { try Project.run("zookeeper-server-stop.sh", [], timeout: 60, environment: env) }
                XCTAssertEqual(stop.exitCode, 0, stop.summary)
                XCTAssertLessThan(seconds, 5, "zookeeper-server-stop.sh took \(seconds) s:\n\(stop.summary)")
                XCTAssertTrue(stop.stdout.contains("ZooKeeper (pid \(pid)) stopped"), stop.summary)
            } else {
                // Ctrl-C style: SIGINT to the daemon (was ignored: started with `&` by a script).
                let (_, seconds) = timed { () -> Void in
                    kill(pid, SIGINT)
                    _ = try? poll(timeout: 15, "ZooKeeper to exit on SIGINT") { processIsAlive(pid) ? nil : true }
                }
                XCTAssertLessThan(seconds, 5, "SIGINT took \(seconds) s to stop ZooKeeper")
            }
            XCTAssertFalse(processIsAlive(pid), "ZooKeeper (pid \(pid)) is still running after round \(round)")
            XCTAssertFalse(TestNetwork.isOpen(port))
            let log = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            let traces = log.split(separator: "\n").filter { $0.hasPrefix("\tat ") || $0.contains("Exception") }
            XCTAssertTrue(traces.isEmpty, "round \(round): zookeeper.out has stack traces:\n\(traces.prefix(20).joined(separator: "\n"))")
        }
    }

    // MARK: 2. Tools and a ZooKeeper port where nothing listens

    /// Nothing listens on the port: the tools fail within a few seconds (not 30 s), naming the address.
    func testToolsFailFastWhenNothingListensOnTheZooKeeperPort() throws {
        try Project.requireReleaseBuild()
        let port = try FreePort.allocate()
        let zk = "127.0.0.1:\(port)"
        let cases: [(String, [String])] = [
            ("kafka-topics.sh", ["--list", "--zookeeper", zk]),
            ("kafka-console-consumer.sh", ["--zookeeper", zk, "--topic", "t"]),
            ("kafka-preferred-replica-election.sh", ["--zookeeper", zk]),
            ("kafka-consumer-perf-test.sh", ["--zookeeper", zk, "--topic", "t"]),
        ]
        for (script, args) in cases {
            let (r, seconds) = try timed { try Project.run(script, args, timeout: 40) }
            XCTAssertNotEqual(r.exitCode, 0, "\(script): \(r.summary)")
            XCTAssertLessThan(seconds, 6, "\(script) took \(seconds) s to fail:\n\(r.summary)")
            XCTAssertTrue(r.stderr.contains("cannot connect to ZooKeeper at \(zk): connection refused"), "\(script): \(r.summary)")
        }
    }

    /// Something accepts TCP connections but never answers as ZooKeeper: one line says what the
    /// tool waits for, and it gives up after the one timeout every tool shares
    /// (KAFKA_ZOOKEEPER_CONNECTION_TIMEOUT_MS, default 0.8.2's zookeeper.connection.timeout.ms 6000).
    func testToolsSayWhatTheyWaitForAndShareOneTimeout() throws {
        try Project.requireReleaseBuild()
        let listener = try SilentListener()
        let zk = "127.0.0.1:\(listener.port)"
        let env = ["KAFKA_ZOOKEEPER_CONNECTION_TIMEOUT_MS": "3000"]
        for (script, args) in [("kafka-topics.sh", ["--list", "--zookeeper", zk]),
                               ("kafka-console-consumer.sh", ["--zookeeper", zk, "--topic", "t"])] {
            let (r, seconds) = try timed { try Project.run(script, args, timeout: 40, environment: env) }
            XCTAssertNotEqual(r.exitCode, 0, "\(script): \(r.summary)")
            XCTAssertTrue(r.stderr.contains("Waiting for ZooKeeper at \(zk) (up to 3 s) ..."), "\(script): \(r.summary)")
            XCTAssertTrue(r.stderr.contains("cannot connect to ZooKeeper at \(zk): no connection within 3000 ms"), "\(script): \(r.summary)")
            XCTAssertGreaterThan(seconds, 2.5, "\(script) gave up early: \(r.summary)")
            XCTAssertLessThan(seconds, 8, "\(script) took \(seconds) s: \(r.summary)")
        }
    }

    // MARK: 3 + 4. Broker connection errors; the console producer connects at start-up

    /// A wrong broker port: the console producer says so at start-up, before any input (it used to
    /// wait for the first line), in words instead of NIO's `SingleConnectionFailure(...)`.
    func testWrongBrokerPortIsReportedPlainlyAtStartUp() throws {
        try Project.requireReleaseBuild()
        let port = try FreePort.allocate()
        let dir = try tempDir("kafka-swift-fifo-")
        defer { keepOrRemove(dir) }
        // stdin that stays open and empty, as a terminal where nothing was typed yet.
        let fifo = "\(dir)/stdin"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let writer = open(fifo, O_RDWR)
        XCTAssertGreaterThanOrEqual(writer, 0)
        defer { close(writer) }
        let command = "exec \"\(Project.script("kafka-console-producer.sh"))\" --broker-list localhost:\(port) --topic test < \"\(fifo)\""
        let (r, seconds) = try timed { try ProcessRunner.run("/bin/sh", ["-c", command], currentDirectory: Project.root, timeout: 40) }
        XCTAssertEqual(r.exitCode, 1, r.summary)
        XCTAssertLessThan(seconds, 10, r.summary)
        XCTAssertTrue(r.stderr.contains("cannot connect to broker localhost:\(port): connection refused"), r.summary)
        for detail in ["SingleConnectionFailure", "NIOConnectionError", "IOError", "[IPv4]"] {
            XCTAssertFalse(r.stderr.contains(detail), "library internals (\(detail)) in: \(r.summary)")
        }

        // Other broker-list tools print the same words.
        for (script, args) in [("kafka-producer-perf-test.sh", ["--broker-list", "localhost:\(port)", "--topics", "t", "--messages", "10"]),
                               ("kafka-replica-verification.sh", ["--broker-list", "localhost:\(port)"]),
                               ("kafka-simple-consumer-shell.sh", ["--broker-list", "localhost:\(port)", "--topic", "t"])] {
            let t = try Project.run(script, args, timeout: 40)
            XCTAssertEqual(t.exitCode, 1, "\(script): \(t.summary)")
            XCTAssertTrue(t.stderr.contains("cannot connect to broker localhost:\(port): connection refused"), "\(script): \(t.summary)")
            XCTAssertFalse(t.stderr.contains("SingleConnectionFailure"), "\(script): \(t.summary)")
        }
    }

    // MARK: 5. Console consumer on a topic that does not exist

    func testConsoleConsumerSaysTheTopicDoesNotExistYet() async throws {
        let c = try await startCluster()
        let missing = try Project.run("kafka-console-consumer.sh",
                                      ["--zookeeper", c.zkConnect, "--topic", "not-there", "--consumer-timeout-ms", "2000"], timeout: 60)
        XCTAssertEqual(missing.exitCode, 0, missing.summary)
        XCTAssertTrue(missing.stderr.contains("Topic \"not-there\" does not exist yet; waiting for it to be created (Ctrl-C to stop)."), missing.summary)

        try c.createTopic("there")
        try c.waitForLeaders(topic: "there")
        let present = try Project.run("kafka-console-consumer.sh",
                                      ["--zookeeper", c.zkConnect, "--topic", "there", "--consumer-timeout-ms", "2000"], timeout: 60)
        XCTAssertEqual(present.exitCode, 0, present.summary)
        XCTAssertFalse(present.stderr.contains("does not exist"), present.summary)

        // It keeps waiting, as 0.8.2 does, and the help says so.
        let help = try Project.run("kafka-console-consumer.sh", ["--help"], timeout: 30)
        XCTAssertTrue(help.stdout.contains("A topic that does not exist yet is waited for"), help.summary)
    }

    // MARK: 8. Duplicate broker.id

    func testDuplicateBrokerIdNamesTheRunningBroker() async throws {
        let c = try await startCluster(brokerIds: [3])
        let twin = try c.addBroker(id: 3)
        try twin.start()
        let code = twin.process?.waitForExit(timeout: 60)
        XCTAssertNotNil(code, "a second broker.id=3 must exit:\n\(twin.tail(30))")
        XCTAssertNotEqual(code, 0, twin.tail(30))
        let out = twin.output()
        XCTAssertTrue(out.contains("broker.id 3 is already registered by a running broker at 127.0.0.1:\(c.broker.port)"), twin.tail(30))
        XCTAssertFalse(out.contains("bad data in ZooKeeper node"), twin.tail(30))
        XCTAssertTrue(c.broker.isRunning)
        try c.broker.waitUntilReady(timeout: 10)
    }

    // MARK: 9. kafka-server-stop.sh with ZooKeeper down

    /// `kafka-server-start.sh -daemon` with a server.properties in `dir` (plus `extra` lines), once
    /// the broker is registered: its properties file, the scripts' environment and its pid.
    private func startDaemonBroker(id: Int, dir: String, zk: ZooKeeperServer, extra: String = "") throws
        -> (props: String, env: [String: String], pid: Int32) {
        let port = try FreePort.allocate()
        let props = "\(dir)/server.properties"
        try "broker.id=\(id)\nport=\(port)\nhost.name=127.0.0.1\nlog.dirs=\(dir)/kafka-logs\nzookeeper.connect=\(zk.connectString)\n\(extra)"
            .write(toFile: props, atomically: true, encoding: .utf8)
        let env = ["PID_DIR": "\(dir)/run", "LOG_DIR": "\(dir)/logs"]
        let start = try Project.run("kafka-server-start.sh", ["-daemon", props], environment: env)
        XCTAssertEqual(start.exitCode, 0, start.summary)
        let pid = Int32((try String(contentsOfFile: "\(dir)/run/kafka-server-\(id).pid", encoding: .utf8))
            .trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        XCTAssertGreaterThan(pid, 0)
        do {
            _ = try poll(timeout: 60, "the daemon broker to register") { () -> Bool? in
                guard processIsAlive(pid) else { throw WireError("the daemon broker exited") }
                return try WireConnection(port: port).metadata().brokers.contains { $0.id == Int32(id) } ? true : nil
            }
        } catch {
            if pid > 0 && processIsAlive(pid) { kill(pid, SIGKILL) }
            throw error
        }
        return (props, env, pid)
    }

    /// The broker's controlled shutdown needs ZooKeeper; with ZooKeeper down the stop script says so
    /// at once and the stop stays bounded (controlled.shutdown.max.retries x backoff).
    func testServerStopWithZooKeeperDownSaysWhatItIsDoing() async throws {
        try Project.requireReleaseBuild()
        let zk = try await ZooKeeperServer.start()
        defer { zk.stop() }
        let dir = try tempDir("kafka-swift-stopzk-")
        defer { keepOrRemove(dir) }
        let (props, env, pid) = try startDaemonBroker(id: 5, dir: dir, zk: zk)
        defer { if pid > 0 && processIsAlive(pid) { kill(pid, SIGKILL) } }

        zk.stop()
        let (stop, seconds) = try timed { try Project.run("kafka-server-stop.sh", [props], timeout: 90, environment: env) }
        XCTAssertEqual(stop.exitCode, 0, stop.summary)
        XCTAssertFalse(processIsAlive(pid), stop.summary)
        XCTAssertLessThan(seconds, 25, "kafka-server-stop.sh took \(seconds) s:\n\(stop.summary)")
        XCTAssertTrue(stop.stdout.contains("ZooKeeper (\(zk.connectString)) does not answer: broker 5 cannot reach the controller for its controlled shutdown."), stop.summary)
        XCTAssertTrue(stop.stdout.contains("It gives up after 3 attempts, 5000 ms apart"), stop.summary)
        // The broker's own progress lines, from its log.
        XCTAssertTrue(stop.stdout.contains("Controlled shutdown attempt 1 of 3 failed"), stop.summary)
        XCTAssertTrue(stop.stdout.contains("Stopped"), stop.summary)
    }

    /// ZooKeeper stops answering while the controller is already handling the broker's own
    /// controlled shutdown: each attempt is bounded by controller.socket.timeout.ms, so the broker
    /// still stops (it used to retry ZooKeeper for as long as the server was gone).
    func testServerStopWhenZooKeeperFreezesDuringControlledShutdown() async throws {
        try Project.requireReleaseBuild()
        let zk = try await ZooKeeperServer.start()
        defer { zk.stop() }
        let dir = try tempDir("kafka-swift-stopzk2-")
        defer { keepOrRemove(dir) }
        let (_, _, pid) = try startDaemonBroker(id: 6, dir: dir, zk: zk,
                                                extra: "controller.socket.timeout.ms=3000\ncontrolled.shutdown.retry.backoff.ms=500\n")
        defer { if pid > 0 && processIsAlive(pid) { kill(pid, SIGKILL) } }
        // Many partitions: the controller's reading of their states is the window to freeze in.
        let create = try Project.run("kafka-topics.sh", ["--create", "--zookeeper", zk.connectString, "--topic", "many",
                                                         "--partitions", "2000", "--replication-factor", "1"])
        XCTAssertEqual(create.exitCode, 0, create.summary)
        let log = "\(dir)/logs/kafka-server-6.log"
        _ = try poll(timeout: 60, "the controller to have read the new partitions") { () -> Bool? in
            (try? String(contentsOfFile: log, encoding: .utf8))?.contains("[many,1999]") == true ? true : nil
        }

        kill(pid, SIGTERM)
        _ = try poll(timeout: 30, interval: 0.005, "the controller to start on the broker's controlled shutdown") { () -> Bool? in
            (try? String(contentsOfFile: log, encoding: .utf8))?.contains("Shutting down broker 6") == true ? true : nil
        }
        zk.pause()
        defer { zk.resume() }
        if (try? String(contentsOfFile: log, encoding: .utf8))?.contains("Controlled shutdown succeeded") == true {
            throw XCTSkip("the controller finished the shutdown before ZooKeeper froze: nothing to check this time")
        }
        let stopped = Date()
        _ = try? poll(timeout: 40, "the broker to exit") { () -> Bool? in processIsAlive(pid) ? nil : true }
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertFalse(processIsAlive(pid), "still running \(Int(Date().timeIntervalSince(stopped))) s after ZooKeeper froze:\n\(text.suffix(3000))")
        XCTAssertTrue(text.contains("Controlled shutdown attempt 1 of 3 failed"), String(text.suffix(3000)))
        XCTAssertTrue(text.contains("shut down completed"), String(text.suffix(3000)))
    }

    /// kafka-topics.sh against a ZooKeeper where no broker has ever started (no /brokers/ids yet):
    /// --list and --describe show nothing, --describe of a topic says it does not exist, --create
    /// says there are no brokers; none prints a ZooKeeper "no node" error.
    func testTopicToolOnAZooKeeperWithoutBrokers() async throws {
        try Project.requireReleaseBuild()
        let zk = try await ZooKeeperServer.start()
        defer { zk.stop() }
        for args in [["--list"], ["--describe"]] {
            let r = try Project.run("kafka-topics.sh", ["--zookeeper", zk.connectString] + args)
            XCTAssertEqual(r.exitCode, 0, "\(args): \(r.summary)")
            XCTAssertEqual(r.stdout + r.stderr, "", "\(args): \(r.summary)")
        }
        let describe = try Project.run("kafka-topics.sh", ["--zookeeper", zk.connectString, "--describe", "--topic", "t"])
        XCTAssertTrue((describe.stdout + describe.stderr).contains("Topic t does not exist"), describe.summary)
        let create = try Project.run("kafka-topics.sh", ["--zookeeper", zk.connectString, "--create", "--topic", "t",
                                                         "--partitions", "1", "--replication-factor", "1"])
        XCTAssertTrue((create.stdout + create.stderr).contains("replication factor: 1 larger than available brokers: 0"), create.summary)
        for r in [describe, create] { XCTAssertFalse((r.stdout + r.stderr).contains("no node"), r.summary) }
    }

    // MARK: 10. A brand-new log dir

    func testNewLogDirLogsNoRecovery() async throws {
        let c = try await startCluster(brokerIds: [0], overrides: ["zookeeper.session.timeout.ms": "4000"])
        XCTAssertFalse(c.broker.output().contains("Found no clean shutdown marker"), c.broker.tail(40))
        // With logs and no marker (kill -9), the restart still says it recovers them.
        try c.createTopic("kept")
        try c.waitForLeaders(topic: "kept")
        c.broker.kill9()
        try c.broker.start()
        try c.broker.waitUntilReady(timeout: 90)
        XCTAssertTrue(c.broker.output().contains("Found no clean shutdown marker"), c.broker.tail(40))
    }
}

/// The bin/ tools' usage errors and help texts (no cluster).
final class NewcomerUsageTests: XCTestCase {
    /// A missing argument prints the error, every missing argument at once, and a one-line usage,
    /// not the whole help.
    func testMissingArgumentsPrintAllOfThemAndAOneLineUsage() throws {
        try Project.requireReleaseBuild()
        let cases: [(String, [String], String)] = [
            ("kafka-console-producer.sh", ["--sync"], "Missing required arguments \"[broker-list]\", \"[topic]\""),
            ("kafka-topics.sh", ["--create", "--topic", "t"], "Missing required arguments \"[zookeeper]\", \"[partitions]\", \"[replication-factor]\""),
            ("kafka-simple-consumer-shell.sh", ["--partition", "0"], "Missing required arguments \"[broker-list]\", \"[topic]\""),
            ("kafka-console-consumer.sh", ["--from-beginning"], "Missing required argument \"[zookeeper]\"\nExactly one of whitelist/blacklist/topic is required."),
            ("kafka-producer-perf-test.sh", ["--sync"], "Missing required arguments \"[broker-list]\", \"[topics]\", \"[messages]\""),
        ]
        for (script, args, message) in cases {
            let r = try Project.run(script, args, timeout: 30)
            XCTAssertEqual(r.exitCode, 1, "\(script): \(r.summary)")
            XCTAssertTrue(r.stderr.hasPrefix(message + "\n"), "\(script): expected\n\(message)\n\(r.summary)")
            let lines = r.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, message.split(separator: "\n").count + 1, "\(script): the error and one usage line: \(r.summary)")
            XCTAssertTrue(lines.last?.hasPrefix("USAGE: bin/\(script) ") ?? false, "\(script): \(r.summary)")
            XCTAssertTrue(lines.last?.hasSuffix("(see --help)") ?? false, "\(script): \(r.summary)")
            XCTAssertFalse(r.stderr.contains("OPTIONS:"), "\(script): the whole help was printed: \(r.summary)")
        }
        // An unknown flag: named, with the one-line usage.
        let bad = try Project.run("kafka-topics.sh", ["--list", "--bogus"], timeout: 30)
        XCTAssertEqual(bad.exitCode, 1, bad.summary)
        XCTAssertTrue(bad.stderr.contains("--bogus"), bad.summary)
        XCTAssertEqual(bad.stderr.split(separator: "\n").count, 2, bad.summary)
        // The full help is still there with --help (exit 0) and without arguments (exit 1).
        let help = try Project.run("kafka-topics.sh", ["--help"], timeout: 30)
        XCTAssertEqual(help.exitCode, 0, help.summary)
        XCTAssertTrue(help.stdout.contains("OPTIONS:") && help.stdout.contains("--replication-factor"), help.summary)
    }

    /// Example commands in the help stay on one line at 80 columns (they were wrapped mid-command).
    func testHelpKeepsExampleCommandsWhole() throws {
        try Project.requireReleaseBuild()
        let expected: [(String, [String])] = [
            ("kafka-topics.sh", ["  bin/kafka-topics.sh --zookeeper localhost:2181 --create --topic test --partitions 1 --replication-factor 1",
                                 "  bin/kafka-topics.sh --zookeeper localhost:2181 --describe --topic test"]),
            ("kafka-simple-consumer-shell.sh", ["  bin/kafka-simple-consumer-shell.sh --broker-list localhost:9092 --topic test --partition 0 --offset -2 --no-wait-at-logend"]),
            ("kafka-console-producer.sh", ["  echo hello | bin/kafka-console-producer.sh --broker-list localhost:9092 --topic test"]),
            ("kafka-producer-perf-test.sh", ["  bin/kafka-producer-perf-test.sh --broker-list localhost:9092 --topics perf --messages 1000000"]),
        ]
        for (script, examples) in expected {
            let r = try Project.run(script, ["--help"], timeout: 30, environment: ["COLUMNS": "80"])
            XCTAssertEqual(r.exitCode, 0, r.summary)
            let lines = r.stdout.split(separator: "\n").map(String.init)
            for example in examples {
                XCTAssertTrue(lines.contains(example), "\(script): example not on one line:\n\(example)\n\(r.stdout)")
            }
        }
    }
}

/// A TCP port that accepts connections (the kernel's backlog) and never answers.
final class SilentListener {
    let fd: Int32
    let port: Int

    init() throws {
        let sock = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard sock >= 0 else { throw WireError("socket failed") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(sock, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(sock, 512) == 0 else { close(sock); throw WireError("bind/listen failed") }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(sock, $0, &len) }
        }
        fd = sock
        port = Int(UInt16(bigEndian: addr.sin_port))
    }

    deinit { close(fd) }
}
