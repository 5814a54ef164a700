#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A properties file that could not be read; the message names the file.
public struct PropertiesFileError: Error, CustomStringConvertible, Sendable, Equatable {
    public var path: String
    public var description: String
    public init(path: String, description: String) {
        self.path = path
        self.description = description
    }
}

/// The one reader of Kafka-style `key=value` properties files (server.properties,
/// consumer.config, producer.config), as java.util.Properties reads them: `#`/`!` comment lines,
/// a line ending in an odd number of `\` continues on the next (its leading blanks dropped), the
/// key ends at the first unescaped `=`, `:` or blank, blanks around the separator are skipped,
/// `\t \n \r \f \uXXXX` escapes, any other escaped character stands for itself.
/// Lines end at `\n`, `\r\n` or `\r`. Pairs come in file order; a later key wins in `dictionary`.
public enum PropertiesFile {
    public static func parse(_ text: String) -> [(key: String, value: String)] {
        var out: [(key: String, value: String)] = []
        var logical = ""
        var continuing = false
        for raw in lines(text) {
            let line = raw.drop(while: isBlank)
            if !continuing, line.isEmpty || line.first == "#" || line.first == "!" { continue }
            // A line ending with an odd number of backslashes continues.
            let trailing = line.reversed().prefix(while: { $0 == "\\" }).count
            if trailing % 2 == 1 {
                logical += line.dropLast()
                continuing = true
                continue
            }
            logical += line
            out.append(split(logical))
            logical = ""
            continuing = false
        }
        if continuing { out.append(split(logical)) }
        return out
    }

    /// The pairs of `parse` as a dictionary (a later key wins), values without trailing blanks.
    public static func dictionary(_ pairs: [(key: String, value: String)]) -> [String: String] {
        var out: [String: String] = [:]
        for (k, v) in pairs { out[k] = trimmingTrailingBlanks(v) }
        return out
    }

    /// Reads and parses the file at `path`. `what` names it in errors: "config file",
    /// "--consumer.config file", ...
    public static func load(path: String, what: String = "config file") throws -> [(key: String, value: String)] {
        try parse(readText(path: path, what: what))
    }

    /// The file's text, UTF-8 (invalid bytes replaced), or an error naming the file.
    public static func readText(path: String, what: String = "config file") throws -> String {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let why = errno == ENOENT ? "does not exist" : "cannot be read (\(String(cString: strerror(errno))))"
            throw PropertiesFileError(path: path, description: "\(what) \(path) \(why)")
        }
        guard (st.st_mode & S_IFMT) != S_IFDIR else {
            throw PropertiesFileError(path: path, description: "\(what) \(path) is a directory")
        }
        guard let f = fopen(path, "rb") else {
            throw PropertiesFileError(path: path, description: "cannot read \(what) \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            bytes += chunk[0..<n]
            if n < chunk.count {
                if ferror(f) != 0 {
                    throw PropertiesFileError(path: path, description: "cannot read \(what) \(path): read error")
                }
                break
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: -

    private static func isBlank(_ c: Character) -> Bool { c == " " || c == "\t" || c == "\u{0C}" }

    private static func trimmingTrailingBlanks(_ s: String) -> String {
        var s = Substring(s)
        while let l = s.last, isBlank(l) { s = s.dropLast() }
        return String(s)
    }

    /// Physical lines; "\r\n" is one Character in Swift.
    private static func lines(_ text: String) -> [Substring] {
        text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" })
    }

    private static func split(_ line: String) -> (key: String, value: String) {
        var idx = line.startIndex
        var escaped = false
        var keyRaw = ""
        while idx < line.endIndex {
            let c = line[idx]
            if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "=" || c == ":" || isBlank(c) { break }
            keyRaw.append(c)
            idx = line.index(after: idx)
        }
        var rest = line[idx...].drop(while: isBlank)
        if let f = rest.first, f == "=" || f == ":" { rest = rest.dropFirst().drop(while: isBlank) }
        return (unescape(keyRaw), unescape(rest))
    }

    private static func unescape<S: StringProtocol>(_ s: S) -> String {
        var out = ""
        var it = Array(s)[...]
        while let c = it.popFirst() {
            guard c == "\\", let e = it.popFirst() else { out.append(c); continue }
            switch e {
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "r": out.append("\r")
            case "f": out.append("\u{0C}")
            case "u":
                let hex = String(it.prefix(4))
                if hex.count == 4, let v = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(v) {
                    out.unicodeScalars.append(scalar)
                    it = it.dropFirst(4)
                } else {
                    out.append("u")   // java.util.Properties throws on a malformed \u; keep the text
                }
            default: out.append(e)
            }
        }
        return out
    }
}
