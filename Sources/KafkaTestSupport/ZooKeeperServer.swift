import ZooKeeper
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A real ZooKeeper server (Debian's `zookeeper` package, run with java) on a free loopback port,
/// with its data, configuration and logs in a temporary directory.
///
/// It runs `org.apache.zookeeper.server.ZooKeeperServerMain <dir>/zoo.cfg` with the jars from
/// /usr/share/java (zookeeper.jar lists its dependencies in its manifest; slf4j-log4j12 + log4j-1.2
/// are added so that ZooKeeper logs to `<dir>/zookeeper.log` instead of the test output).
/// Its settings, logging and JVM options are those of `config/test-zookeeper/` (shared with
/// bin/kafka-benchmark.sh): tickTime 500 ms, so session timeouts from 1 s to 60 s are accepted;
/// all four-letter words whitelisted; no admin HTTP server; no fsync (faster tests).
///
/// Set KAFKA_TEST_KEEP_TMP=1 to keep the directory (and its logs) after `stop()`.
public final class ZooKeeperServer: Sendable {
    public let port: Int
    public let directory: String
    private let java: String
    private let mainClass: String
    /// The running JVM (nil while stopped); `removed` once `stop()` has deleted the directory.
    private let state: Mutex<(process: BackgroundProcess?, removed: Bool)>

    public var connectString: String { "127.0.0.1:\(port)" }
    /// ZooKeeper's own log (log4j).
    public var logFile: String { directory + "/zookeeper.log" }

    static let javaCandidates = ["/usr/bin/java", "/usr/lib/jvm/default-java/bin/java"]
    static let jarDir = "/usr/share/java"
    static let jars = ["zookeeper.jar", "zookeeper-jute.jar", "slf4j-log4j12.jar", "log4j-1.2.jar"]

    init(port: Int, directory: String, java: String, mainClass: String = standaloneMain) {
        self.port = port
        self.directory = directory
        self.java = java
        self.mainClass = mainClass
        self.state = Mutex((nil, false))
    }

    deinit {
        stop()
    }

    /// Starts a server and waits until it serves requests (`srvr` reports its mode; up to 30 s). Retries on another port if the
    /// chosen one was taken meanwhile.
    public static func start() async throws -> ZooKeeperServer {
        let java = try locateJava()
        var lastError: Error = TestSupportError("ZooKeeper did not start")
        for _ in 0..<3 {
            do {
                return try await startOnce(java: java)
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    private static func startOnce(java: String) async throws -> ZooKeeperServer {
        let port = try FreePort.allocate()
        let dir = try Spawner.makeTempDirectory(prefix: "kafka-swift-zk-")
        let server = ZooKeeperServer(port: port, directory: dir, java: java)
        do {
            try writeConfiguration(directory: dir, clientPort: port, clientPortAddress: "127.0.0.1")
            try await server.launchAndWait()
        } catch {
            server.stop()
            throw error
        }
        return server
    }

    // MARK: Configuration shared by every test ZooKeeper (this class, ZooKeeperEnsemble, FaultCluster)

    /// The java binary, or an error naming what to install.
    static func locateJava() throws -> String {
        guard let java = javaCandidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw TestSupportError("java not found (\(javaCandidates.joined(separator: ", "))): install the dependencies with bin/setup.sh (apt-get install zookeeper)")
        }
        let missing = jars.filter { !FileManager.default.fileExists(atPath: "\(jarDir)/\($0)") }
        guard missing.isEmpty else {
            throw TestSupportError("ZooKeeper is not installed (missing \(missing.map { "\(jarDir)/\($0)" }.joined(separator: ", "))): run bin/setup.sh (apt-get install zookeeper)")
        }
        return java
    }

    /// `config/test-zookeeper/`: the settings, logging and JVM options every scratch ZooKeeper
    /// shares with bin/kafka-benchmark.sh (`zoo.cfg`, `log4j.properties`, `jvm.options`).
    static var sharedConfigDirectory: String { ProjectPaths.root + "/config/test-zookeeper" }

    /// Writes `<directory>/zoo.cfg` (the shared settings, data in `<directory>/data`) and, for an
    /// ensemble member, `<directory>/data/myid`. `servers` are the ensemble's
    /// `server.N=host:quorumPort:electionPort` lines (empty: standalone).
    static func writeConfiguration(directory dir: String, clientPort: Int, clientPortAddress: String,
                                   servers: [String] = [], myid: Int? = nil) throws {
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        let shared = sharedConfigDirectory + "/zoo.cfg"
        guard var config = try? String(contentsOfFile: shared, encoding: .utf8) else {
            throw TestSupportError("cannot read \(shared), the settings of the test ZooKeeper servers")
        }
        if !config.hasSuffix("\n") { config += "\n" }
        config += "dataDir=\(dir)/data\nclientPort=\(clientPort)\nclientPortAddress=\(clientPortAddress)\n"
        for line in servers { config += line + "\n" }
        try config.write(toFile: dir + "/zoo.cfg", atomically: true, encoding: .utf8)
        if let myid {
            try "\(myid)\n".write(toFile: dir + "/data/myid", atomically: true, encoding: .utf8)
        }
    }

    static let standaloneMain = "org.apache.zookeeper.server.ZooKeeperServerMain"
    static let quorumMain = "org.apache.zookeeper.server.quorum.QuorumPeerMain"

    /// The JVM arguments (after the java binary) that run `mainClass` on `<directory>/zoo.cfg`,
    /// logging to `<directory>/zookeeper.log`.
    static func jvmArguments(directory: String, mainClass: String = standaloneMain) -> [String] {
        let classpath = jars.map { "\(jarDir)/\($0)" }.joined(separator: ":")
        let shared = sharedConfigDirectory
        return [
            "@\(shared)/jvm.options",
            "-Dlog4j.configuration=file:\(shared)/log4j.properties",
            "-Dzookeeper.log.file=\(directory)/zookeeper.log",
            "-cp", classpath,
            mainClass, directory + "/zoo.cfg",
        ]
    }

    /// Starts the JVM on the existing directory and port, and waits until it serves requests.
    private func launchAndWait() async throws {
        try launch()
        try await waitServing(timeout: 30)
    }

    /// Starts the JVM on the existing directory and port (does not wait).
    func launch() throws {
        let process = try BackgroundProcess.launch(java, Self.jvmArguments(directory: directory, mainClass: mainClass),
                                                   environment: nil, currentDirectory: directory,
                                                   outputFile: directory + "/zookeeper.out")
        state.withLock { $0.process = process }
    }

    /// Waits until the server serves requests: `srvr` reports a Mode (an ensemble member only once
    /// it has joined a quorum).
    func waitServing(timeout: Double) async throws {
        guard let process = state.withLock({ $0.process }) else { throw TestSupportError("ZooKeeper on port \(port) is not running") }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let code = process.exitStatus {
                let out = process.output()
                let log = Spawner.readFile(logFile).split(separator: "\n").suffix(20).joined(separator: "\n")
                throw TestSupportError("ZooKeeper exited with code \(code) while starting on port \(port)\n\(out)\n\(log)")
            }
            // `ruok` answers before the server serves requests; `srvr` reports a Mode only once it does.
            if mode != nil { return }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        throw TestSupportError("ZooKeeper did not answer on port \(port) within \(Int(timeout)) s")
    }

    /// The server's role from `srvr` ("standalone", "leader", "follower"), nil when it does not serve.
    public var mode: String? {
        guard let reply = TestNetwork.fourLetterWord("srvr", port: port, timeout: 1) else { return nil }
        for line in reply.split(separator: "\n") where line.hasPrefix("Mode:") {
            return line.dropFirst("Mode:".count).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }

    /// The server's pid (nil while stopped).
    public var pid: Int32? {
        state.withLock { $0.process?.pid }
    }

    /// Freezes the server (SIGSTOP): clients get no answers until `resume()`.
    public func pause() {
        state.withLock { $0.process?.suspend() }
    }

    /// SIGCONT after `pause()`.
    public func resume() {
        state.withLock { $0.process?.resume() }
    }

    /// Stops the JVM and starts it again on the same port and data (sessions survive a quick restart,
    /// as with a real ZooKeeper). Throws after `stop()`.
    public func restart() async throws {
        let removed = state.withLock { $0.removed }
        if removed { throw TestSupportError("ZooKeeper on port \(port) was stopped and removed") }
        stopProcess()
        try await launchAndWait()
    }

    /// Stops the JVM (SIGTERM, then SIGKILL after 5 s) and keeps its directory: `restart()` starts it again.
    public func stopServer() {
        stopProcess()
    }

    /// True while the JVM runs.
    public var isRunning: Bool {
        state.withLock { $0.process?.isRunning ?? false }
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s) and removes its directory. Safe to call twice.
    public func stop() {
        stopProcess()
        let first = state.withLock { s -> Bool in
            defer { s.removed = true }
            return !s.removed
        }
        if first && ProcessInfo.processInfo.environment["KAFKA_TEST_KEEP_TMP"] != "1" {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    private func stopProcess() {
        let running = state.withLock { s -> BackgroundProcess? in
            defer { s.process = nil }
            return s.process
        }
        guard let running else { return }
        running.resume()   // a stopped JVM cannot act on SIGTERM
        running.terminate()
        if running.waitForExit(timeout: 5) == nil {
            running.kill()
            _ = running.waitForExit(timeout: 10)
        }
    }
}
