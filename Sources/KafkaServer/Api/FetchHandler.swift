import Foundation
import KafkaLog
import KafkaProtocol
import NIOCore

/// Fetch (key 1, v0-v2): consumers read up to the high watermark, followers (replica id >= 0) to the
/// log end. Reads of cached pages (checked with mincore; the log's last bytes are taken to be
/// cached) run on the event loop; a request that reaches into pages that are not cached is read on
/// the log dir's I/O pool, which pulls those bytes into the page cache first, so the event loop's
/// sendfile does not wait for the disk.
/// Message sets go out as file regions (sendfile); a fetch with too few bytes parks in the
/// purgatory until `minBytes` arrive or `maxWaitMs` passes.
struct FetchHandler: RequestHandler {
    static let versions: ClosedRange<Int16> = 0...2
    let reader: FetchReader
    let io: LogDirIO

    func decode(_ body: inout ByteBuffer, version: Int16) throws -> FetchRequest {
        try FetchRequest.decode(from: &body)
    }

    func handle(_ request: FetchRequest, _ ctx: RequestContext) -> EventLoopFuture<ResponseAction> {
        let req = request.mergingDuplicates()
        guard FetchReader.responseOverhead(req) <= FetchReader.maxResponseBytes else {
            return ctx.eventLoop.makeSucceededFuture(.close(reason: "Fetch request names too many partitions for one response"))
        }
        if let coldLog = reader.firstColdLog(req) {
            let reader = self.reader
            return io.run(for: coldLog, on: ctx.eventLoop) { reader.readPartitions(req, warmingPageCache: true) }
                .flatMap { respondOrPark(req, $0, ctx) }
                .flatMapError { error in ctx.eventLoop.makeSucceededFuture(.close(reason: "broker is shutting down: \(error)")) }
        }
        return respondOrPark(req, reader.readPartitions(req), ctx)
    }

    private func respondOrPark(_ req: FetchRequest, _ reads: [FetchReader.PartitionRead], _ ctx: RequestContext) -> EventLoopFuture<ResponseAction> {
        let bytes = reads.reduce(0) { $0 + ($1.slice?.length ?? 0) }
        let anyError = reads.contains { $0.error != .none }
        let corr = FetchReader.ResponseHead(correlationId: ctx.header.correlationId, version: ctx.apiVersion)
        let allocator = ctx.buffers
        if req.maxWaitMs <= 0 || bytes >= Int(req.minBytes) || anyError || reads.isEmpty {
            return ctx.eventLoop.makeSucceededFuture(reader.response(corr, reads, allocator: allocator))
        }
        let promise = ctx.eventLoop.makePromise(of: ResponseAction.self)
        let (fetchReader, io, loop) = (reader, self.io, ctx.eventLoop)
        // Runs on this request's loop, whichever thread completed the wait (an append on another
        // loop or on an I/O pool, a high-watermark move, the timeout): the read happens where a
        // fresh fetch's read would (`firstColdLog`), on this loop or on the log dir's I/O pool.
        let op = DelayedFetch(request: req, reader: fetchReader, eventLoop: loop) {
            if let coldLog = fetchReader.firstColdLog(req) {
                io.run(for: coldLog, on: loop) { fetchReader.readPartitions(req, warmingPageCache: true) }
                    .whenComplete { result in
                        switch result {
                        case .success(let reads): promise.succeed(fetchReader.response(corr, reads, allocator: allocator))
                        case .failure(let error): promise.succeed(.close(reason: "broker is shutting down: \(error)"))
                        }
                    }
            } else {
                promise.succeed(fetchReader.response(corr, fetchReader.readPartitions(req), allocator: allocator))
            }
        }
        fetchReader.replicaManager.fetchPurgatory.tryCompleteElseWatch(op, timeoutMs: Int64(req.maxWaitMs), eventLoop: loop)
        return promise.futureResult
    }
}

/// Reads the partitions a fetch names and frames the response; shared by `FetchHandler` and
/// `DelayedFetch`.
struct FetchReader: Sendable {
    let replicaManager: ReplicaManager
    /// `metrics.port`: per-topic byte counters (nil: no metrics).
    let metrics: BrokerMetrics?

    struct PartitionRead {
        var tp: TopicPartition
        var error: ErrorCode
        var highWatermark: Int64
        var slice: LogReadSlice?
    }

