import Synchronization
import Foundation
import ZooKeeper

#if canImport(Glibc)
import Glibc
#endif

/// ZooKeeper and brokers, each on its own namespace host of a `FaultNetwork`, with the actions a
/// fault campaign applies to them: kill -9 and restart, SIGSTOP / SIGCONT, partitions, a Kafka port
/// blocked from the other brokers, ZooKeeper stopped, a full log disk, failing fsync / writes.
///
/// ZooKeeper is Debian's (java, /usr/share/java) on host `zk` (10.77.<n>.10:2181); broker `i` is
/// `.build/release/kafka-server` (or `Options.brokerCommand`) on host `b<i>` (10.77.<n>.<10+i>:9092) with `host.name` and
/// `advertised.host.name` set to that address. A broker's log dir is on its own tmpfs when
/// `diskMB > 0` (so that "disk full" is real), and the broker runs under the LD_PRELOAD shim
/// `Tests/faults/fault_shim.c` (built with gcc into the cluster directory) when gcc is available.
public final class FaultCluster: @unchecked Sendable {
    public struct Options: Sendable {
        public var brokerCount = 3
        public var brokerProperties: [String: String] = [:]
        /// Size of each broker's log tmpfs in MB (0: plain directory, no disk-full fault).
        public var diskMB = 128
        /// Build and load the fsync/write fault shim.
        public var useShim = true
        public var kafkaServer = ProjectPaths.releaseBinDir + "/kafka-server"
        /// Another broker to run instead of `kafkaServer` (e.g. Kafka 0.8.2.2's `java ... kafka.Kafka`):
        /// a /bin/sh command in which `{}` stands for the server.properties path (appended when absent).
        /// It runs as `exec <command>` inside the host's namespace, so the signals of kill / pause reach it;
        /// the harness relies only on its Kafka port, its ZooKeeper registration and the on-disk log format.
        public var brokerCommand: String?
        public var shimSource = ProjectPaths.root + "/Tests/faults/fault_shim.c"
        /// A chroot appended to the brokers' `zookeeper.connect` (e.g. "/kafka"; the brokers create it).
        public var chroot: String?
        public init() {}
    }

    public final class Broker: @unchecked Sendable {
        public let id: Int
        public let host: String
        public let address: String
        public let directory: String
        public let diskDirectory: String
        public let logDir: String
        public let propertiesFile: String
        public let shimControl: String
        let tmpfs: Bool
        public internal(set) var process: BackgroundProcess?
        var starts = 0
        public var isRunning: Bool { process?.isRunning ?? false }
        public var pid: Int32? { process?.pid }

        init(id: Int, host: String, address: String, directory: String, tmpfs: Bool) {
            self.id = id
            self.host = host
            self.address = address
            self.directory = directory
            self.diskDirectory = directory + "/disk"
            self.logDir = directory + "/disk/kafka-logs"
            self.propertiesFile = directory + "/server.properties"
            self.shimControl = directory + "/shim-control"
            self.tmpfs = tmpfs
        }

        public var outputFile: String { "\(directory)/kafka-server.\(max(starts - 1, 0)).out" }

        /// Every output file of the broker, oldest first, joined.
        public func output() -> String {
            (0..<starts).map { (try? String(contentsOfFile: "\(directory)/kafka-server.\($0).out", encoding: .utf8)) ?? "" }
                .joined(separator: "\n=== restart ===\n")
        }

        public func tail(_ n: Int) -> String {
            output().split(separator: "\n", omittingEmptySubsequences: false).suffix(n).joined(separator: "\n")
        }
    }

    public let network: FaultNetwork
    public let options: Options
    public let directory: String
    public let zkHost = "zk"
    public let zkAddress: String
    public let kafkaPort = 9092
    public let zkPort = 2181
    public private(set) var brokers: [Broker] = []
    private var zkProcess: BackgroundProcess?
    private var zkStarts = 0
    private var shimLibrary: String?

    public var zkConnect: String { "\(zkAddress):\(zkPort)" }
    /// `zookeeper.connect` of the brokers and tools: `zkConnect` plus `Options.chroot`.
    public var brokerZkConnect: String { zkConnect + (options.chroot ?? "") }
    public var brokerList: String { brokers.map { "\($0.address):\(kafkaPort)" }.joined(separator: ",") }
    public func broker(_ id: Int) -> Broker { brokers.first { $0.id == id }! }

