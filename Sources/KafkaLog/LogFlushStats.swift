import Synchronization

/// Kafka 0.8.2's `LogFlushStats`: one process-wide timer of log flushes (the fsyncs of
/// `Log.flush`). KafkaLog has no metrics dependency; the broker installs an observer that feeds
/// its `kafka_log_logflushstats_logflush_seconds` histogram. Without one, nothing is recorded.
public enum LogFlushStats {
    private static let observer = Mutex<(@Sendable (_ nanoseconds: Int64) -> Void)?>(nil)

    /// Installs (or with nil removes) the function that receives each flush's duration.
    public static func setObserver(_ f: (@Sendable (_ nanoseconds: Int64) -> Void)?) {
        observer.withLock { $0 = f }
    }

    /// Called by `Log.flush(upTo:)` after it fsynced at least one segment.
    static func record(nanoseconds: Int64) {
        if let f = observer.withLock({ $0 }) { f(nanoseconds) }
    }
}
