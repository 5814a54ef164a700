import Foundation
import KafkaProtocol
import NIOCore

/// An operation that waits for a condition on some partitions or for its timeout
/// (long-poll fetches now; acks=-1 produces later use the same mechanism).
public protocol DelayedOperation: AnyObject, Sendable {
    var keys: [TopicPartition] { get }
    /// Returns true when the condition holds; the purgatory then calls `complete()` exactly once.
    func isSatisfied() -> Bool
    /// Runs once, either because the condition held or because the time ran out.
    func complete(timedOut: Bool)
}

/// Kafka's purgatory: parks operations by partition and completes each once, when its
/// condition is met (checked on every append/HW change of a watched partition) or it expires.
public final class Purgatory: @unchecked Sendable {
    private let lock = NSLock()
    private var watchers: [TopicPartition: [ObjectIdentifier: DelayedOperation]] = [:]
    private var done = Set<ObjectIdentifier>()

    public init() {}

    /// Completes the operation now if it can, else parks it until a key changes or `timeoutMs`.
    public func tryCompleteElseWatch(_ op: DelayedOperation, timeoutMs: Int64, eventLoop: EventLoop) {
        if op.isSatisfied() {
            op.complete(timedOut: false)
            return
        }
        let id = ObjectIdentifier(op)
        lock.withLock {
            for k in op.keys { watchers[k, default: [:]][id] = op }
        }
        // The condition may have become true between the check and the registration.
        if op.isSatisfied() {
            finish(op, timedOut: false)
            return
        }
        eventLoop.scheduleTask(in: .milliseconds(max(timeoutMs, 0))) { [weak self] in
            self?.finish(op, timedOut: true)
        }
    }

    /// Re-checks the operations watching `key` (after an append or a high-watermark move).
    public func checkAndComplete(_ key: TopicPartition) {
        let ops: [DelayedOperation] = lock.withLock { watchers[key].map { Array($0.values) } ?? [] }
        for op in ops where op.isSatisfied() { finish(op, timedOut: false) }
    }

    /// Completes everything that waits on `key` (leadership moved, partition removed).
    public func completeAll(_ key: TopicPartition) {
        let ops: [DelayedOperation] = lock.withLock { watchers[key].map { Array($0.values) } ?? [] }
        for op in ops { finish(op, timedOut: false) }
    }

    public var watchedCount: Int { lock.withLock { watchers.values.reduce(0) { $0 + $1.count } } }

    private func finish(_ op: DelayedOperation, timedOut: Bool) {
        let id = ObjectIdentifier(op)
        let first: Bool = lock.withLock {
            var wasWatched = false
            for k in op.keys {
                if watchers[k]?.removeValue(forKey: id) != nil { wasWatched = true }
                if watchers[k]?.isEmpty == true { watchers[k] = nil }
            }
            return wasWatched
        }
        if first { op.complete(timedOut: timedOut) }
    }
}
