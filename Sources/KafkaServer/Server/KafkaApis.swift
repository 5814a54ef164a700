import Foundation
import KafkaCluster
import KafkaLog
import KafkaProtocol
import Logging
import NIOCore
import ZooKeeper

/// Turns each request into its response (Kafka 0.8.2 `KafkaApis`).
public final class KafkaApis: RequestProcessor, @unchecked Sendable {
    let config: BrokerConfig
    let replicaManager: ReplicaManager
    let metadataCache: MetadataCache
    let zk: KafkaZooKeeper
    let logger: Logger
    /// Set by the broker: applies controller requests arriving over the network.
    var onUpdateMetadata: (@Sendable (UpdateMetadataRequest) -> Void)?
    /// Set by the broker: runs before a LeaderAndIsr from the network is applied (loads the
    /// topics' config overrides, so logs are created with them).
    var beforeLeaderAndIsr: (@Sendable (LeaderAndIsrRequest) async -> Void)?
    /// Set by the broker: the controller's answer to a ControlledShutdown request.
    var onControlledShutdown: (@Sendable (Int32) async -> ControlledShutdownResponse)?
    private let allocator = ByteBufferAllocator()
    /// `metrics.port`: per-topic message and byte counters (nil: no metrics).
    let metrics: BrokerMetrics?

    init(config: BrokerConfig, replicaManager: ReplicaManager, metadataCache: MetadataCache, zk: KafkaZooKeeper, logger: Logger,
         metrics: BrokerMetrics? = nil) {
        self.metrics = metrics
        self.config = config
        self.replicaManager = replicaManager
        self.metadataCache = metadataCache
        self.zk = zk
        self.logger = logger
    }

    /// Highest version served per api key; anything else closes the connection as 0.8.2 does.
    static let maxVersion: [Int16: Int16] = [0: 0, 1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 7: 0, 8: 1, 9: 1, 10: 0]

    public func process(frame: ByteBuffer, connection: ConnectionInfo, eventLoop: EventLoop) -> EventLoopFuture<ResponseAction> {
        var buf = frame
        let header: RequestHeader
        do { header = try RequestHeader.decode(from: &buf) } catch {
            return eventLoop.makeSucceededFuture(.close(reason: "malformed request header: \(error)"))
        }
        guard let maxV = Self.maxVersion[header.apiKey], let key = APIKey(rawValue: header.apiKey) else {
            return eventLoop.makeSucceededFuture(.close(reason: "unknown api key \(header.apiKey) (version \(header.apiVersion), client \(header.clientId))"))
        }
        guard header.apiVersion >= 0 && header.apiVersion <= maxV else {
            return eventLoop.makeSucceededFuture(.close(reason: "unsupported version \(header.apiVersion) of api key \(header.apiKey) (client \(header.clientId))"))
        }
        let body = buf
        let corr = header.correlationId
        switch key {
        case .fetch:
            // Fetches may park in the purgatory; they complete on the event loop.
            do {
                var b = body
                let req = try FetchRequest.decode(from: &b)
                return handleFetch(req, correlationId: corr, eventLoop: eventLoop)
            } catch {
                return eventLoop.makeSucceededFuture(.close(reason: "malformed Fetch request: \(error)"))
            }
        case .produce:
            do {
                var b = body
                let req = try ProduceRequest.decode(from: &b)
                return handleProduce(req, correlationId: corr, eventLoop: eventLoop)
            } catch {
                return eventLoop.makeSucceededFuture(.close(reason: "malformed Produce request: \(error)"))
            }
        default:
            return eventLoop.makeFutureWithTask {
                do {
                    var b = body
                    return try await self.handle(key: key, version: header.apiVersion, correlationId: corr, body: &b)
                } catch let e as ProtocolError {
                    return .close(reason: "malformed \(key) request: \(e)")
                }
            }
        }
    }

    private func respond(_ corr: Int32, _ body: (inout ByteBuffer) -> Void) -> ResponseAction {
        .send(ResponseFramer.frame(correlationId: corr, allocator: allocator, body: body))
    }

