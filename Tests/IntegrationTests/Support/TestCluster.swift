import Foundation
import KafkaTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Paths and commands of the project as a user sees it: bin/ scripts, the release build, the venv.
enum Project {
    static let root = ProjectPaths.root

    static func script(_ name: String) -> String { "\(root)/bin/\(name)" }

    static var venvPython: String { "\(root)/.venv/bin/python" }

    static func interopScript(_ name: String) -> String { "\(root)/Tests/interop/\(name)" }

    /// Fails (does not skip) when the release build is missing: bin/test.sh always builds it first.
    static func requireReleaseBuild() throws {
        for exe in ["kafka-server", "kafka-tools"] {
            let path = "\(ProjectPaths.releaseBinDir)/\(exe)"
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw WireError("\(path) is missing: the integration tests run the release build; run `swift build -c release` first (bin/test.sh does)")
            }
        }
    }

    /// The absolute path of an executable found on PATH (or in the usual system folders).
    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let dirs = path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin", "/bin"]
        return dirs.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// A third-party client binary: skips the test with a clear message when it is not installed.
    static func requireTool(_ name: String, install: String) throws -> String {
        guard let path = which(name) else {
            throw XCTSkip("\(name) is not installed (\(install)); run bin/setup.sh to install the test prerequisites")
        }
        return path
    }

    /// The venv's python, for the Python interop clients; skips when the venv has not been made.
    static func requireVenvPython() throws -> String {
        guard FileManager.default.isExecutableFile(atPath: venvPython) else {
            throw XCTSkip("\(venvPython) is missing: run bin/setup.sh to create the venv with kafka-python, pykafka and kazoo")
        }
        return venvPython
    }

    /// Runs bin/<name> with the project root as the working directory.
    @discardableResult
    static func run(_ name: String, _ arguments: [String], stdin: String? = nil, timeout: Double = 60,
                    environment: [String: String]? = nil) throws -> ProcessResult {
        try ProcessRunner.run(script(name), arguments, stdin: stdin, environment: environment,
                              currentDirectory: root, timeout: timeout)
    }
}

extension ProcessResult {
    /// A compact rendering for assertion messages.
    var summary: String {
        "exit \(exitCode)\n--- stdout ---\n\(stdout)\n--- stderr ---\n\(stderr)"
    }
}

/// True while `pid` exists and is not a zombie (a daemon's exit is reaped by whoever adopted it,
/// possibly later than it exits).
func processIsAlive(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return true }
    let state = stat[stat.index(after: close)...].split(separator: " ").first
    return state != "Z" && state != "X"
}

/// Polls `condition` every 100 ms until it returns a value or `timeout` seconds pass.
func poll<T>(timeout: Double, interval: Double = 0.1, _ what: String,
             _ condition: () throws -> T?) throws -> T {
    let deadline = Date().addingTimeInterval(timeout)
    var lastError: Error?
    while true {
        do {
            if let value = try condition() { return value }
        } catch {
            lastError = error
        }
        if Date() >= deadline {
            throw WireError("timed out after \(timeout)s waiting for \(what)" + (lastError.map { " (last error: \($0))" } ?? ""))
        }
        usleep(UInt32(interval * 1_000_000))
    }
}

/// One broker process started through bin/kafka-server-start.sh (foreground, so its pid is the
/// broker's own: the script execs the binary).
final class TestBroker {
    let id: Int
    let port: Int
    let directory: String
    let logDir: String
    let propertiesFile: String
    let properties: [String: String]
    /// Extra environment for the broker process (e.g. LD_PRELOAD of the fault shim).
    var environment: [String: String]? = nil
    private(set) var process: BackgroundProcess?
    private var outputFiles: [String] = []

    init(id: Int, port: Int, directory: String, properties: [String: String]) throws {
        self.id = id
        self.port = port
        self.directory = directory
        self.logDir = "\(directory)/kafka-logs"
        self.propertiesFile = "\(directory)/server.properties"
        self.properties = properties
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let text = properties.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\n") + "\n"
        try text.write(toFile: propertiesFile, atomically: true, encoding: .utf8)
    }

