import Foundation
import KafkaProtocol
import KafkaTestSupport
import XCTest
import ZooKeeper

/// Issue 10 item 5: docker/compose.yaml (3 ZooKeeper members, 3 brokers) and docker/entrypoint.sh
/// (KAFKA_* variables -> server.properties). No Docker engine runs here: the compose file is parsed
/// and checked, the entry point generates the properties of each broker service, and the same
/// entry point starts a real broker outside a container.
final class ContainerConfigTests: XCTestCase {
    private let composePath = Project.root + "/docker/compose.yaml"
    private let entrypoint = Project.root + "/docker/entrypoint.sh"
    private var directory: String!

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "kafka-swift-container-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        if ProcessInfo.processInfo.environment["KAFKA_TEST_KEEP_TMP"] != "1" {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    private func compose() throws -> [String: MiniYAML.Node] {
        let text = try String(contentsOfFile: composePath, encoding: .utf8)
        let root = try MiniYAML.parse(text)
        return try XCTUnwrap(root["services"]?.map, "compose.yaml has no services mapping")
    }

    private func environment(_ service: MiniYAML.Node?) -> [String: String] {
        service?["environment"]?.map?.compactMapValues(\.scalar) ?? [:]
    }

    func testComposeHasAThreeMemberEnsembleAndThreeBrokers() throws {
        let services = try compose()
        let zks = services.keys.filter { $0.hasPrefix("zk") }.sorted()
        let kafkas = services.keys.filter { $0.hasPrefix("kafka") }.sorted()
        XCTAssertEqual(zks, ["zk1", "zk2", "zk3"])
        XCTAssertEqual(kafkas, ["kafka1", "kafka2", "kafka3"])

        // The ensemble: distinct ids, one server list naming every member.
        let expectedServers = zks.enumerated().map { "server.\($0.offset + 1)=\($0.element):2888:3888;2181" }.joined(separator: " ")
        for (i, zk) in zks.enumerated() {
            let env = environment(services[zk])
            XCTAssertEqual(services[zk]?["image"]?.scalar?.hasPrefix("zookeeper:"), true, zk)
            XCTAssertEqual(services[zk]?["hostname"]?.scalar, zk)
            XCTAssertEqual(env["ZOO_MY_ID"], "\(i + 1)", zk)
            XCTAssertEqual(env["ZOO_SERVERS"], expectedServers, zk)
        }

        // The brokers: distinct ids and ports, every member in zookeeper.connect with a chroot,
        // advertised host = the service's hostname, advertised port = the published port.
        var ids = Set<String>(), ports = Set<String>()
        for k in kafkas {
            let s = services[k]
            let env = environment(s)
            ids.insert(try XCTUnwrap(env["KAFKA_BROKER_ID"], k))
            let port = try XCTUnwrap(env["KAFKA_PORT"], k)
            ports.insert(port)
            let connect = try XCTUnwrap(env["KAFKA_ZOOKEEPER_CONNECT"], k)
            let (hosts, chroot) = ZooKeeperClient.splitChroot(connect)
            XCTAssertEqual(hosts.split(separator: ",").map(String.init), zks.map { "\($0):2181" }, k)
            XCTAssertEqual(chroot, "/kafka", k)
            XCTAssertEqual(env["KAFKA_ADVERTISED_HOST_NAME"], s?["hostname"]?.scalar, k)
            XCTAssertEqual(s?["hostname"]?.scalar, k)
            XCTAssertEqual(env["KAFKA_ADVERTISED_PORT"], port, k)
            XCTAssertEqual(s?["ports"]?.list?.compactMap(\.scalar), ["\(port):\(port)"], k)
            XCTAssertEqual(Set(s?["depends_on"]?.list?.compactMap(\.scalar) ?? []).isSuperset(of: zks), true, k)
            XCTAssertEqual(s?["build"]?["dockerfile"]?.scalar, "docker/Dockerfile", k)
            XCTAssertNotNil(env["KAFKA_LOG_DIRS"], k)
            for volume in s?["volumes"]?.list?.compactMap(\.scalar) ?? [] {
                let name = String(volume.split(separator: ":")[0])
                XCTAssertNotNil(try MiniYAML.parse(String(contentsOfFile: composePath, encoding: .utf8))["volumes"]?.map?[name],
                                "\(k): volume \(name) is not declared")
            }
        }
        XCTAssertEqual(ids.count, 3, "broker ids \(ids)")
        XCTAssertEqual(ports.count, 3, "broker ports \(ports)")
    }

    /// Runs the entry point with exactly `env` (plus PATH, KAFKA_HOME and the output file) in
    /// config-only mode; returns the generated file's text.
    private func generate(_ env: [String: String], name: String) throws -> String {
        let file = "\(directory!)/\(name).properties"
        var vars = ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=\(directory!)", "KAFKA_HOME=\(Project.root)", "KAFKA_CONFIG_FILE=\(file)"]
        vars += env.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let r = try ProcessRunner.run("/usr/bin/env", ["-i"] + vars + [entrypoint, "--config-only"], timeout: 30)
        XCTAssertEqual(r.exitCode, 0, r.summary)
        XCTAssertEqual(r.stdout, file + "\n", r.summary)
        return try String(contentsOfFile: file, encoding: .utf8)
    }

    func testEntrypointMapsKafkaVariablesOntoProperties() throws {
        let services = try compose()
        let base = PropertiesFile.dictionary(PropertiesFile.parse(try String(contentsOfFile: Project.root + "/config/server.properties", encoding: .utf8)))
        for k in ["kafka1", "kafka2", "kafka3"] {
            let env = environment(services[k])
            let text = try generate(env, name: k)
            let pairs = PropertiesFile.parse(text)
            let props = PropertiesFile.dictionary(pairs)
            XCTAssertEqual(pairs.count, Set(pairs.map(\.key)).count, "\(k): a key set twice:\n\(text)")
            XCTAssertEqual(props["broker.id"], env["KAFKA_BROKER_ID"], k)
            XCTAssertEqual(props["zookeeper.connect"], env["KAFKA_ZOOKEEPER_CONNECT"], k)
            XCTAssertEqual(props["advertised.host.name"], env["KAFKA_ADVERTISED_HOST_NAME"], k)
            XCTAssertEqual(props["advertised.port"], env["KAFKA_ADVERTISED_PORT"], k)
            XCTAssertEqual(props["port"], env["KAFKA_PORT"], k)
            XCTAssertEqual(props["log.dirs"], env["KAFKA_LOG_DIRS"], k)
            XCTAssertEqual(props["default.replication.factor"], "3", k)
            // Every other key of config/server.properties is kept as it was.
            for (key, value) in base where !env.keys.contains("KAFKA_" + key.uppercased().replacingOccurrences(of: ".", with: "_")) {
                XCTAssertEqual(props[key], value, "\(k): \(key)")
            }
        }

        // The convention itself: strip KAFKA_, lower case, _ -> .; launcher variables are not properties;
        // values keep every character; a key commented out in the base file is set in place.
        let text = try generate([
            "KAFKA_BROKER_ID": "42", "KAFKA_LOG_FLUSH_INTERVAL_MESSAGES": "7", "KAFKA_CONTROLLED_SHUTDOWN_ENABLE": "false",
            "KAFKA_ZOOKEEPER_CONNECT": "a:1,b:2/x&y|z\\w", "KAFKA_HEAP_OPTS": "-Xmx1G", "KAFKA_OPTS": "-Dx=1",
            "KAFKA_TEST_KEEP_TMP": "1", "OTHER_VAR": "1",
        ], name: "convention")
        let props = PropertiesFile.dictionary(PropertiesFile.parse(text))
        XCTAssertEqual(props["broker.id"], "42")
        XCTAssertEqual(props["log.flush.interval.messages"], "7")
        XCTAssertTrue(text.contains("\nlog.flush.interval.messages=7\n") && !text.contains("#log.flush.interval.messages"), text)
        XCTAssertEqual(props["controlled.shutdown.enable"], "false")
        XCTAssertTrue(text.contains("\nzookeeper.connect=a:1,b:2/x&y|z\\w\n"), text)
        XCTAssertNil(props["heap.opts"])
        XCTAssertNil(props["opts"])
        XCTAssertNil(props["test.keep.tmp"])
        XCTAssertNil(props["other.var"])
        XCTAssertNotNil(props["advertised.host.name"], "advertised.host.name defaults to the hostname")
    }

    /// The container's start path outside a container: docker/entrypoint.sh with KAFKA_* variables and
    /// no command writes the properties and execs bin/kafka-server-start.sh on them; the broker
    /// creates its chroot, registers, and answers Metadata with its advertised address.
    func testEntrypointStartsABrokerOutsideAContainer() async throws {
        try Project.requireReleaseBuild()
        let zk = try await ZooKeeperServer.start()
        defer { zk.stop() }
        let port = try FreePort.allocate()
        let file = "\(directory!)/server.properties"
        let env = [
            "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=\(directory!)", "KAFKA_CONFIG_FILE=\(file)",
            "KAFKA_BROKER_ID=5", "KAFKA_PORT=\(port)", "KAFKA_HOST_NAME=127.0.0.1", "KAFKA_ADVERTISED_HOST_NAME=127.0.0.1",
            "KAFKA_ZOOKEEPER_CONNECT=\(zk.connectString)/containers", "KAFKA_LOG_DIRS=\(directory!)/kafka-logs",
        ]
        let broker = try BackgroundProcess.launch("/usr/bin/env", ["-i"] + env + [entrypoint], environment: nil,
                                                  currentDirectory: directory, outputFile: "\(directory!)/broker.out")
        defer { _ = broker.stop(grace: 15) }
        let md = try poll(timeout: 60, "the broker started by docker/entrypoint.sh to answer Metadata") { () -> MetadataResponse? in
            if let code = broker.exitStatus {
                throw WireError("the broker exited with code \(code):\n\(broker.output())")
            }
            guard TestNetwork.isOpen(port) else { return nil }
            let m = try WireConnection(port: port, timeout: 5).metadata()
            return m.brokers.contains { $0.id == 5 } ? m : nil
        }
        XCTAssertEqual(md.brokers, [MetadataResponse.Broker(id: 5, host: "127.0.0.1", port: Int32(port))])
        let zkClient = try await ZooKeeperClient.connect(zk.connectString, sessionTimeoutMs: 10000)
        let ids = try await zkClient.children("/containers/brokers/ids")
        await zkClient.close()
        XCTAssertEqual(ids, ["5"])
        XCTAssertEqual(broker.stop(grace: 15), 0, "SIGTERM reaches the broker (the entry point execs it):\n\(broker.output())")
    }
}

