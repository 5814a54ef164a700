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