    private func handle(key: APIKey, version: Int16, correlationId corr: Int32, body: inout ByteBuffer) async throws -> ResponseAction {
        switch key {
        case .metadata:
            let req = try MetadataRequest.decode(from: &body)
            let resp = await metadata(req)
            return respond(corr) { resp.encode(into: &$0) }
        case .offsets:
            let req = try OffsetsRequest.decode(from: &body)
            let resp = offsets(req)
            return respond(corr) { resp.encode(into: &$0) }
        case .leaderAndIsr:
            let req = try LeaderAndIsrRequest.decode(from: &body)
            await beforeLeaderAndIsr?(req)
            let resp = replicaManager.becomeLeaderOrFollower(req)
            return respond(corr) { resp.encode(into: &$0) }
        case .updateMetadata:
            let req = try UpdateMetadataRequest.decode(from: &body)
            let ok = metadataCache.update(req)
            onUpdateMetadata?(req)
            return respond(corr) { $0.writeKafkaInt16(ok ? ErrorCode.none.rawValue : ErrorCode.staleControllerEpoch.rawValue) }
        case .stopReplica:
            let req = try StopReplicaRequest.decode(from: &body)
            let resp = replicaManager.stopReplicas(req)
            return respond(corr) { resp.encode(into: &$0) }
        case .controlledShutdown:
            let req = try ControlledShutdownRequest.decode(from: &body)
            let resp = await onControlledShutdown?(req.brokerId) ?? ControlledShutdownResponse(error: .unknown, partitionsRemaining: [])
            return respond(corr) { resp.encode(into: &$0) }
        case .offsetCommit:
            let req = try OffsetCommitRequest.decode(from: &body, version: version)
            let resp = await offsetCommit(req)
            return respond(corr) { resp.encode(into: &$0) }
        case .offsetFetch:
            let req = try OffsetFetchRequest.decode(from: &body, version: version)
            let resp = await offsetFetch(req)
            return respond(corr) { resp.encode(into: &$0) }
        case .consumerMetadata:
            let req = try ConsumerMetadataRequest.decode(from: &body)
            _ = req
            // Offsets are kept in ZooKeeper by every broker, so any live broker coordinates.
            let me = BrokerEndpoint(id: config.brokerId, host: config.advertisedHost, port: Int32(config.advertisedPortValue))
            let resp = ConsumerMetadataResponse(error: .none, coordinator: me)
            return respond(corr) { resp.encode(into: &$0) }
        case .produce, .fetch:
            return .close(reason: "unreachable")
        }
    }

    // MARK: Metadata

    func metadata(_ req: MetadataRequest) async -> MetadataResponse {
        let names = req.topics.isEmpty ? metadataCache.topics : req.topics
        var topics: [MetadataResponse.TopicMetadata] = []
        for name in names {
            if let meta = metadataCache.topicMetadata(name) {
                topics.append(meta)
                continue
            }
            topics.append(.init(error: await autoCreate(name), topic: name, partitions: []))
        }
        return MetadataResponse(brokers: metadataCache.liveBrokers, topics: topics)
    }

    /// A topic unknown to the metadata cache: created when auto-creation is on (its answer is
    /// LeaderNotAvailable until the controller elected leaders), else UnknownTopicOrPartition.
    func autoCreate(_ topic: String) async -> ErrorCode {
        if TopicNames.validationError(topic) != nil { return .invalidTopic }
        if (try? await zk.topicExists(topic)) == true { return .leaderNotAvailable }
        guard config.autoCreateTopics else { return .unknownTopicOrPartition }
        do {
            let brokers = metadataCache.liveBrokers.map(\.id)
            let assignment = try ReplicaAssignment.assign(brokers: brokers.isEmpty ? [config.brokerId] : brokers,
                                                          partitions: config.numPartitions,
                                                          replicationFactor: config.defaultReplicationFactor)
            try await zk.createTopic(topic, assignment: assignment)
            logger.info("Auto creation of topic \(topic) with \(config.numPartitions) partitions and replication factor \(config.defaultReplicationFactor) is successful!")
            return .leaderNotAvailable
        } catch is KafkaZooKeeper.TopicExists {
            return .leaderNotAvailable
        } catch {
            logger.warning("Auto creation of topic \(topic) failed: \(error)")
            return .leaderNotAvailable
        }
    }

    // MARK: Produce