    /// Creates the hosts, starts ZooKeeper and the brokers, and waits until every broker is registered.
    public init(options: Options, log: @escaping @Sendable (String) -> Void) async throws {
        self.options = options
        guard options.brokerCommand != nil || FileManager.default.isExecutableFile(atPath: options.kafkaServer) else {
            throw TestSupportError("\(options.kafkaServer) is missing: run `swift build -c release` (bin/setup.sh does)")
        }
        Self.unmountLeftovers()
        network = try FaultNetwork()
        directory = try Spawner.makeTempDirectory(prefix: "kafka-fault-")
        zkAddress = "10.77.\(network.subnet).10"
        try "\(getpid())\n".write(toFile: directory + "/owner.pid", atomically: true, encoding: .utf8)
        Self.live.withLock { $0.append(self) }
        do {
            try network.addHost(zkHost, index: 10)
            for i in 1...options.brokerCount {
                let h = try network.addHost("b\(i)", index: 10 + i)
                let b = Broker(id: i, host: "b\(i)", address: h.address, directory: "\(directory)/b\(i)", tmpfs: options.diskMB > 0)
                try FileManager.default.createDirectory(atPath: b.diskDirectory, withIntermediateDirectories: true)
                if b.tmpfs {
                    try FaultShell.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(options.diskMB)m", "tmpfs", b.diskDirectory])
                }
                try FileManager.default.createDirectory(atPath: b.logDir, withIntermediateDirectories: true)
                try Data("00".utf8).write(to: URL(fileURLWithPath: b.shimControl))
                brokers.append(b)
            }
            if options.useShim { shimLibrary = try buildShim(log: log) }
            log("network: bridge \(network.bridge) \(network.gateway)/24; zk \(zkAddress); "
                + brokers.map { "broker \($0.id) \($0.address)" }.joined(separator: "; ") + "; dir \(directory)")
            try await startZooKeeper(fresh: true)
            for b in brokers {
                try writeProperties(b)
                try startBroker(b)
            }
            for b in brokers { try await waitRegistered(b, timeout: 60) }
        } catch {
            let diag = diagnostics()
            shutdown()
            throw TestSupportError("\(error)\n\(diag)")
        }
    }

    deinit { shutdown() }

    private func buildShim(log: (String) -> Void) throws -> String? {
        guard let gcc = FaultShell.which("gcc") ?? FaultShell.which("cc") else {
            log("gcc not found: fsync/write faults are unavailable")
            return nil
        }
        let out = directory + "/fault_shim.so"
        try FaultShell.run(gcc, ["-shared", "-fPIC", "-O2", "-o", out, options.shimSource, "-ldl"], timeout: 120)
        return out
    }

    public var shimAvailable: Bool { shimLibrary != nil }

    // MARK: ZooKeeper

    private func startZooKeeper(fresh: Bool) async throws {
        let dir = directory + "/zk"
        if fresh {
            try ZooKeeperServer.writeConfiguration(directory: dir, clientPort: zkPort, clientPortAddress: zkAddress)
        }
        let java = try ZooKeeperServer.locateJava()
        let args = network.execPrefix(zkHost).dropFirst() + [java] + ZooKeeperServer.jvmArguments(directory: dir)
        zkStarts += 1
        let p = try BackgroundProcess.launch(network.execPrefix(zkHost)[0], Array(args), environment: nil,
                                             currentDirectory: dir, outputFile: "\(dir)/zookeeper.\(zkStarts).out")
        zkProcess = p
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let code = p.exitStatus {
                throw TestSupportError("ZooKeeper exited with code \(code) while starting\n\(p.output())")
            }
            if TestNetwork.fourLetterWord("srvr", port: zkPort, host: zkAddress, timeout: 1)?.contains("Mode:") == true { return }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        throw TestSupportError("ZooKeeper did not answer on \(zkConnect) within 60 s")
    }

    public var zooKeeperRunning: Bool { zkProcess?.isRunning ?? false }

    /// Stops ZooKeeper (SIGKILL: no goodbye to its clients).
    public func stopZooKeeper() {
        zkProcess?.resume()
        zkProcess?.kill()
        _ = zkProcess?.waitForExit(timeout: 10)
        zkProcess = nil
    }

