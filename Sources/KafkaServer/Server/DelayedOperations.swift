import Foundation
import KafkaLog
import KafkaProtocol
import NIOCore
import Synchronization

/// An operation that waits for a condition on some partitions or for its timeout
/// (long-poll fetches and acks=-1 produces).
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
    private struct State {
        var watchers: [TopicPartition: [ObjectIdentifier: DelayedOperation]] = [:]
        var done = Set<ObjectIdentifier>()
    }
    private let state = Mutex(State())

    public init() {}

    /// Completes the operation now if it can, else parks it until a key changes or `timeoutMs`.
    public func tryCompleteElseWatch(_ op: DelayedOperation, timeoutMs: Int64, eventLoop: EventLoop) {
        if op.isSatisfied() {
            op.complete(timedOut: false)
            return
        }
        let id = ObjectIdentifier(op)
        state.withLock { st in
            for k in op.keys { st.watchers[k, default: [:]][id] = op }
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
        let ops: [DelayedOperation] = state.withLock { st in st.watchers[key].map { Array($0.values) } ?? [] }
        for op in ops where op.isSatisfied() { finish(op, timedOut: false) }
    }

    /// Completes everything that waits on `key` (leadership moved, partition removed).
    public func completeAll(_ key: TopicPartition) {
        let ops: [DelayedOperation] = state.withLock { st in st.watchers[key].map { Array($0.values) } ?? [] }
        for op in ops { finish(op, timedOut: false) }
    }

    public var watchedCount: Int { state.withLock { st in st.watchers.values.reduce(0) { $0 + $1.count } } }

    /// Metrics: parked operations of one kind (`operations`) and their watch entries, one per
    /// partition they wait on (`watchers`, 0.8.2's PurgatorySize).
    public func parkedCount<T: DelayedOperation>(of kind: T.Type) -> (operations: Int, watchers: Int) {
        state.withLock { st in
            var ops = Set<ObjectIdentifier>()
            var watchers = 0
            for w in st.watchers.values {
                for (id, op) in w where op is T {
                    ops.insert(id)
                    watchers += 1
                }
            }
            return (ops.count, watchers)
        }
    }

    private func finish(_ op: DelayedOperation, timedOut: Bool) {
        let id = ObjectIdentifier(op)
        let first: Bool = state.withLock { st in
            var wasWatched = false
            for k in op.keys {
                if st.watchers[k]?.removeValue(forKey: id) != nil { wasWatched = true }
                if st.watchers[k]?.isEmpty == true { st.watchers[k] = nil }
            }
            return wasWatched
        }
        if first { op.complete(timedOut: timedOut) }
    }
}

struct UncheckedBox<T>: @unchecked Sendable {
    var value: T
    init(_ v: T) { value = v }
}

/// A fetch parked until enough bytes are below the high watermark or its wait runs out. The
/// check (`isSatisfied`: index lookups and a scan of at most `index.interval.bytes` per
/// partition) runs on the thread that triggered it; the completion (the read and the response)
/// runs on the request's event loop, which `onComplete` may leave for the I/O pool.
final class DelayedFetch: DelayedOperation, @unchecked Sendable {
    let request: FetchRequest
    let reader: FetchReader
    /// The loop of the connection that sent the fetch.
    let eventLoop: EventLoop
    /// Called once, on `eventLoop`: reads the partitions and answers.
    let onComplete: @Sendable () -> Void
    let keys: [TopicPartition]

    init(request: FetchRequest, reader: FetchReader, eventLoop: EventLoop, onComplete: @escaping @Sendable () -> Void) {
        self.request = request
        self.reader = reader
        self.eventLoop = eventLoop
        self.onComplete = onComplete
        self.keys = request.topics.flatMap { t in t.partitions.map { TopicPartition(t.topic, $0.partition) } }
    }

    func isSatisfied() -> Bool {
        var bytes = 0
        for t in request.topics {
            for p in t.partitions {
                let tp = TopicPartition(t.topic, p.partition)
                guard let part = reader.replicaManager.partition(tp), part.isLeader || request.replicaId == -2 else { return true }
                let end = request.replicaId >= 0 ? part.log.logEndOffset : part.highWatermark
                if end > p.fetchOffset {
                    // Bytes available up to the end (an index lookup; nothing is opened).
                    if let n = try? part.log.availableBytes(startOffset: p.fetchOffset, maxBytes: max(Int(p.maxBytes), 0), maxOffset: end) {
                        bytes += n
                    } else {
                        return true
                    }
                } else if end < p.fetchOffset && p.fetchOffset > part.log.logEndOffset {
                    return true
                }
            }
        }
        return bytes >= Int(request.minBytes)
    }

    func complete(timedOut: Bool) {
        if eventLoop.inEventLoop {
            onComplete()
        } else {
            eventLoop.execute(onComplete)
        }
    }
}

/// An acks=-1 produce waiting for its partitions' high watermarks to pass the appended data.
final class DelayedProduce: DelayedOperation, @unchecked Sendable {
    /// A partition the produce appended to: the offset the high watermark must pass, under the
    /// leadership that appended (a later leadership may hold other messages at that offset).
    struct Pending {
        var partition: TopicPartition
        var requiredOffset: Int64
        var leaderEpoch: Int32
    }
    let pending: [Pending]
    var results: [(topic: String, partitions: [ProduceResponse.PartitionResult])]
    let replicaManager: ReplicaManager
    let onComplete: (ProduceResponse) -> Void
    var keys: [TopicPartition] { pending.map(\.partition) }

    init(pending: [Pending], results: [(topic: String, partitions: [ProduceResponse.PartitionResult])],
         replicaManager: ReplicaManager, onComplete: @escaping (ProduceResponse) -> Void) {
        self.pending = pending
        self.results = results
        self.replicaManager = replicaManager
        self.onComplete = onComplete
    }

    func isSatisfied() -> Bool {
        pending.allSatisfy { w in
            guard let p = replicaManager.partition(w.partition), p.isLeader(inEpoch: w.leaderEpoch) else { return true }
            return p.highWatermark >= w.requiredOffset
        }
    }

    func complete(timedOut: Bool) {
        for w in pending {
            let err: ErrorCode
            if let p = replicaManager.partition(w.partition), p.isLeader(inEpoch: w.leaderEpoch) {
                if p.highWatermark < w.requiredOffset { err = .requestTimedOut }
                else if p.isr.count < p.log.config.minInsyncReplicas { err = .notEnoughReplicasAfterAppend }
                else { err = .none }
            } else {
                err = .notLeaderForPartition
            }
            if err != .none, let ti = results.firstIndex(where: { $0.topic == w.partition.topic }),
               let pi = results[ti].partitions.firstIndex(where: { $0.partition == w.partition.partition }) {
                results[ti].partitions[pi].error = err
            }
        }
        onComplete(ProduceResponse(topics: results))
    }
}
