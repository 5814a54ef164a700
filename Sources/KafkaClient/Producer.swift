import Foundation
import KafkaProtocol
import Logging
import Synchronization

/// Kafka's murmur2 (the Java client's partitioner hash), for keyed partitioning.
public enum Murmur2 {
    public static func hash(_ data: [UInt8]) -> Int32 {
        let seed: UInt32 = 0x9747_b28c
        let m: UInt32 = 0x5bd1_e995
        let r: UInt32 = 24
        let length = data.count
        var h: UInt32 = seed ^ UInt32(truncatingIfNeeded: length)
        let length4 = length / 4
        for i in 0..<length4 {
            let i4 = i * 4
            var k = UInt32(data[i4]) | UInt32(data[i4 + 1]) << 8 | UInt32(data[i4 + 2]) << 16 | UInt32(data[i4 + 3]) << 24
            k = k &* m
            k ^= k >> r
            k = k &* m
            h = h &* m
            h ^= k
        }
        let rem = length % 4
        let base = length & ~3
        if rem == 3 { h ^= UInt32(data[base + 2]) << 16 }
        if rem >= 2 { h ^= UInt32(data[base + 1]) << 8 }
        if rem >= 1 {
            h ^= UInt32(data[base])
            h = h &* m
        }
        h ^= h >> 13
        h = h &* m
        h ^= h >> 15
        return Int32(bitPattern: h)
    }

    /// Partition for a key: positive murmur2 modulo the partition count.
    public static func partition(for key: [UInt8], count: Int) -> Int32 {
        Int32(Int(hash(key) & 0x7fff_ffff) % max(count, 1))
    }
}

/// Leaders and partitions learnt from Metadata requests.
final class ClusterMetadata: @unchecked Sendable {
    let bootstrap: [(host: String, port: Int)]
    let clientId: String
    let logger: Logger
    private struct State {
        var brokers: [Int32: BrokerEndpoint] = [:]
        var topics: [String: MetadataResponse.TopicMetadata] = [:]
        var connections: [String: BrokerConnection] = [:]
    }
    private let state = Mutex(State())

    init(bootstrap: [(host: String, port: Int)], clientId: String, logger: Logger) {
        self.bootstrap = bootstrap
        self.clientId = clientId
        self.logger = logger
    }

    func connection(host: String, port: Int) async throws -> BrokerConnection {
        let key = "\(host):\(port)"
        if let c = state.withLock({ st in st.connections[key] }) { return c }
        let c = try await BrokerConnection.connect(host: host, port: port, clientId: clientId)
        state.withLock { st in st.connections[key] = c }
        return c
    }

    func drop(_ c: BrokerConnection) async {
        state.withLock { st in _ = st.connections.removeValue(forKey: "\(c.host):\(c.port)") }
        await c.close()
    }

    func leaderConnection(_ tp: TopicPartition) async throws -> BrokerConnection? {
        let leader: BrokerEndpoint? = state.withLock { st in
            guard let t = st.topics[tp.topic], let p = t.partitions.first(where: { $0.partition == tp.partition }), p.leader >= 0 else { return nil }
            return st.brokers[p.leader]
        }
        guard let leader else { return nil }
        return try await connection(host: leader.host, port: Int(leader.port))
    }

    func partitions(_ topic: String) -> [MetadataResponse.PartitionMetadata]? {
        state.withLock { st in st.topics[topic]?.partitions }
    }

    /// Asks the bootstrap brokers (in order) for metadata of `names`.
    func refresh(_ names: [String]) async throws {
        var lastError: Error = KafkaClientError("no broker in the list answered")
        for b in bootstrap {
            do {
                let conn = try await connection(host: b.host, port: b.port)
                let resp = try await conn.metadata(names)
                state.withLock { st in
                    for br in resp.brokers { st.brokers[br.id] = br }
                    for t in resp.topics { st.topics[t.topic] = t }
                }
                return
            } catch {
                lastError = error
                if let c = state.withLock({ st in st.connections["\(b.host):\(b.port)"] }) { await drop(c) }
            }
        }
        throw lastError
    }

    func topicError(_ topic: String) -> ErrorCode? { state.withLock { st in st.topics[topic]?.error } }

    func closeAll() async {
        let all = state.withLock { st -> [BrokerConnection] in
            let a = Array(st.connections.values)
            st.connections.removeAll()
            return a
        }
        for c in all { await c.close() }
    }
}

public struct ProducerConfig: Sendable {
    public var brokerList: String
    public var clientId = "swift-producer"
    public var requiredAcks: Int16 = 1
    public var requestTimeoutMs: Int32 = 10000
    public var codec: CompressionCodec = .none
    public var retries = 3
    public var retryBackoffMs = 100
    public init(brokerList: String) { self.brokerList = brokerList }
}

/// A synchronous producer: each `send` is one Produce request per partition, retried with a
/// metadata refresh when the leader is unknown or has moved.
public final class Producer: @unchecked Sendable {
    public let config: ProducerConfig
    let metadata: ClusterMetadata
    private var stickyPartition: [String: Int32] = [:]

    public init(config: ProducerConfig, logger: Logger = Logger(label: "kafka.producer")) throws {
        self.config = config
        metadata = ClusterMetadata(bootstrap: try BrokerList.parse(config.brokerList), clientId: config.clientId, logger: logger)
    }

