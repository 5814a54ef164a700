import Foundation
import Logging

/// Log lines in Kafka's log4j layout: `[2026-12-01 16:00:00,123] INFO message (label)`.
public struct KafkaLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    let label: String
    let stream: UnsafeMutablePointer<FILE>

    public init(label: String, stream: UnsafeMutablePointer<FILE> = stdout) {
        self.label = label
        self.stream = stream
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var t = time_t(tv.tv_sec)
        var tmv = tm()
        localtime_r(&t, &tmv)
        let ts = String(format: "%04d-%02d-%02d %02d:%02d:%02d,%03d", tmv.tm_year + 1900, tmv.tm_mon + 1, tmv.tm_mday, tmv.tm_hour, tmv.tm_min, tmv.tm_sec, Int(tv.tv_usec / 1000))
        let lvl: String
        switch level {
        case .trace: lvl = "TRACE"
        case .debug: lvl = "DEBUG"
        case .info, .notice: lvl = "INFO"
        case .warning: lvl = "WARN"
        case .error: lvl = "ERROR"
        case .critical: lvl = "FATAL"
        }
        let line = "[\(ts)] \(lvl) \(message) (\(label))\n"
        fputs(line, stream)
        fflush(stream)
    }

    /// Installs the handler for the whole process; level from `KAFKA_LOG_LEVEL` (default info).
    public static func bootstrap(stream: UnsafeMutablePointer<FILE> = stdout) {
        let level = ProcessInfo.processInfo.environment["KAFKA_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? .info
        let s = UncheckedStream(stream)
        LoggingSystem.bootstrap { label in
            var h = KafkaLogHandler(label: label, stream: s.stream)
            h.logLevel = level
            return h
        }
    }
}

struct UncheckedStream: @unchecked Sendable {
    let stream: UnsafeMutablePointer<FILE>
    init(_ s: UnsafeMutablePointer<FILE>) { stream = s }
}