    var pid: Int32? { process?.pid }
    var isRunning: Bool { process?.isRunning ?? false }

    /// Starts the broker (does not wait: see `waitUntilReady`).
    func start() throws {
        precondition(process == nil || process?.isRunning == false, "broker \(id) is already running")
        let out = "\(directory)/kafka-server.\(outputFiles.count).out"
        outputFiles.append(out)
        process = try BackgroundProcess.launch(Project.script("kafka-server-start.sh"), [propertiesFile],
                                               environment: environment, currentDirectory: Project.root, outputFile: out)
    }

    /// Waits until the broker answers a Metadata request that lists itself among the live brokers.
    @discardableResult
    func waitUntilReady(timeout: Double = 60) throws -> MetadataResponse {
        try poll(timeout: timeout, "broker \(id) on port \(port) to answer Metadata listing itself") { () -> MetadataResponse? in
            if let p = process, let code = p.exitStatus {
                throw WireError("broker \(id) exited with code \(code) during start-up:\n\(tail(40))")
            }
            guard TestNetwork.isOpen(port) else { return nil }
            let conn = try WireConnection(port: port, timeout: 5)
            let md = try conn.metadata()
            return md.brokers.contains { $0.id == Int32(id) } ? md : nil
        }
    }

    /// kill -9: no clean shutdown, the ZooKeeper session stays until it expires.
    func kill9() {
        process?.kill()
        _ = process?.waitForExit(timeout: 10)
    }

    /// SIGTERM and wait; the exit code (nil if it did not exit within `timeout`).
    @discardableResult
    func terminate(timeout: Double = 30) -> Int32? {
        guard let p = process else { return nil }
        p.terminate()
        return p.waitForExit(timeout: timeout)
    }

    /// SIGTERM, then SIGKILL: used by tear-down.
    func stop() {
        process?.stop(grace: 15)
    }

    /// Everything the broker printed, across restarts.
    func output() -> String {
        outputFiles.map { (try? String(contentsOfFile: $0, encoding: .utf8)) ?? "" }.joined(separator: "\n=== restart ===\n")
    }

    func tail(_ lines: Int) -> String {
        output().split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    func connect(timeout: Double = 10) throws -> WireConnection {
        try WireConnection(port: port, timeout: timeout)
    }
}

/// A ZooKeeper server plus brokers on free ports, with data in a temporary directory.
final class TestCluster {
    let zooKeeper: ZooKeeperServer
    /// The cluster's ZooKeeper chroot ("" for the root), part of `zkConnect`.
    let chroot: String
    /// False when the ZooKeeper server belongs to another cluster (`start(sharing:)`).
    private let ownsZooKeeper: Bool
    let directory: String
    private(set) var brokers: [TestBroker] = []

    var zkConnect: String { zooKeeper.connectString + chroot }
    var broker: TestBroker { brokers[0] }
    var brokerList: String { brokers.map { "127.0.0.1:\($0.port)" }.joined(separator: ",") }

    private init(zooKeeper: ZooKeeperServer, chroot: String, ownsZooKeeper: Bool, directory: String) {
        self.zooKeeper = zooKeeper
        self.chroot = chroot
        self.ownsZooKeeper = ownsZooKeeper
        self.directory = directory
    }

    /// Starts ZooKeeper and `brokerIds.count` brokers, and waits until each one is ready.
    /// `overrides` are added to (or replace) every broker's properties. With `sharing`, the
    /// brokers use that (running) ZooKeeper server instead of a new one, and `stop()` leaves it
    /// running; `chroot` (e.g. "/target") puts the cluster under a chroot, which the brokers create.
    static func start(brokerIds: [Int] = [0], overrides: [String: String] = [:],
                      sharing: ZooKeeperServer? = nil, chroot: String = "") async throws -> TestCluster {
        try Project.requireReleaseBuild()
        let zk: ZooKeeperServer
        if let sharing { zk = sharing } else { zk = try await ZooKeeperServer.start() }
        let dir = NSTemporaryDirectory() + "kafka-swift-it-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let cluster = TestCluster(zooKeeper: zk, chroot: chroot, ownsZooKeeper: sharing == nil, directory: dir)
        do {
            for id in brokerIds {
                let b = try cluster.addBroker(id: id, overrides: overrides)
                try b.start()
            }
            for b in cluster.brokers { try b.waitUntilReady() }
        } catch {
            let diag = cluster.diagnostics()
            cluster.stop()
            throw WireError("\(error)\n\(diag)")
        }
        return cluster
    }