    /// Starts ZooKeeper again on its data.
    public func restartZooKeeper() async throws {
        if zooKeeperRunning { return }
        try await startZooKeeper(fresh: false)
    }

    public func pauseZooKeeper() { zkProcess?.suspend() }
    public func resumeZooKeeper() { zkProcess?.resume() }

    // MARK: Brokers

    private func writeProperties(_ b: Broker) throws {
        var props: [String: String] = [
            "broker.id": "\(b.id)",
            "port": "\(kafkaPort)",
            "host.name": b.address,
            "advertised.host.name": b.address,
            "log.dirs": b.logDir,
            "zookeeper.connect": brokerZkConnect,
            "num.partitions": "1",
            "default.replication.factor": "\(options.brokerCount)",
            "auto.create.topics.enable": "false",
        ]
        props.merge(options.brokerProperties) { _, new in new }
        let text = props.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\n") + "\n"
        try text.write(toFile: b.propertiesFile, atomically: true, encoding: .utf8)
    }

    /// Starts the broker in its namespace (does not wait).
    public func startBroker(_ b: Broker) throws {
        precondition(!b.isRunning, "broker \(b.id) is already running")
        var env: [String: String] = [:]
        if let shimLibrary {
            env["LD_PRELOAD"] = shimLibrary
            env["FAULT_SHIM_CONTROL"] = b.shimControl
            env["FAULT_SHIM_PREFIX"] = b.diskDirectory
        }
        let out = "\(b.directory)/kafka-server.\(b.starts).out"
        b.starts += 1
        let prefix = network.execPrefix(b.host)
        b.process = try BackgroundProcess.launch(prefix[0], Array(prefix.dropFirst()) + brokerArguments(b),
                                                 environment: env, currentDirectory: b.directory, outputFile: out)
    }

    /// The program and arguments that start broker `b` (inside its namespace).
    func brokerArguments(_ b: Broker) -> [String] {
        guard let template = options.brokerCommand else { return [options.kafkaServer, b.propertiesFile] }
        let quoted = "'" + b.propertiesFile.replacingOccurrences(of: "'", with: "'\\''") + "'"
        let command = template.contains("{}") ? template.replacingOccurrences(of: "{}", with: quoted) : template + " " + quoted
        return ["/bin/sh", "-c", "exec " + command]
    }