/// The YAML subset docker/compose.yaml keeps to: block mappings, block lists of scalars, plain and
/// quoted scalars, comments. Enough to check the file; anything else is an error, not a guess.
enum MiniYAML {
    indirect enum Node {
        case map([String: Node])
        case list([Node])
        case scalar(String)
        case null

        var map: [String: Node]? { if case .map(let m) = self { return m } else { return nil } }
        var list: [Node]? { if case .list(let l) = self { return l } else { return nil } }
        var scalar: String? { if case .scalar(let s) = self { return s } else { return nil } }
        subscript(key: String) -> Node? { map?[key] }
    }

    struct ParseError: Error, CustomStringConvertible { var description: String }

    private struct Line { var number: Int; var indent: Int; var text: String }

    static func parse(_ text: String) throws -> Node {
        var lines: [Line] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let stripped = stripComment(String(raw))
            let content = stripped.drop { $0 == " " }
            if content.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            if stripped.hasPrefix("\t") { throw ParseError(description: "line \(i + 1): tab indentation") }
            lines.append(Line(number: i + 1, indent: stripped.count - content.count,
                              text: String(content).trimmingCharacters(in: .whitespaces)))
        }
        var index = 0
        let node = try block(lines, &index, indent: 0)
        if index < lines.count { throw ParseError(description: "line \(lines[index].number): unexpected indentation") }
        return node
    }

    /// A `#` starts a comment at the line start or after a space, outside quotes.
    private static func stripComment(_ s: String) -> String {
        var quote: Character?
        var previous: Character = " "
        for (offset, c) in s.enumerated() {
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == "#" && previous == " " {
                return String(s.prefix(offset))
            }
            previous = c
        }
        return s
    }

    private static func block(_ lines: [Line], _ index: inout Int, indent: Int) throws -> Node {
        guard index < lines.count else { return .null }
        if lines[index].text.hasPrefix("- ") || lines[index].text == "-" {
            var items: [Node] = []
            while index < lines.count, lines[index].indent == indent, lines[index].text.hasPrefix("-") {
                let item = lines[index].text.dropFirst().trimmingCharacters(in: .whitespaces)
                if item.contains(": ") || item.hasSuffix(":") {
                    throw ParseError(description: "line \(lines[index].number): mappings inside lists are not supported")
                }
                items.append(.scalar(try scalar(item, line: lines[index].number)))
                index += 1
            }
            return .list(items)
        }
        var map: [String: Node] = [:]
        while index < lines.count, lines[index].indent == indent {
            let line = lines[index]
            guard let colon = keyColon(line.text) else {
                throw ParseError(description: "line \(line.number): expected `key: value`, got \(line.text)")
            }
            let key = try scalar(String(line.text[..<colon]), line: line.number)
            let rest = line.text[line.text.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if map[key] != nil { throw ParseError(description: "line \(line.number): duplicate key \(key)") }
            index += 1
            if !rest.isEmpty {
                map[key] = .scalar(try scalar(rest, line: line.number))
            } else if index < lines.count, lines[index].indent > indent {
                map[key] = try block(lines, &index, indent: lines[index].indent)
            } else if index < lines.count, lines[index].indent == indent, lines[index].text.hasPrefix("- ") {
                map[key] = try block(lines, &index, indent: indent)   // a list at the key's own indentation
            } else {
                map[key] = .null
            }
        }
        return .map(map)
    }

    /// The colon that ends a key (outside quotes, followed by a space or the line end).
    private static func keyColon(_ s: String) -> String.Index? {
        var quote: Character?
        var i = s.startIndex
        while i < s.endIndex {
            let c = s[i]
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == ":" {
                let next = s.index(after: i)
                if next == s.endIndex || s[next] == " " { return i }
            }
            i = s.index(after: i)
        }
        return nil
    }

    private static func scalar(_ s: String, line: Int) throws -> String {
        let t = s.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix("\"") {
            guard t.count >= 2, t.hasSuffix("\"") else { throw ParseError(description: "line \(line): unterminated string \(t)") }
            var out = "", escaped = false
            for c in t.dropFirst().dropLast() {
                if escaped { out.append(c == "n" ? "\n" : c == "t" ? "\t" : c); escaped = false }
                else if c == "\\" { escaped = true }
                else { out.append(c) }
            }
            return out
        }
        if t.hasPrefix("'") {
            guard t.count >= 2, t.hasSuffix("'") else { throw ParseError(description: "line \(line): unterminated string \(t)") }
            return String(t.dropFirst().dropLast()).replacingOccurrences(of: "''", with: "'")
        }
        if let f = t.first, "[{&*!|>%@`".contains(f) {
            throw ParseError(description: "line \(line): flow/anchor/block syntax is not supported: \(t)")
        }
        return t
    }
}
