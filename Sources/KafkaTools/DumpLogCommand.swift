import ArgumentParser
import Foundation
import KafkaLog
#if canImport(Glibc)
import Glibc
#endif

/// kafka-dump-log.sh / `kafka-run-class.sh kafka.tools.DumpLogSegments`: prints the entries of segment
/// (`.log`) and index (`.index`) files, as Kafka 0.8.2's DumpLogSegments does.
public struct DumpLogCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "kafka-dump-log.sh",
        abstract: "Print the messages of log segment files and the entries of index files.",
        discussion: """
        For a .log file: one line per message with offset, position, isvalid (CRC check), payloadsize, magic, compresscodec, crc and keysize; with --print-data-log also key and payload. Invalid or truncated bytes at the end of a segment are reported ("Found N invalid bytes at the end of ...").

        For an .index file: one line per entry (offset, position). Entries that do not point at a message with that offset in the matching .log file are listed under "Mismatches in".

        Examples (in a partition directory such as /tmp/kafka-logs/test-0):
          bin/kafka-dump-log.sh --files 00000000000000000000.log --print-data-log
          bin/kafka-dump-log.sh --files 00000000000000000000.index --verify-index-only
        """)

    @Option(name: .customLong("files"), help: "REQUIRED: The comma separated list of data and index log files to be dumped.")
    var files: String?
    @Flag(name: .customLong("print-data-log"), help: "If set, printing the messages content when dumping data logs.")
    var printDataLog = false
    @Flag(name: .customLong("deep-iteration"), help: "If set, uses deep instead of shallow iteration (decompresses compressed message sets).")
    var deepIteration = false
    @Flag(name: .customLong("verify-index-only"), help: "If set, just verify the index log without printing its content.")
    var verifyIndexOnly = false
    @Option(name: .customLong("max-message-size"), help: "Size of largest message.")
    var maxMessageSize = 5 * 1024 * 1024

    public init() {}

    public func run() async throws {
        guard let files else { throw ValidationError("Missing required argument \"[files]\"") }
        let list = files.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !list.isEmpty else { throw ValidationError("--files names no file") }
        guard maxMessageSize > 0 else { throw ValidationError("--max-message-size must be positive") }
        // Check every file before printing anything, so an error names the file at fault.
        for file in list {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: file, isDirectory: &isDir) else {
                throw ToolError("Cannot dump \(file): no such file")
            }
            if isDir.boolValue { throw ToolError("Cannot dump \(file): it is a directory (name the .log or .index files)") }
            guard FileManager.default.isReadableFile(atPath: file) else {
                throw ToolError("Cannot dump \(file): permission denied")
            }
            guard file.hasSuffix(".log") || file.hasSuffix(".index") else {
                throw ToolError("Cannot dump \(file): not a segment file (expected a name ending in .log or .index)")
            }
            let name = file.split(separator: "/").last.map(String.init) ?? file
            let base = name.hasSuffix(".log") ? name.dropLast(4) : name.dropLast(6)
            guard Int64(base) != nil else {
                throw ToolError("Cannot dump \(file): the file name must be a base offset, e.g. 00000000000000000000.log")
            }
        }
        let text = DumpLogSegments.dump(files: list, printData: printDataLog, deepIteration: deepIteration,
                                        verifyIndexOnly: verifyIndexOnly, maxMessageBytes: maxMessageSize)
        Self.writeStdout(text)
    }

    /// write(2) to stdout; stops quietly when the reader went away (`| head`: EPIPE, SIGPIPE is ignored).
    static func writeStdout(_ text: String) {
        var text = text
        text.withUTF8 { buf in
            var off = 0
            while off < buf.count {
                let n = write(1, buf.baseAddress! + off, buf.count - off)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                off += n
            }
        }
    }
}