    /// Waits until the broker is registered in ZooKeeper as a live broker (asked through its own
    /// Metadata answer, which lists the live brokers the controller told it about).
    public func waitRegistered(_ b: Broker, timeout: Double) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let code = b.process?.exitStatus {
                throw TestSupportError("broker \(b.id) exited with code \(code) while starting:\n\(b.tail(40))")
            }
            if TestNetwork.isOpen(kafkaPort, host: b.address),
               let zk = TestNetwork.fourLetterWord("dump", port: zkPort, host: zkAddress, timeout: 1),
               zk.contains("/brokers/ids/\(b.id)") {
                return
            }
            try await Task.sleep(nanoseconds: 200_000_000)
        }
        throw TestSupportError("broker \(b.id) did not register within \(timeout) s:\n\(b.tail(40))")
    }

    /// kill -9.
    public func kill9(_ b: Broker) {
        b.process?.resume()
        b.process?.kill()
        _ = b.process?.waitForExit(timeout: 10)
    }

    public func pause(_ b: Broker) { b.process?.suspend() }
    public func resume(_ b: Broker) { b.process?.resume() }

    /// The host's traffic dropped (all but loopback), or restored.
    public func isolate(_ b: Broker) throws { try network.isolate(b.host) }
    public func isolateZooKeeper() throws { try network.isolate(zkHost) }

    /// The broker's Kafka port blocked from and to the other brokers; ZooKeeper and clients still reach it.
    public func blockKafkaPort(_ b: Broker) throws {
        let peers = brokers.filter { $0.id != b.id }.map(\.address)
        try network.blockPort(b.host, port: kafkaPort, peers: peers)
    }

    /// Removes every network fault of every host.
    public func healNetwork() throws {
        for h in [zkHost] + brokers.map(\.host) { try network.heal(h) }
    }

    /// Fills the broker's log tmpfs (a ballast file up to ENOSPC).
    public func fillDisk(_ b: Broker) throws {
        guard b.tmpfs else { throw TestSupportError("broker \(b.id) has no tmpfs log dir (diskMB = 0)") }
        let path = b.diskDirectory + "/ballast"
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { throw TestSupportError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0, count: 1 << 20)
        var size = chunk.count
        while size > 0 {
            let n = chunk.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, size) }
            if n < 0 {
                if errno == ENOSPC { size /= 2; continue }
                throw TestSupportError("ballast write: \(String(cString: strerror(errno)))")
            }
        }
    }

    public func freeDisk(_ b: Broker) {
        try? FileManager.default.removeItem(atPath: b.diskDirectory + "/ballast")
    }

    /// Switches the shim's faults for one broker: fsync/msync fail (EIO), file writes in the log dir fail.
    public func setShimFaults(_ b: Broker, fsync: Bool, write: Bool) throws {
        guard shimLibrary != nil else { throw TestSupportError("the fault shim is not loaded (no gcc?)") }
        let fd = open(b.shimControl, O_WRONLY)
        guard fd >= 0 else { throw TestSupportError("cannot open \(b.shimControl)") }
        defer { close(fd) }
        let bytes: [UInt8] = [fsync ? 0x31 : 0x30, write ? 0x31 : 0x30]
        _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, 2, 0) }
    }

    public func diagnostics(lines: Int = 40) -> String {
        brokers.map { "--- broker \($0.id) (\($0.address)) output, last \(lines) lines ---\n\($0.tail(lines))" }
            .joined(separator: "\n")
    }

    private var isShutDown = false

    /// Clusters not shut down yet, for `shutdownAll()` (a signal handler's clean-up).
    private static let live = Mutex<[FaultCluster]>([])

    /// Shuts down every cluster of this process: kafka-tools fault-campaign calls it on SIGINT/SIGTERM.
    public static func shutdownAll() {
        let all = live.withLock { l -> [FaultCluster] in defer { l = [] }; return l }
        for c in all { c.shutdown() }
    }

    /// Unmounts the log tmpfs of campaigns whose process died (their `owner.pid` is gone) and removes their directory.
    static func unmountLeftovers() {
        guard let mounts = try? String(contentsOfFile: "/proc/mounts", encoding: .utf8) else { return }
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 2, fields[2] == "tmpfs" else { continue }
            let point = String(fields[1])
            guard point.contains("/kafka-fault-"), point.hasSuffix("/disk") else { continue }
            let campaign = URL(fileURLWithPath: point).deletingLastPathComponent().deletingLastPathComponent().path
            // Only campaigns that say who owns them, and whose owner is dead.
            guard let text = try? String(contentsOfFile: campaign + "/owner.pid", encoding: .utf8),
                  let owner = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), owner > 0,
                  kill(owner, 0) != 0, errno == ESRCH else { continue }
            _ = try? FaultShell.run("/bin/umount", ["-l", point], allowFailure: true)
            try? FileManager.default.removeItem(atPath: campaign)
        }
    }

    /// Stops everything, unmounts the tmpfs log dirs, removes the network; keeps the directory when
    /// KAFKA_TEST_KEEP_TMP=1 (or `keep`).
    public func shutdown(keep: Bool = false) {
        if isShutDown { return }
        isShutDown = true
        Self.live.withLock { $0.removeAll { $0 === self } }
        for b in brokers {
            b.process?.resume()
            b.process?.kill()
            _ = b.process?.waitForExit(timeout: 10)
        }
        stopZooKeeper()
        network.remove()
        let keepDir = keep || ProcessInfo.processInfo.environment["KAFKA_TEST_KEEP_TMP"] == "1"
        for b in brokers where b.tmpfs {
            if keepDir {
                // Copy the logs out of the tmpfs before it goes.
                _ = try? FaultShell.run("/bin/cp", ["-a", b.diskDirectory, b.directory + "/disk-copy"], allowFailure: true)
            }
            _ = try? FaultShell.run("/bin/umount", ["-l", b.diskDirectory], allowFailure: true)
        }
        if !keepDir { try? FileManager.default.removeItem(atPath: directory) }
    }
}