    func handleProduce(_ req: ProduceRequest, correlationId corr: Int32, eventLoop: EventLoop) -> EventLoopFuture<ResponseAction> {
        eventLoop.makeFutureWithTask {
            var results: [(topic: String, partitions: [ProduceResponse.PartitionResult])] = []
            var anyError = false
            var pending: [DelayedProduce.Pending] = []
            for t in req.topics {
                var parts: [ProduceResponse.PartitionResult] = []
                let internalTopic = t.topic == TopicNames.offsetsTopic
                if !internalTopic && !self.metadataCache.contains(t.topic) && self.replicaManager.partition(TopicPartition(t.topic, 0)) == nil {
                    _ = await self.autoCreate(t.topic)
                }
                var meters = TopicMetersRef(self.metrics, t.topic)
                for p in t.partitions {
                    let tp = TopicPartition(t.topic, p.partition)
                    if internalTopic {
                        parts.append(.init(partition: p.partition, error: .invalidTopic, offset: -1))
                        anyError = true
                        continue
                    }
                    let bytes = p.messageSet.getBytes(at: p.messageSet.readerIndex, length: p.messageSet.readableBytes) ?? []
                    switch self.replicaManager.appendToLeader(tp, messageSet: bytes, requiredAcks: req.requiredAcks) {
                    case .appended(let info, let leaderEpoch):
                        parts.append(.init(partition: p.partition, error: .none, offset: info.firstOffset))
                        meters.produced(error: .none, messages: info.messageCount, bytes: bytes.count)
                        if info.messageCount > 0 { pending.append(.init(partition: tp, requiredOffset: info.lastOffset + 1, leaderEpoch: leaderEpoch)) }
                    case .failed(let e):
                        parts.append(.init(partition: p.partition, error: e, offset: -1))
                        meters.produced(error: e)
                        anyError = true
                    }
                }
                results.append((t.topic, parts))
            }
            return (results, anyError, pending)
        }.flatMap { (results, anyError, pending) -> EventLoopFuture<ResponseAction> in
            if req.requiredAcks == 0 {
                // No response; a failure closes the connection so the client refreshes metadata.
                return eventLoop.makeSucceededFuture(anyError ? .close(reason: "acks=0 produce failed") : .noResponse)
            }
            if req.requiredAcks == 1 || pending.isEmpty {
                let resp = ProduceResponse(topics: results)
                return eventLoop.makeSucceededFuture(self.respond(corr) { resp.encode(into: &$0) })
            }
            // acks=-1 (or >1): wait until the ISR has the data (HW past the last offset).
            let promise = eventLoop.makePromise(of: ResponseAction.self)
            let op = DelayedProduce(pending: pending, results: results, replicaManager: self.replicaManager) { resp in
                promise.succeed(self.respond(corr) { resp.encode(into: &$0) })
            }
            self.replicaManager.fetchPurgatory.tryCompleteElseWatch(op, timeoutMs: Int64(req.timeoutMs), eventLoop: eventLoop)
            return promise.futureResult
        }
    }

    // MARK: Fetch

    struct PartitionRead {
        var tp: TopicPartition
        var error: ErrorCode
        var highWatermark: Int64
        var slice: LogReadSlice?
    }

    /// The largest fetch response this broker writes: its size field is an int32. Message sets
    /// that would push the response past it are answered empty (no error), so the client fetches
    /// them next time. `KAFKA_FETCH_RESPONSE_MAX_BYTES` lowers it (tests).
    static let maxFetchResponseBytes: Int = {
        if let s = ProcessInfo.processInfo.environment["KAFKA_FETCH_RESPONSE_MAX_BYTES"], let v = Int(s), v > 0 {
            return min(v, Int(Int32.max))
        }
        return Int(Int32.max)
    }()

    /// Bytes of a fetch response besides the message sets (after the size field): correlation id,
    /// topic count, each topic's name and partition count, each partition's header.
    static func fetchResponseOverhead(_ req: FetchRequest) -> Int {
        var size = 4 + 4
        for t in req.topics { size += 2 + t.topic.utf8.count + 4 + 18 * t.partitions.count }
        return size
    }

