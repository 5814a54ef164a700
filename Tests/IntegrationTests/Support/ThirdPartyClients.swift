import Foundation
import KafkaTestSupport
import XCTest

/// The third-party clients the interop tests run as subprocesses: kcat and the Python scripts in
/// Tests/interop (which share Tests/interop/interop_common.py).
extension Project {
    /// kcat's settings for a 0.8.2 broker: no ApiVersions probe.
    static let kcatCompat = ["-X", "api.version.request=false", "-X", "broker.version.fallback=0.8.2"]

    /// kcat against the broker on `port`, told it is 0.8.2 unless `compat` is false (then it probes
    /// with ApiVersions as modern clients do). Skips the test when kcat is not installed.
    static func kcat(port: Int, _ args: [String], compat: Bool = true, stdin: String? = nil, timeout: Double = 60) throws -> ProcessResult {
        let exe = try requireTool("kcat", install: "apt-get install kcat")
        return try ProcessRunner.run(exe, ["-b", "127.0.0.1:\(port)"] + (compat ? kcatCompat : []) + args,
                                     stdin: stdin, timeout: timeout)
    }

    /// Runs Tests/interop/<script> from the project root with `python` (default: the .venv's,
    /// skipping the test when it is missing).
    static func runInteropScript(_ script: String, _ args: [String], python: String? = nil, stdin: String? = nil,
                                 timeout: Double) throws -> ProcessResult {
        try ProcessRunner.run(try python ?? requireVenvPython(), [interopScript(script)] + args, stdin: stdin,
                              currentDirectory: root, timeout: timeout)
    }

    /// The JSON objects a script printed, one per line. Lines that do not start with `{` are passed
    /// over unless `everyLine` (then every line must be an object).
    static func jsonLines(_ text: String, everyLine: Bool = false) throws -> [[String: Any]] {
        try text.split(separator: "\n").filter { everyLine || $0.hasPrefix("{") }.map { line in
            guard let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw WireError("not a JSON object: \(line)")
            }
            return obj
        }
    }
}
