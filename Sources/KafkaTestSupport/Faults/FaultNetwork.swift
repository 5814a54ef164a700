import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs a system command for the fault harness; throws with its output unless it exits 0.
enum FaultShell {
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], timeout: Double = 30,
                    allowFailure: Bool = false) throws -> ProcessResult {
        let r = try ProcessRunner.run(executable, arguments, timeout: timeout)
        if r.exitCode != 0 && !allowFailure {
            throw TestSupportError("`\(executable) \(arguments.joined(separator: " "))` failed (exit \(r.exitCode)): \(r.stderr)\(r.stdout)")
        }
        return r
    }

    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let dirs = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        return dirs.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

/// Hosts made of Linux network namespaces: each host is a namespace whose `eth0` is one end of a
/// veth pair, the other end enslaved to a bridge in the root namespace. The bridge holds
/// `10.77.<n>.1/24`, so programs in the root namespace (the checker's clients) reach every host
/// directly; host `k` gets `10.77.<n>.k`.
///
/// Every host has an nftables table `inet fault` with an `input` and an `output` chain (policy
/// accept): faults add drop rules there and healing flushes them.
///
/// `<n>` is the first subnet not claimed by a live harness (a claim is an flock held on a pid file
/// under /run/kafka-fault-net/, so concurrent harnesses never share a subnet); namespaces, veths and the bridge of a dead harness are removed before
/// their subnet is reused. Everything needs root (CAP_NET_ADMIN).
public final class FaultNetwork: @unchecked Sendable {
    public struct Host: Sendable {
        public var name: String
        public var namespace: String
        public var address: String
    }

    public let subnet: Int
    public let bridge: String
    public private(set) var hosts: [String: Host] = [:]
    let ip: String
    let nft: String?
    private let claimFile: String
    private let claimFD: Int32
    private var removed = false

    public var gateway: String { "10.77.\(subnet).1" }

    static let claimDir = "/run/kafka-fault-net"