    /// The largest fetch response this broker writes: its size field is an int32. Message sets
    /// that would push the response past it are answered empty (no error), so the client fetches
    /// them next time. `KAFKA_FETCH_RESPONSE_MAX_BYTES` lowers it (tests).
    static let maxResponseBytes: Int = {
        if let s = ProcessInfo.processInfo.environment["KAFKA_FETCH_RESPONSE_MAX_BYTES"], let v = Int(s), v > 0 {
            return min(v, Int(Int32.max))
        }
        return Int(Int32.max)
    }()

    /// Bytes of a fetch response besides the message sets (after the size field): correlation id,
    /// v1/v2's throttle time (counted for v0 too: 4 bytes of a 2 GiB bound), topic count, each
    /// topic's name and partition count, each partition's header.
    static func responseOverhead(_ req: FetchRequest) -> Int {
        var size = 4 + 4 + 4
        for t in req.topics { size += 2 + t.topic.utf8.count + 4 + 18 * t.partitions.count }
        return size
    }

    /// The log of the first partition whose read may miss the page cache (mincore), or nil when
    /// every read is cached.
    func firstColdLog(_ req: FetchRequest) -> Log? {
        for t in req.topics {
            for p in t.partitions {
                guard let part = replicaManager.partition(TopicPartition(t.topic, p.partition)) else { continue }
                let maxOffset: Int64? = req.replicaId >= 0 ? nil : part.highWatermark
                if part.log.readMayMissPageCache(from: p.fetchOffset, maxBytes: Int(p.maxBytes), upTo: maxOffset) { return part.log }
            }
        }
        return nil
    }

    /// Reads every requested partition (error codes as in 0.8.2) without sending anything yet.
    /// `req` must have its duplicates merged (`mergingDuplicates`). The message sets together stay
    /// within `maxResponseBytes` less the response's headers. With `warmingPageCache` (I/O pool
    /// only: it blocks), slices that are not all cached are read into the page cache first.
    func readPartitions(_ req: FetchRequest, warmingPageCache: Bool = false) -> [PartitionRead] {
        var out: [PartitionRead] = []
        out.reserveCapacity(req.topics.reduce(0) { $0 + $1.partitions.count })
        var budget = max(Self.maxResponseBytes - Self.responseOverhead(req), 0)
        for t in req.topics {
            for p in t.partitions {
                let tp = TopicPartition(t.topic, p.partition)
                guard let part = replicaManager.partition(tp) else {
                    out.append(PartitionRead(tp: tp, error: .unknownTopicOrPartition, highWatermark: -1))
                    continue
                }
                if req.replicaId != -2 && !part.isLeader {
                    out.append(PartitionRead(tp: tp, error: .notLeaderForPartition, highWatermark: -1))
                    continue
                }
                if req.replicaId >= 0 { replicaManager.recordFollowerFetch(part, replica: req.replicaId, offset: p.fetchOffset) }
                let hw = part.highWatermark
                let maxOffset: Int64? = req.replicaId >= 0 ? nil : hw
                let maxBytes = min(max(Int(p.maxBytes), 0), budget)
                if maxBytes == 0 && p.maxBytes > 0 {
                    // Over the response bound: an empty message set, fetched again next time.
                    out.append(PartitionRead(tp: tp, error: .none, highWatermark: hw, slice: nil))
                    continue
                }
                do {
                    var slice = try part.log.read(startOffset: p.fetchOffset, maxBytes: maxBytes, maxOffset: maxOffset)
                    if slice.length > maxBytes {
                        // Never more than asked for, whatever the log returns.
                        slice.length = maxBytes
                    }
                    if warmingPageCache, slice.length > 0, !slice.isInPageCache {
                        Self.warmPageCache(slice)
                    }
                    budget -= slice.length
                    out.append(PartitionRead(tp: tp, error: .none, highWatermark: hw, slice: slice))
                } catch {
                    out.append(PartitionRead(tp: tp, error: error.errorCode, highWatermark: -1))
                }
            }
        }
        return out
    }