    /// Writes a properties file for a new broker (not started).
    func addBroker(id: Int, port: Int? = nil, overrides: [String: String] = [:]) throws -> TestBroker {
        let port = try port ?? FreePort.allocate()
        let bdir = "\(directory)/broker-\(id)-\(brokers.count)"
        var props = [
            "broker.id": "\(id)",
            "port": "\(port)",
            "host.name": "127.0.0.1",
            "log.dirs": "\(bdir)/kafka-logs",
            "zookeeper.connect": zkConnect,
            "num.partitions": "1",
        ]
        props.merge(overrides) { _, new in new }
        let b = try TestBroker(id: id, port: port, directory: bdir, properties: props)
        brokers.append(b)
        return b
    }

    /// Stops every broker and ZooKeeper; removes the data unless KAFKA_TEST_KEEP_TMP=1.
    func stop() {
        for b in brokers { b.stop() }
        if ownsZooKeeper { zooKeeper.stop() }
        if ProcessInfo.processInfo.environment["KAFKA_TEST_KEEP_TMP"] != "1" {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// The last lines of each broker's output, for failure messages.
    func diagnostics(lines: Int = 60) -> String {
        brokers.map { "--- broker \($0.id) (port \($0.port)) output, last \(lines) lines ---\n\($0.tail(lines))" }
            .joined(separator: "\n")
    }

    /// bin/kafka-topics.sh --create; fails the test unless it prints `Created topic "T".`
    func createTopic(_ topic: String, partitions: Int = 1, replicationFactor: Int = 1,
                     file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try Project.run("kafka-topics.sh", ["--zookeeper", zkConnect, "--create", "--topic", topic,
                                                    "--partitions", "\(partitions)",
                                                    "--replication-factor", "\(replicationFactor)"])
        XCTAssertEqual(r.exitCode, 0, r.summary, file: file, line: line)
        XCTAssertTrue(r.stdout.contains("Created topic \"\(topic)\"."), r.summary, file: file, line: line)
    }

    /// Waits until Metadata from `broker` shows every partition of `topic` with a leader.
    @discardableResult
    func waitForLeaders(topic: String, partitions: Int = 1, broker: TestBroker? = nil,
                        timeout: Double = 30) throws -> MetadataResponse.Topic {
        let b = broker ?? self.broker
        return try poll(timeout: timeout, "a leader for every partition of \(topic)") { () -> MetadataResponse.Topic? in
            let conn = try b.connect()
            guard let t = try conn.metadata([topic]).topic(topic), t.error == 0,
                  t.partitions.count == partitions,
                  t.partitions.allSatisfy({ $0.error == 0 && $0.leader >= 0 }) else { return nil }
            return t
        }
    }
}

/// Base class: one cluster per test, stopped in tear-down; broker output printed when a test fails.
class IntegrationTestCase: XCTestCase {
    var cluster: TestCluster?

    func startCluster(brokerIds: [Int] = [0], overrides: [String: String] = [:], chroot: String = "") async throws -> TestCluster {
        let c = try await TestCluster.start(brokerIds: brokerIds, overrides: overrides, chroot: chroot)
        cluster = c
        return c
    }

    override func tearDown() async throws {
        if let c = cluster {
            if (testRun?.failureCount ?? 0) + (testRun?.unexpectedExceptionCount ?? 0) > 0 {
                print("\(name) failed; cluster diagnostics:\n\(c.diagnostics())")
            }
            c.stop()
            cluster = nil
        }
        try await super.tearDown()
    }
}
