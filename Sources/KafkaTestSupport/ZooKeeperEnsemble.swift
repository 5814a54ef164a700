import Foundation

/// A ZooKeeper ensemble of Debian's ZooKeeper (`QuorumPeerMain`) on loopback: `size` members, each
/// with its own directory, `myid`, client port and quorum/election ports (all free ports), and the
/// same `server.N=127.0.0.1:<quorum>:<election>` lines. Members are `ZooKeeperServer`s, so each can
/// be stopped (`stopServer()`), restarted and asked its role (`mode`: "leader" / "follower").
///
/// Set KAFKA_TEST_KEEP_TMP=1 to keep the members' directories (and logs) after `stop()`.
public final class ZooKeeperEnsemble: Sendable {
    public let members: [ZooKeeperServer]

    /// "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3".
    public var connectString: String { members.map(\.connectString).joined(separator: ",") }

    private init(members: [ZooKeeperServer]) {
        self.members = members
    }

    deinit { stop() }

    /// Starts every member and waits (up to 60 s) until each serves requests in a quorum.
    public static func start(size: Int = 3) async throws -> ZooKeeperEnsemble {
        precondition(size >= 1)
        let java = try ZooKeeperServer.locateJava()
        var lastError: Error = TestSupportError("the ZooKeeper ensemble did not start")
        for _ in 0..<2 {   // a port taken between allocation and bind: start again on new ports
            var members: [ZooKeeperServer] = []
            do {
                var ports = Set<Int>()
                func freshPort() throws -> Int {
                    while true {
                        let p = try FreePort.allocate()
                        if ports.insert(p).inserted { return p }
                    }
                }
                let clientPorts = try (0..<size).map { _ in try freshPort() }
                let serverLines = try (1...size).map { "server.\($0)=127.0.0.1:\(try freshPort()):\(try freshPort())" }
                for i in 0..<size {
                    let dir = try Spawner.makeTempDirectory(prefix: "kafka-swift-zk\(i + 1)-")
                    try ZooKeeperServer.writeConfiguration(directory: dir, clientPort: clientPorts[i], clientPortAddress: "127.0.0.1",
                                                           servers: serverLines, myid: i + 1)
                    members.append(ZooKeeperServer(port: clientPorts[i], directory: dir, java: java,
                                                   mainClass: ZooKeeperServer.quorumMain))
                }
                for m in members { try m.launch() }
                for m in members { try await m.waitServing(timeout: 60) }
                return ZooKeeperEnsemble(members: members)
            } catch {
                for m in members { m.stop() }
                lastError = error
            }
        }
        throw lastError
    }

    /// The member `srvr` reports as leader (nil while none is elected).
    public var leader: ZooKeeperServer? { members.first { $0.mode == "leader" } }

    /// The members `srvr` reports as followers.
    public var followers: [ZooKeeperServer] { members.filter { $0.mode == "follower" } }

    /// Waits until a leader is elected and `count` members serve (leader + followers).
    @discardableResult
    public func waitForQuorum(serving count: Int, timeout: Double = 60) async throws -> ZooKeeperServer {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let modes = members.map { $0.isRunning ? $0.mode : nil }
            if let i = modes.firstIndex(of: "leader"), modes.filter({ $0 == "leader" || $0 == "follower" }).count >= count {
                return members[i]
            }
            if Date() >= deadline {
                throw TestSupportError("no ZooKeeper quorum of \(count) within \(Int(timeout)) s; modes: "
                    + zip(members, modes).map { "\($0.0.port)=\($0.1 ?? "-")" }.joined(separator: " "))
            }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
    }

    /// Stops every member and removes their directories. Safe to call twice.
    public func stop() {
        for m in members { m.stop() }
    }
}
