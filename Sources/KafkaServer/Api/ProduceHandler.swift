import KafkaCluster
import KafkaLog
import KafkaProtocol
import NIOCore

/// Produce (key 0, v0-v2; v1/v2 differ only in the response, `ProduceResponse.version`): appends on the partitions' log-dir I/O pools; acks=1 answers after the
/// append, acks=-1 parks in the purgatory until the ISR has the data, acks=0 answers nothing.
struct ProduceHandler: RequestHandler {
    static let versions: ClosedRange<Int16> = 0...2
    let replicaManager: ReplicaManager
    let metadataCache: MetadataCache
    let autoCreator: TopicAutoCreator
    let io: LogDirIO
    /// `metrics.port`: per-topic message and byte counters (nil: no metrics).
    let metrics: BrokerMetrics?

    func decode(_ body: inout ByteBuffer, version: Int16) throws -> ProduceRequest {
        try ProduceRequest.decode(from: &body)
    }

    func handle(_ req: ProduceRequest, _ ctx: RequestContext) -> EventLoopFuture<ResponseAction> {
        // Topics neither in the metadata cache nor hosted here may need creating (ZooKeeper).
        let unknown = req.topics.map(\.topic).filter { topic in
            topic != TopicNames.offsetsTopic && !metadataCache.contains(topic)
                && replicaManager.partition(TopicPartition(topic, 0)) == nil
        }
        if unknown.isEmpty { return append(req, ctx) }
        let creator = autoCreator
        return ctx.eventLoop.makeFutureWithTask {
            for topic in unknown { _ = await creator.autoCreate(topic) }
        }.flatMap { append(req, ctx) }
    }

    /// One partition's append, filled in by an I/O pool thread.
    private struct Slot: Sendable {
        var topicIndex: Int
        var partitionIndex: Int
        var partition: Partition
        var messageSet: ByteBuffer
        var result: Partition.LeaderAppendResult = .failed(.unknown)
    }

    /// A request whose message sets together are at most this many bytes, to logs that do not
    /// fsync on append (`flush.messages` unset), is appended on the event loop: a pwrite into
    /// the page cache costs less than the two thread hops to an I/O pool and back, which
    /// dominate the latency of many small requests (BENCHMARKS.md, issue 8). Anything larger,
    /// or any append that may fsync, runs on the log dir's I/O pool.
    static let inlineAppendMaxBytes = 64 * 1024

    private static func appendAll(_ slots: inout [Slot], _ rm: ReplicaManager, acks: Int16) {
        for i in slots.indices {
            // Offsets are written into the request's own bytes, not a copy of them (a copy of
            // every produced set was 8 % of the broker's CPU). Sound although the frame's storage
            // may be shared (slices of the request, the connection's received bytes): nothing
            // reads a produced set's bytes after its append, and the append is its only writer.
            slots[i].result = slots[i].messageSet.withUnsafeReadableBytes { set in
                rm.appendToLeader(slots[i].partition, messageSet: UnsafeMutableRawBufferPointer(mutating: set), requiredAcks: acks)
            }
        }
    }

