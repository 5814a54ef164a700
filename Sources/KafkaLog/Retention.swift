import Logging

extension Log {
    /// Deletes whole segments, oldest first, whose `.log` mtime is older than `retention.ms`, then those beyond
    /// `retention.bytes`. The active segment goes only when non-empty (a fresh one is rolled first).
    /// Returns the number of segments deleted.
    @discardableResult
    public func deleteOldSegmentsByRetention(now: Int64? = nil) -> Int {
        let cfg = config
        let t = now ?? FS.nowMs()
        var deleted = 0
        do {
            if cfg.retentionMs >= 0 {
                deleted += try deleteOldSegments { t - $0.lastModified > cfg.retentionMs }
            }
            if cfg.retentionBytes >= 0 {
                var diff = size - cfg.retentionBytes
                if diff > 0 {
                    deleted += try deleteOldSegments { seg in
                        if diff - Int64(seg.size) >= 0 { diff -= Int64(seg.size); return true }
                        return false
                    }
                }
            }
        } catch {
            logger.error("Retention of log \(topicPartition.directoryName) failed: \(error)")
        }
        if deleted > 0 {
            logger.info("Deleted \(deleted) segment(s) of log \(topicPartition.directoryName) by retention; log start offset is now \(logStartOffset)")
        }
        return deleted
    }
}
