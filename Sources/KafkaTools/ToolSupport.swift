import ArgumentParser
import Foundation
import Logging

/// A tool failure: printed to stderr, exit status 1.
public struct ToolError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

enum Console {
    static func err(_ s: String) {
        FileHandle.standardError.write((s + "\n").data(using: .utf8)!)
    }
    static func out(_ s: String) {
        FileHandle.standardOutput.write((s + "\n").data(using: .utf8)!)
    }
}

/// `k=v` pairs from repeated `--property`/`--config` options.
func parseKeyValues(_ items: [String], flag: String) throws -> [String: String] {
    var out: [String: String] = [:]
    for item in items {
        guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
            throw ToolError("Invalid \(flag) \"\(item)\": expected key=value")
        }
        out[String(item[..<eq])] = String(item[item.index(after: eq)...])
    }
    return out
}

/// Tools log only warnings and errors to stderr unless KAFKA_LOG_LEVEL says otherwise.
public enum ToolLogging {
    public static func bootstrap() {
        let level = ProcessInfo.processInfo.environment["KAFKA_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? .error
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
    }
}

// MARK: - Usage errors

/// Collects usage problems so a tool reports every missing argument at once (Kafka's
/// `CommandLineUtils.checkRequiredArgs` stops at the first), then throws one `ValidationError`:
/// `Missing required argument "[zookeeper]"` or `Missing required arguments "[broker-list]", "[topic]"`,
/// followed by any other problem on its own line. `KafkaToolsMain` prints it with a one-line usage.
struct UsageCheck {
    private var missing: [String] = []
    private var problems: [String] = []

    /// Records `--name` as missing unless `present`.
    mutating func require(_ name: String, _ present: Bool) {
        if !present { missing.append(name) }
    }

    mutating func problem(_ message: String) { problems.append(message) }

    var message: String? {
        var lines: [String] = []
        if missing.count == 1 {
            lines.append("Missing required argument \"[\(missing[0])]\"")
        } else if missing.count > 1 {
            lines.append("Missing required arguments " + missing.map { "\"[\($0)]\"" }.joined(separator: ", "))
        }
        lines += problems
        return lines.isEmpty ? nil : lines.joined(separator: "\n")
    }

    func check() throws {
        if let message { throw ValidationError(message) }
    }

    /// `--broker-list` and `--topic`, both required (console producer, simple consumer shell,
    /// end-to-end latency): their values, or the usage error naming what is missing.
    static func requireBrokerListAndTopic(_ brokerList: String?, _ topic: String?) throws -> (brokerList: String, topic: String) {
        var usage = UsageCheck()
        usage.require("broker-list", brokerList != nil)
        usage.require("topic", topic != nil)
        try usage.check()
        return (brokerList!, topic!)
    }
}

/// A tool's one-line usage, printed after a usage error instead of the whole help.
protocol ToolUsage {
    static var usageLine: String { get }
}

// MARK: - Help text

/// Renders a command's help: ArgumentParser's, except that the overview keeps every indented
/// line of the discussion (example commands, JSON samples) whole; prose lines are wrapped to the
/// terminal width. ArgumentParser wraps the discussion like prose, which split example commands
/// in the middle.
public enum ToolHelp {
    /// The width ArgumentParser uses: $COLUMNS, else the terminal's, else 80.
    static var screenWidth: Int {
        if let c = ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init), c > 0 { return c }
        var w = winsize()
        if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &w) == 0, w.ws_col > 0 { return Int(w.ws_col) }
        return 80
    }

    public static func render(_ command: any ParsableCommand.Type, columns: Int? = nil) -> String {
        let width = columns ?? screenWidth
        let generated = command.helpMessage(columns: width)
        let config = command.configuration
        guard !config.abstract.isEmpty, let usage = generated.range(of: "\nUSAGE:") ?? generated.range(of: "USAGE:") else {
            return generated
        }
        var overview = wrap("OVERVIEW: " + config.abstract, width: width)
        if !config.discussion.isEmpty {
            for line in config.discussion.split(separator: "\n", omittingEmptySubsequences: false) {
                let s = String(line)
                if s.first == " " || s.first == "\t" || s.isEmpty {
                    overview.append(s)
                } else {
                    overview += wrap(s, width: width)
                }
            }
        }
        let rest = generated[usage.lowerBound...].drop { $0 == "\n" }
        return overview.joined(separator: "\n") + "\n\n" + rest
    }

    /// Greedy word wrap; a word longer than the width stays whole on its own line.
    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var current = ""
        for word in text.split(separator: " ", omittingEmptySubsequences: true) {
            if current.isEmpty {
                current = String(word)
            } else if current.count + 1 + word.count <= width {
                current += " " + word
            } else {
                lines.append(current)
                current = String(word)
            }
        }
        lines.append(current)
        return lines
    }
}