    private func append(_ req: ProduceRequest, _ ctx: RequestContext) -> EventLoopFuture<ResponseAction> {
        var results: [(topic: String, partitions: [ProduceResponse.PartitionResult])] = []
        results.reserveCapacity(req.topics.count)
        var anyError = false
        var slots: [Slot] = []
        var bytes = 0
        var mayFsync = false
        for (ti, t) in req.topics.enumerated() {
            results.append((t.topic, []))
            for p in t.partitions {
                let tp = TopicPartition(t.topic, p.partition)
                guard t.topic != TopicNames.offsetsTopic, let part = replicaManager.partition(tp) else {
                    results[ti].partitions.append(.init(partition: p.partition, error: t.topic == TopicNames.offsetsTopic ? .invalidTopic : .unknownTopicOrPartition, offset: -1))
                    anyError = true
                    continue
                }
                // Magic-1 sets (clients that took this broker for 0.10+ through ApiVersions) are
                // stored in 0.8's format (MessageSetDowngrade).
                let set = MessageSetDowngrade.downgradeIfNeeded(p.messageSet)
                slots.append(Slot(topicIndex: ti, partitionIndex: results[ti].partitions.count, partition: part, messageSet: set))
                results[ti].partitions.append(.init(partition: p.partition, error: .none, offset: -1))
                bytes += set.readableBytes
                if part.log.config.flushIntervalMessages != .max { mayFsync = true }
            }
        }
        let rm = replicaManager
        let acks = req.requiredAcks
        if !mayFsync && bytes <= Self.inlineAppendMaxBytes {
            Self.appendAll(&slots, rm, acks: acks)
            return finish(req, ctx, results: results, refused: anyError, appended: slots)
        }
        // Grouped by log dir: one hop to each dir's pool.
        var batches: [ObjectIdentifier: (log: Log, slots: [Slot])] = [:]
        for slot in slots {
            let dir = ObjectIdentifier(io.pool(for: slot.partition.log))
            batches[dir, default: (slot.partition.log, [])].slots.append(slot)
        }
        let appended: [EventLoopFuture<[Slot]>] = batches.values.map { batch in
            io.run(for: batch.log, on: ctx.eventLoop) { () -> [Slot] in
                var slots = batch.slots
                Self.appendAll(&slots, rm, acks: acks)
                return slots
            }
        }
        let before = results
        let refused = anyError
        return EventLoopFuture.whenAllSucceed(appended, on: ctx.eventLoop).flatMap { done in
            finish(req, ctx, results: before, refused: refused, appended: Array(done.joined()))
        }.flatMapError { error in
            // The I/O pools stopped (broker shutting down).
            ctx.eventLoop.makeSucceededFuture(.close(reason: "broker is shutting down: \(error)"))
        }
    }

    /// Fills in the append results and answers (or parks an acks=-1 produce).
    private func finish(_ req: ProduceRequest, _ ctx: RequestContext, results before: [(topic: String, partitions: [ProduceResponse.PartitionResult])],
                        refused: Bool, appended: [Slot]) -> EventLoopFuture<ResponseAction> {
        var results = before
        var anyError = refused
        var pending: [DelayedProduce.Pending] = []
        if refused, metrics != nil {
            for t in results where t.partitions.contains(where: { $0.error != .none }) {
                // Refused before any append (unknown partition or internal topic).
                var meters = TopicMetersRef(metrics, t.topic)
                for p in t.partitions where p.error != .none { meters.produced(error: p.error) }
            }
        }
        for slot in appended {
            let tp = slot.partition.topicPartition
            let pi = slot.partitionIndex
            switch slot.result {
            case .appended(let info, let leaderEpoch):
                if metrics != nil {
                    var meters = TopicMetersRef(metrics, tp.topic)
                    meters.produced(error: .none, messages: info.messageCount, bytes: slot.messageSet.readableBytes)
                }
                results[slot.topicIndex].partitions[pi].offset = info.firstOffset
                if info.messageCount > 0 { pending.append(.init(partition: tp, requiredOffset: info.lastOffset + 1, leaderEpoch: leaderEpoch)) }
            case .failed(let e):
                if metrics != nil {
                    var meters = TopicMetersRef(metrics, tp.topic)
                    meters.produced(error: e)
                }
                results[slot.topicIndex].partitions[pi].error = e
                anyError = true
            }
        }
        return respond(req, ctx, results: results, anyError: anyError, pending: pending)
    }

    private func respond(_ req: ProduceRequest, _ ctx: RequestContext, results: [(topic: String, partitions: [ProduceResponse.PartitionResult])],
                         anyError: Bool, pending: [DelayedProduce.Pending]) -> EventLoopFuture<ResponseAction> {
        if req.requiredAcks == 0 {
            // No response; a failure closes the connection so the client refreshes metadata.
            return ctx.eventLoop.makeSucceededFuture(anyError ? .close(reason: "acks=0 produce failed") : .noResponse)
        }
        if req.requiredAcks == 1 || pending.isEmpty {
            return ctx.answer(ProduceResponse(topics: results, version: ctx.apiVersion))
        }
        // acks=-1 (or >1): wait until the ISR has the data (HW past the last offset).
        let promise = ctx.eventLoop.makePromise(of: ResponseAction.self)
        let version = ctx.apiVersion
        let op = DelayedProduce(pending: pending, results: results, replicaManager: replicaManager) { resp in
            var resp = resp
            resp.version = version
            promise.succeed(ctx.respond(resp))
        }
        replicaManager.fetchPurgatory.tryCompleteElseWatch(op, timeoutMs: Int64(req.timeoutMs), eventLoop: ctx.eventLoop)
        return promise.futureResult
    }
}