    /// Waits until the topic has leaders (auto-created topics answer LeaderNotAvailable first).
    func partitions(_ topic: String) async throws -> [MetadataResponse.PartitionMetadata] {
        var attempt = 0
        while true {
            if let ps = metadata.partitions(topic), !ps.isEmpty, ps.allSatisfy({ $0.leader >= 0 }) { return ps }
            try await metadata.refresh([topic])
            if let ps = metadata.partitions(topic), !ps.isEmpty, ps.allSatisfy({ $0.leader >= 0 }) { return ps }
            attempt += 1
            if attempt > 50 {
                let err = metadata.topicError(topic).map { "\($0)" } ?? "no partitions"
                throw KafkaClientError("no leader for topic \(topic) after \(attempt) metadata requests (\(err))")
            }
            try await Task.sleep(nanoseconds: UInt64(config.retryBackoffMs) * 1_000_000)
        }
    }

    /// Sends messages to `topic`; keyed messages go to murmur2(key) % partitions, keyless
    /// ones to a random partition kept for the life of the producer. Returns the first offset
    /// assigned per partition (-1 with acks=0).
    @discardableResult
    public func send(topic: String, messages: [(key: [UInt8]?, value: [UInt8]?)], partition fixed: Int32? = nil) async throws -> [Int32: Int64] {
        let parts = try await partitions(topic)
        var byPartition: [Int32: [(key: [UInt8]?, value: [UInt8]?)]] = [:]
        var order: [Int32] = []
        for m in messages {
            let p: Int32
            if let fixed { p = fixed } else if let k = m.key { p = parts[Int(Murmur2.partition(for: k, count: parts.count))].partition } else {
                if let s = stickyPartition[topic] { p = s } else {
                    p = parts.randomElement()!.partition
                    stickyPartition[topic] = p
                }
            }
            if byPartition[p] == nil { order.append(p) }
            byPartition[p, default: []].append(m)
        }
        var result: [Int32: Int64] = [:]
        for p in order {
            result[p] = try await sendToPartition(TopicPartition(topic, p), byPartition[p]!)
        }
        return result
    }

    private func sendToPartition(_ tp: TopicPartition, _ msgs: [(key: [UInt8]?, value: [UInt8]?)]) async throws -> Int64 {
        let set = try MessageSetBuilder.build(msgs, codec: config.codec)
        let buf = ByteBufferAllocatorShim.buffer(set)
        let req = ProduceRequest(requiredAcks: config.requiredAcks, timeoutMs: config.requestTimeoutMs,
                                 topics: [.init(topic: tp.topic, partitions: [.init(partition: tp.partition, messageSet: buf)])])
        var attempt = 0
        while true {
            var retriable: Error
            do {
                guard let conn = try await metadata.leaderConnection(tp) else {
                    throw KafkaClientError("no leader known for \(tp)")
                }
                do {
                    guard let resp = try await conn.produce(req) else { return -1 }
                    guard let r = resp.topics.first?.partitions.first else { throw KafkaClientError("empty produce response for \(tp)") }
                    switch r.error {
                    case .none: return r.offset
                    case .leaderNotAvailable, .notLeaderForPartition, .unknownTopicOrPartition, .requestTimedOut, .notEnoughReplicas:
                        retriable = KafkaClientError("produce to \(tp) failed: \(r.error)")
                    default:
                        throw KafkaClientError("produce to \(tp) failed: \(r.error) (code \(r.error.rawValue))")
                    }
                } catch let e as KafkaClientError where e.description.hasPrefix("produce to") && !e.description.contains("Leader") && !e.description.contains("Unknown") {
                    throw e
                } catch {
                    await metadata.drop(conn)
                    retriable = error
                }
            } catch let e as KafkaClientError where e.description.hasPrefix("no leader known") {
                retriable = e
            }
            attempt += 1
            if attempt > config.retries { throw retriable }
            try await Task.sleep(nanoseconds: UInt64(config.retryBackoffMs) * 1_000_000)
            try? await metadata.refresh([tp.topic])
        }
    }

    /// Asks the bootstrap brokers for metadata (of no topic, so nothing is auto-created), so that
    /// a wrong broker list fails at start-up instead of at the first message. Names every broker
    /// that failed: `cannot connect to broker localhost:9999: connection refused`.
    public func checkBrokers() async throws {
        var failures: [String] = []
        for b in metadata.bootstrap {
            do {
                let conn = try await metadata.connection(host: b.host, port: b.port)
                do {
                    _ = try await conn.metadata([])
                    return
                } catch {
                    await metadata.drop(conn)
                    failures.append("broker \(b.host):\(b.port) did not answer a Metadata request: \(error)")
                }
            } catch {
                failures.append("\(error)")
            }
        }
        throw KafkaClientError(failures.isEmpty ? "no broker in the broker list" : failures.joined(separator: "\n"))
    }

    public func close() async { await metadata.closeAll() }
}

import NIOCore
enum ByteBufferAllocatorShim {
    static func buffer(_ bytes: [UInt8]) -> ByteBuffer {
        var b = ByteBufferAllocator().buffer(capacity: bytes.count)
        b.writeBytes(bytes)
        return b
    }
}
