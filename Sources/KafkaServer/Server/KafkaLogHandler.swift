import Foundation
import Logging

/// Log lines in Kafka's log4j layout: `[2026-12-01 16:00:00,123] INFO message (label)`.
public struct KafkaLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    let label: String
    let toStderr: Bool

    public init(label: String, toStderr: Bool = false) {
        self.label = label
        self.toStderr = toStderr
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        emit(level: event.level, message: event.message)
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        emit(level: level, message: message)
    }

    private func emit(level: Logger.Level, message: Logger.Message) {
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
        let fd: Int32 = toStderr ? 2 : 1
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { p in _ = write(fd, p.baseAddress, p.count) }
    }

    /// Installs the handler for the whole process; level from `KAFKA_LOG_LEVEL` (default info).
    public static func bootstrap(toStderr: Bool = false) {
        let level = ProcessInfo.processInfo.environment["KAFKA_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? .info
        LoggingSystem.bootstrap { label in
            var h = KafkaLogHandler(label: label, toStderr: toStderr)
            h.logLevel = level
            return h
        }
    }
}
