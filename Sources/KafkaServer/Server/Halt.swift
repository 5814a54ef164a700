import Foundation
import Logging

/// Stops the broker process at once, without a clean shutdown (0.8.2 `Runtime.halt(1)`): used
/// where carrying on could lose acknowledged data (a log I/O error, a follower asked to discard
/// committed messages). The ZooKeeper session then expires and leadership moves elsewhere; no
/// clean-shutdown marker is written, so the next start recovers the logs.
public enum Halt {
    public static func now(_ reason: String, logger: Logger) -> Never {
        logger.critical("Halting: \(reason)")
        fflush(nil)   // every C stream, before the process ends without exit handlers
        _exit(1)
    }
}