    /// Reads every requested partition (error codes as in 0.8.2) without sending anything yet.
    /// `req` must have its duplicates merged (`mergingDuplicates`). The message sets together stay
    /// within `maxFetchResponseBytes` less the response's headers.
    func readPartitions(_ req: FetchRequest) -> [PartitionRead] {
        var out: [PartitionRead] = []
        var budget = max(Self.maxFetchResponseBytes - Self.fetchResponseOverhead(req), 0)
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
                    budget -= slice.length
                    out.append(PartitionRead(tp: tp, error: .none, highWatermark: hw, slice: slice))
                } catch {
                    out.append(PartitionRead(tp: tp, error: error.errorCode, highWatermark: -1))
                }
            }
        }
        return out
    }

    func handleFetch(_ request: FetchRequest, correlationId corr: Int32, eventLoop: EventLoop) -> EventLoopFuture<ResponseAction> {
        let req = request.mergingDuplicates()
        guard Self.fetchResponseOverhead(req) <= Self.maxFetchResponseBytes else {
            return eventLoop.makeSucceededFuture(.close(reason: "Fetch request names too many partitions for one response"))
        }
        let reads = readPartitions(req)
        let bytes = reads.reduce(0) { $0 + ($1.slice?.length ?? 0) }
        let anyError = reads.contains { $0.error != .none }
        if req.maxWaitMs <= 0 || bytes >= Int(req.minBytes) || anyError || reads.isEmpty {
            return eventLoop.makeSucceededFuture(fetchResponse(corr, reads))
        }
        for r in reads { if let s = r.slice, s.fileDescriptor >= 0 { close(s.fileDescriptor) } }
        let promise = eventLoop.makePromise(of: ResponseAction.self)
        let op = DelayedFetch(request: req, apis: self) { reads in
            promise.succeed(self.fetchResponse(corr, reads))
        }
        replicaManager.fetchPurgatory.tryCompleteElseWatch(op, timeoutMs: Int64(req.maxWaitMs), eventLoop: eventLoop)
        return promise.futureResult
    }

    /// The response frame: headers in byte buffers, message sets as file regions (sendfile).
    /// `reads` come grouped by topic (as `readPartitions` returns them for a merged request).
    func fetchResponse(_ corr: Int32, _ reads: [PartitionRead]) -> ResponseAction {
        // Runs of the same topic, in order.
        var runs: [Range<Int>] = []
        var i = 0
        while i < reads.count {
            var j = i + 1
            while j < reads.count && reads[j].tp.topic == reads[i].tp.topic { j += 1 }
            runs.append(i..<j)
            i = j
        }
        var size = 4 + 4
        for r in runs {
            size += 2 + reads[r.lowerBound].tp.topic.utf8.count + 4
            for p in reads[r] { size += 18 + (p.slice?.length ?? 0) }
        }
        guard size <= Int(Int32.max) else {
            // readPartitions keeps within the bound; should it ever not, close rather than trap.
            for r in reads { if let s = r.slice, s.fileDescriptor >= 0 { close(s.fileDescriptor) } }
            return .close(reason: "fetch response of \(size) bytes exceeds the int32 size field")
        }
        var parts: [IOData] = []
        var handles: [NIOFileHandle] = []
        var buf = allocator.buffer(capacity: 64 + runs.count * 64)
        buf.writeKafkaInt32(Int32(size))
        buf.writeKafkaInt32(corr)
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
                    let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: s.fileDescriptor)
                    handles.append(handle)
                    parts.append(.fileRegion(FileRegion(fileHandle: handle, readerIndex: Int(s.position), endIndex: Int(s.position) + s.length)))
                } else if let s = p.slice, s.fileDescriptor >= 0 {
                    close(s.fileDescriptor)
                }
            }
        }
        if buf.readableBytes > 0 { parts.append(.byteBuffer(buf)) }
        let owned = UncheckedBox(handles)
        return .send(parts, written: { for h in owned.value { try? h.close() } })
    }

    // MARK: Offsets

    func offsets(_ req: OffsetsRequest) -> OffsetsResponse {
        var topics: [(topic: String, partitions: [OffsetsResponse.PartitionOffsets])] = []
        for t in req.topics {
            var parts: [OffsetsResponse.PartitionOffsets] = []
            for p in t.partitions {
                let tp = TopicPartition(t.topic, p.partition)
                guard let part = replicaManager.partition(tp) else {
                    parts.append(.init(partition: p.partition, error: .unknownTopicOrPartition, offsets: []))
                    continue
                }
                if req.replicaId != -2 && !part.isLeader {
                    parts.append(.init(partition: p.partition, error: .notLeaderForPartition, offsets: []))
                    continue
                }
                var all = part.log.offsetsBefore(timestamp: p.time, maxNumOffsets: max(Int(p.maxNumOffsets), 0))
                if req.replicaId == -1 {
                    let hw = part.highWatermark
                    if all.contains(where: { $0 > hw }) { all = [hw] + all.drop(while: { $0 > hw }) }
                }
                parts.append(.init(partition: p.partition, error: .none, offsets: Array(all.prefix(max(Int(p.maxNumOffsets), 0)))))
            }
            topics.append((t.topic, parts))
        }
        return OffsetsResponse(topics: topics)
    }

    // MARK: Consumer offsets (kept in ZooKeeper, as v0 does)

    /// Names that are safe as one ZooKeeper path component ([a-zA-Z0-9._-], not "." or "..").
    static func isLegalPathName(_ s: String) -> Bool { TopicNames.validationError(s) == nil }

    func offsetCommit(_ req: OffsetCommitRequest) async -> OffsetCommitResponse {
        var topics: [(topic: String, partitions: [(partition: Int32, error: ErrorCode)])] = []
        for t in req.topics {
            var parts: [(partition: Int32, error: ErrorCode)] = []
            for p in t.partitions {
                let tp = TopicPartition(t.topic, p.partition)
                // Group and topic become ZooKeeper path components: only Kafka's legal names.
                if !Self.isLegalPathName(req.group) { parts.append((p.partition, .unknown)); continue }
                if p.metadata.utf8.count > 4096 { parts.append((p.partition, .offsetMetadataTooLarge)); continue }
                guard metadataCache.partitionState(tp) != nil else { parts.append((p.partition, .unknownTopicOrPartition)); continue }
                do {
                    // v1 keeps its metadata string (0.8.2 stores v1 commits with it); v0, stored in
                    // ZooKeeper by 0.8.2 as a bare offset, drops any earlier v1 metadata.
                    if req.apiVersion >= 1 {
                        try await zk.commitConsumerOffset(group: req.group, tp, offset: p.offset, metadata: p.metadata)
                    } else {
                        try await zk.commitConsumerOffset(group: req.group, tp, offset: p.offset)
                        try? await zk.clearConsumerOffsetMetadata(group: req.group, tp)
                    }
                    parts.append((p.partition, .none))
                } catch {
                    parts.append((p.partition, .unknown))
                }
            }
            topics.append((t.topic, parts))
        }
        return OffsetCommitResponse(topics: topics)
    }

    func offsetFetch(_ req: OffsetFetchRequest) async -> OffsetFetchResponse {
        var topics: [(topic: String, partitions: [OffsetFetchResponse.PartitionOffset])] = []
        for t in req.topics {
            var parts: [OffsetFetchResponse.PartitionOffset] = []
            for p in t.partitions {
                let tp = TopicPartition(t.topic, p)
                guard Self.isLegalPathName(req.group), Self.isLegalPathName(t.topic), p >= 0 else {
                    parts.append(.init(partition: p, offset: -1, metadata: "", error: .unknown))
                    continue
                }
                // v0 reports a missing node (or a failed read) as UnknownTopicOrPartition; v1 as
                // "no offset". A node that is not a decimal reads as "no offset".
                let missing: ErrorCode = req.apiVersion == 0 ? .unknownTopicOrPartition : .none
                do {
                    if let off = try await zk.consumerOffset(group: req.group, tp) {
                        let metadata = req.apiVersion >= 1 ? ((try? await zk.consumerOffsetMetadata(group: req.group, tp, offset: off)) ?? "") : ""
                        parts.append(.init(partition: p, offset: off, metadata: metadata, error: .none))
                    } else {
                        parts.append(.init(partition: p, offset: -1, metadata: "", error: missing))
                    }
                } catch is ConsumerOffsetData.Malformed {
                    parts.append(.init(partition: p, offset: -1, metadata: "", error: .none))
                } catch {
                    parts.append(.init(partition: p, offset: -1, metadata: "", error: missing))
                }
            }
            topics.append((t.topic, parts))
        }
        return OffsetFetchResponse(topics: topics)
    }
}