    /// Checks the prerequisites (root, `ip`, netns support) and creates the bridge; fails loudly.
    public init() throws {
        guard geteuid() == 0 else {
            throw TestSupportError("the fault harness needs root (network namespaces, veth, nftables): run it as root (CI does)")
        }
        guard let ip = FaultShell.which("ip") else {
            throw TestSupportError("`ip` (iproute2) is not installed: run bin/setup.sh (apt-get install iproute2)")
        }
        self.ip = ip
        self.nft = FaultShell.which("nft")
        try FileManager.default.createDirectory(atPath: Self.claimDir, withIntermediateDirectories: true)
        var chosen: Int?
        var chosenFD: Int32 = -1
        for n in 0..<250 {
            let file = "\(Self.claimDir)/\(n).pid"
            // The claim is an exclusive flock on the pid file, held until `remove()` (or the process's
            // death: the kernel drops it), so two harnesses starting at once cannot both take `n`.
            let fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { continue }
            var mine = false
            defer { if !mine { close(fd) } }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { continue }   // a live harness holds it
            // The file may have been unlinked by its previous owner between our open and our lock.
            var opened = stat(), named = stat()
            guard fstat(fd, &opened) == 0, stat(file, &named) == 0, opened.st_ino == named.st_ino else { continue }
            // A harness that only wrote its pid (no lock) still counts while it lives.
            if let text = try? String(contentsOfFile: file, encoding: .utf8),
               let owner = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), owner > 0, owner != getpid(),
               kill(owner, 0) == 0 {
                continue
            }
            Self.removeLeftovers(subnet: n, ip: ip)
            let s = "\(getpid())\n"
            _ = ftruncate(fd, 0)
            _ = s.withCString { pwrite(fd, $0, strlen($0), 0) }
            mine = true
            chosen = n
            chosenFD = fd
            break
        }
        guard let n = chosen else { throw TestSupportError("no free 10.77.x.0/24 subnet for the fault network") }
        subnet = n
        bridge = "kfbr\(n)"
        claimFile = "\(Self.claimDir)/\(n).pid"
        claimFD = chosenFD
        do {
            try FaultShell.run(ip, ["link", "add", bridge, "type", "bridge"])
            try FaultShell.run(ip, ["addr", "add", "\(gateway)/24", "dev", bridge])
            try FaultShell.run(ip, ["link", "set", bridge, "up"])
        } catch {
            remove()
            throw error
        }
    }

    deinit { remove() }

    static func namespaceName(subnet: Int, host: String) -> String { "kf\(subnet)-\(host)" }

    /// Deletes namespaces `kf<n>-*` and bridge `kfbr<n>` left by a harness that died.
    static func removeLeftovers(subnet n: Int, ip: String) {
        let list = (try? FaultShell.run(ip, ["netns", "list"], allowFailure: true).stdout) ?? ""
        for line in list.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            if name.hasPrefix("kf\(n)-") {
                killProcesses(inNamespace: name, ip: ip)
                _ = try? FaultShell.run(ip, ["netns", "del", name], allowFailure: true)
            }
        }
        deleteHostLinks(subnet: n, ip: ip)
        _ = try? FaultShell.run(ip, ["link", "del", "kfbr\(n)"], allowFailure: true)
    }

    /// Deletes the root-namespace ends `kf<n>h*` of the hosts' veth pairs. Deleting one end
    /// removes the pair at once; a deleted namespace's veths otherwise go away asynchronously,
    /// and the next harness on this subnet would find the names still taken.
    static func deleteHostLinks(subnet n: Int, ip: String) {
        let links = (try? FaultShell.run(ip, ["-o", "link", "show"], allowFailure: true).stdout) ?? ""
        for line in links.split(separator: "\n") {
            // "12: kf0h11@if2: <BROADCAST,...": the name is the second field, before any '@'.
            let fields = line.split(separator: " ")
            guard fields.count > 1 else { continue }
            let name = fields[1].split(separator: "@").first.map(String.init)?.trimmingCharacters(in: CharacterSet(charactersIn: ":")) ?? ""
            if name.hasPrefix("kf\(n)h") { _ = try? FaultShell.run(ip, ["link", "del", name], allowFailure: true) }
        }
    }

    /// SIGKILL to every process in a namespace (a namespace outlives its deletion while used).
    static func killProcesses(inNamespace ns: String, ip: String) {
        let pids = (try? FaultShell.run(ip, ["netns", "pids", ns], allowFailure: true).stdout) ?? ""
        for p in pids.split(whereSeparator: \.isWhitespace) {
            if let pid = Int32(p) { kill(pid, SIGCONT); kill(pid, SIGKILL) }
        }
    }

    /// Creates host `name` with address 10.77.<n>.<index> (index 2...254).
    @discardableResult
    public func addHost(_ name: String, index: Int) throws -> Host {
        let ns = Self.namespaceName(subnet: subnet, host: name)
        let address = "10.77.\(subnet).\(index)"
        let outer = "kf\(subnet)h\(index)", inner = "kf\(subnet)i\(index)"
        try FaultShell.run(ip, ["netns", "add", ns])
        // A pair of an earlier harness on this subnet may still be going away: remove it, and
        // retry briefly while the kernel finishes.
        _ = try? FaultShell.run(ip, ["link", "del", outer], allowFailure: true)
        var attempt = 0
        while true {
            do {
                try FaultShell.run(ip, ["link", "add", outer, "type", "veth", "peer", "name", inner, "netns", ns])
                break
            } catch {
                attempt += 1
                if attempt >= 25 { throw error }
                usleep(200_000)
                _ = try? FaultShell.run(ip, ["link", "del", outer], allowFailure: true)
            }
        }
        try FaultShell.run(ip, ["link", "set", outer, "master", bridge, "up"])
        try inside(ns, [ip, "link", "set", inner, "name", "eth0"])
        try inside(ns, [ip, "addr", "add", "\(address)/24", "dev", "eth0"])
        try inside(ns, [ip, "link", "set", "eth0", "up"])
        try inside(ns, [ip, "link", "set", "lo", "up"])
        if let nft {
            try inside(ns, [nft, "add", "table", "inet", "fault"])
            try inside(ns, [nft, "add chain inet fault input { type filter hook input priority 0 ; policy accept ; }"])
            try inside(ns, [nft, "add chain inet fault output { type filter hook output priority 0 ; policy accept ; }"])
        }
        let host = Host(name: name, namespace: ns, address: address)
        hosts[name] = host
        return host
    }

    /// Runs a command inside a namespace.
    @discardableResult
    func inside(_ ns: String, _ command: [String], allowFailure: Bool = false) throws -> ProcessResult {
        try FaultShell.run(ip, ["netns", "exec", ns] + command, allowFailure: allowFailure)
    }

    /// The argument prefix that runs a program inside host `name`'s namespace.
    public func execPrefix(_ name: String) -> [String] {
        [ip, "netns", "exec", hosts[name]!.namespace]
    }

    private func requireNft() throws -> String {
        guard let nft else {
            throw TestSupportError("`nft` (nftables) is not installed: run bin/setup.sh (apt-get install nftables)")
        }
        return nft
    }

    /// Drops every packet in and out of the host except on loopback: a silent partition
    /// (connections hang, as when a cable is pulled, rather than being refused).
    public func isolate(_ name: String) throws {
        let nft = try requireNft(), ns = hosts[name]!.namespace
        try inside(ns, [nft, "add rule inet fault input iifname != \"lo\" drop"])
        try inside(ns, [nft, "add rule inet fault output oifname != \"lo\" drop"])
    }

    /// Drops TCP to and from `port` on this host for the given peer addresses, both directions:
    /// peers cannot reach this host's port, and this host cannot reach theirs.
    public func blockPort(_ name: String, port: Int, peers: [String]) throws {
        let nft = try requireNft(), ns = hosts[name]!.namespace
        let set = "{ " + peers.joined(separator: ", ") + " }"
        try inside(ns, [nft, "add rule inet fault input ip saddr \(set) tcp dport \(port) drop"])
        try inside(ns, [nft, "add rule inet fault input ip saddr \(set) tcp sport \(port) drop"])
        try inside(ns, [nft, "add rule inet fault output ip daddr \(set) tcp dport \(port) drop"])
        try inside(ns, [nft, "add rule inet fault output ip daddr \(set) tcp sport \(port) drop"])
    }

    /// Removes every drop rule of the host.
    public func heal(_ name: String) throws {
        guard let nft else { return }
        let ns = hosts[name]!.namespace
        try inside(ns, [nft, "flush chain inet fault input"])
        try inside(ns, [nft, "flush chain inet fault output"])
    }

    /// Takes the host's link down (`ip link set ... down` on the bridge side) or back up.
    public func setLink(_ name: String, up: Bool) throws {
        let index = hosts[name]!.address.split(separator: ".").last!
        try FaultShell.run(ip, ["link", "set", "kf\(subnet)h\(index)", up ? "up" : "down"])
    }

    /// Kills whatever still runs in the namespaces, deletes them and the bridge, releases the subnet.
    public func remove() {
        if removed { return }
        removed = true
        for h in hosts.values {
            Self.killProcesses(inNamespace: h.namespace, ip: ip)
            _ = try? FaultShell.run(ip, ["netns", "del", h.namespace], allowFailure: true)
        }
        Self.deleteHostLinks(subnet: subnet, ip: ip)
        _ = try? FaultShell.run(ip, ["link", "del", bridge], allowFailure: true)
        try? FileManager.default.removeItem(atPath: claimFile)
        if claimFD >= 0 { close(claimFD) }
    }
}