    /// Pulls the slice's pages into the page cache, so the event loop's sendfile does not wait
    /// for the disk: the disk wait happens here, on an I/O pool thread. sendfile to /dev/null
    /// reads the pages in without copying them to user space (a cold 600 MB/s reader otherwise
    /// spent a pool thread's CPU on a pread copy it threw away); pread if that fails.
    static func warmPageCache(_ slice: LogReadSlice) {
        let fd = slice.fileDescriptor
        _ = posix_fadvise(fd, off_t(slice.position), off_t(slice.length), POSIX_FADV_WILLNEED)
        var done = 0
        if let sink = devNull {
            var offset = off_t(slice.position)
            while done < slice.length {
                let n = sendfile(sink, fd, &offset, slice.length - done)
                if n <= 0 { break }
                done += n
            }
            if done >= slice.length { return }
        }
        let chunk = 256 * 1024
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 4096)
        defer { scratch.deallocate() }
        while done < slice.length {
            let n = pread(fd, scratch, min(chunk, slice.length - done), off_t(slice.position) + off_t(done))
            if n <= 0 { break }
            done += n
        }
    }

    /// Opened once, never closed: the sink of `warmPageCache`.
    private static let devNull: Int32? = {
        let fd = open("/dev/null", O_WRONLY | O_CLOEXEC)
        return fd >= 0 ? fd : nil
    }()

    /// What the response frame needs from the request header: its correlation id, and its version
    /// (v1 and v2 write `throttle_time_ms`, always 0, before the topics).
    struct ResponseHead: Sendable {
        var correlationId: Int32
        var version: Int16
    }

    /// The response frame: headers in byte buffers, message sets as file regions (sendfile).
    /// `reads` come grouped by topic (as `readPartitions` returns them for a merged request).
    /// The regions borrow the segments' descriptors; the slices keep them open until written.
    func response(_ head: ResponseHead, _ reads: [PartitionRead], allocator: ByteBufferAllocator) -> ResponseAction {
        let throttleBytes = head.version >= 1 ? 4 : 0
        // Runs of the same topic, in order.
        var runs: [Range<Int>] = []
        var i = 0
        while i < reads.count {
            var j = i + 1
            while j < reads.count && reads[j].tp.topic == reads[i].tp.topic { j += 1 }
            runs.append(i..<j)
            i = j
        }
        var size = 4 + throttleBytes + 4
        for r in runs {
            size += 2 + reads[r.lowerBound].tp.topic.utf8.count + 4
            for p in reads[r] { size += 18 + (p.slice?.length ?? 0) }
        }
        guard size <= Int(Int32.max) else {
            // readPartitions keeps within the bound; should it ever not, close rather than trap.
            return .close(reason: "fetch response of \(size) bytes exceeds the int32 size field")
        }
        var parts: [IOData] = []
        var handles: [NIOFileHandle] = []
        var slices: [LogReadSlice] = []
        var buf = allocator.buffer(capacity: 64 + runs.count * 64)
        buf.writeKafkaInt32(Int32(size))
        buf.writeKafkaInt32(head.correlationId)
        if throttleBytes > 0 { buf.writeKafkaInt32(0) }
        buf.writeKafkaInt32(Int32(runs.count))
        for r in runs {
            buf.writeKafkaString(reads[r.lowerBound].tp.topic)
            buf.writeKafkaInt32(Int32(r.count))
            var meters = TopicMetersRef(metrics, reads[r.lowerBound].tp.topic)
            for p in reads[r] {
                let len = p.slice?.length ?? 0
                meters.fetched(error: p.error, bytes: len)
                FetchResponse.writePartitionHeader(into: &buf, partition: p.tp.partition, error: p.error, highWatermark: p.highWatermark, messageSetSize: Int32(len))
                if let s = p.slice, s.length > 0, s.fileDescriptor >= 0 {
                    parts.append(.byteBuffer(buf))
                    buf = allocator.buffer(capacity: 64)
                    // NIO's handle wraps the segment's own descriptor; it is given back (not
                    // closed) after the write, while `slices` keeps the segment open until then.
                    let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: s.fileDescriptor)
                    handles.append(handle)
                    slices.append(s)
                    parts.append(.fileRegion(FileRegion(fileHandle: handle, readerIndex: Int(s.position), endIndex: Int(s.position) + s.length)))
                }
            }
        }
        if buf.readableBytes > 0 { parts.append(.byteBuffer(buf)) }
        let owned = UncheckedBox((handles, slices))
        return .send(parts, written: {
            for h in owned.value.0 { _ = try? h.takeDescriptorOwnership() }
            withExtendedLifetime(owned.value.1) {}
        })
    }
}
