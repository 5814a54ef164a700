import Foundation
import KafkaProtocol
import NIOCore

/// A message as a consumer sees it.
public struct ConsumedMessage: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var key: [UInt8]?
    public var value: [UInt8]?
}

/// A fetched message (or compressed message set) that cannot be read: bad CRC, undecodable
/// compressed payload, malformed sizes. `offset` is the offset of the top-level entry (for a
/// compressed wrapper: its last inner offset). Kafka 0.8.2's consumers stop on it (InvalidMessageException).
public struct CorruptMessageError: Error, CustomStringConvertible, Sendable {
    public var topicPartition: TopicPartition
    public var offset: Int64
    public var fetchOffset: Int64
    public var reason: String

    public var description: String {
        "corrupt message in topic \(topicPartition.topic) partition \(topicPartition.partition) at offset \(offset) "
            + "(fetched from offset \(fetchOffset)): \(reason)"
    }
}

/// Fetches from one partition's leader (Kafka's `SimpleConsumer`).
public final class SimpleConsumer: @unchecked Sendable {
    public let connection: BrokerConnection
    public init(connection: BrokerConnection) { self.connection = connection }

    public static func connect(host: String, port: Int, clientId: String) async throws -> SimpleConsumer {
        SimpleConsumer(connection: try await BrokerConnection.connect(host: host, port: port, clientId: clientId))
    }

    public struct FetchResult: Sendable {
        public var error: ErrorCode
        public var highWatermark: Int64
        public var messages: [ConsumedMessage]
        /// Where the next fetch starts: after the last complete top-level entry.
        public var nextOffset: Int64
        /// True when bytes came back but not one whole message fit in maxBytes.
        public var messageTooLarge: Bool
    }

    public func fetch(_ tp: TopicPartition, offset: Int64, maxBytes: Int32 = 1 << 20, maxWaitMs: Int32 = 100, minBytes: Int32 = 1, replicaId: Int32 = -1) async throws -> FetchResult {
        let req = FetchRequest(replicaId: replicaId, maxWaitMs: maxWaitMs, minBytes: minBytes,
                               topics: [.init(topic: tp.topic, partitions: [.init(partition: tp.partition, fetchOffset: offset, maxBytes: maxBytes)])])
        let resp = try await connection.fetch(req)
        guard let p = resp.topics.first(where: { $0.topic == tp.topic })?.partitions.first(where: { $0.partition == tp.partition }) else {
            throw KafkaClientError("fetch response lacks \(tp)")
        }
        return try Self.decode(tp, offset: offset, p)
    }

    /// One partition of a fetch response as messages at or after `offset`; a corrupt entry after
    /// good ones ends the result before it, a corrupt first entry throws `CorruptMessageError`.
    public static func decode(_ tp: TopicPartition, offset: Int64, _ p: FetchResponse.PartitionData) throws -> FetchResult {
        guard p.error == .none else { return FetchResult(error: p.error, highWatermark: p.highWatermark, messages: [], nextOffset: offset, messageTooLarge: false) }
        let (msgs, next, complete) = try p.messageSet.withUnsafeReadableBytes { raw in try decodeSet(raw, tp, from: offset) }
        return FetchResult(error: .none, highWatermark: p.highWatermark, messages: msgs, nextOffset: next,
                           messageTooLarge: complete == 0 && p.messageSet.readableBytes > 0)
    }

    /// One pass over a fetched message set, straight from the response buffer: each complete
    /// top-level entry has its CRC checked; plain entries become messages directly, compressed
    /// wrappers are decompressed (their inner CRCs checked too). The first corrupt entry ends the
    /// result (it throws when nothing came before it). Returns the messages at or after `offset`,
    /// the next fetch offset and the number of complete entries.
    static func decodeSet(_ p: UnsafeRawBufferPointer, _ tp: TopicPartition, from offset: Int64) throws -> ([ConsumedMessage], Int64, Int) {
        var msgs: [ConsumedMessage] = []
        msgs.reserveCapacity(min(p.count / 40, 65536))
        var pos = 0
        var next = offset
        var complete = 0
        func corrupt(_ entryOffset: Int64, _ reason: String) throws {
            if complete == 0 { throw CorruptMessageError(topicPartition: tp, offset: entryOffset, fetchOffset: offset, reason: reason) }
        }
        func be64(_ at: Int) -> Int64 { Int64(bigEndian: p.loadUnaligned(fromByteOffset: at, as: Int64.self)) }
        func be32(_ at: Int) -> Int32 { Int32(bigEndian: p.loadUnaligned(fromByteOffset: at, as: Int32.self)) }
        while p.count - pos >= 12 {
            let entryOffset = be64(pos)
            let size = Int(be32(pos + 8))
            if size < 14 {
                try corrupt(entryOffset, "\(MessageSetError.messageTooSmall(position: pos, size: size))")
                break
            }
            if p.count - pos - 12 < size { break }
            let entry = UnsafeRawBufferPointer(rebasing: p[pos..<(pos + 12 + size)])
            let stored = UInt32(bigEndian: entry.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
            guard stored == CRC32.checksum(UnsafeRawBufferPointer(rebasing: entry[16...])) else {
                try corrupt(entryOffset, "message at offset \(entryOffset) has a bad CRC")
                break
            }
            let attributes = entry[17]
            if let codec = CompressionCodec(attributes: attributes), codec != .none {
                let inner: [DecodedMessage]
                do { inner = try MessageSetDecoder.decode(entry, deep: true) } catch {
                    try corrupt(entryOffset, "\(error)")
                    break
                }
                if let bad = inner.first(where: { !$0.crcValid }) {
                    try corrupt(entryOffset, "message at offset \(bad.offset) has a bad CRC")
                    break
                }
                for d in inner where d.offset >= offset {
                    msgs.append(ConsumedMessage(topic: tp.topic, partition: tp.partition, offset: d.offset, key: d.key, value: d.value))
                }
            } else {
                let kv: (key: Range<Int>?, value: Range<Int>?)
                do { kv = try MessageParsing.keyValueRangesPublic(entry, size: size) } catch {
                    try corrupt(entryOffset, "\(error)")
                    break
                }
                if entryOffset >= offset {
                    msgs.append(ConsumedMessage(topic: tp.topic, partition: tp.partition, offset: entryOffset,
                                                key: kv.key.map { Array(UnsafeRawBufferPointer(rebasing: entry[$0])) },
                                                value: kv.value.map { Array(UnsafeRawBufferPointer(rebasing: entry[$0])) }))
                }
            }
            complete += 1
            next = entryOffset + 1
            pos += 12 + size
        }
        return (msgs, max(next, offset), complete)
    }

    /// Offsets request for one partition: time -1 latest, -2 earliest.
    public func offsetBefore(_ tp: TopicPartition, time: Int64) async throws -> Int64 {
        let resp = try await connection.offsets(OffsetsRequest(replicaId: -1, topics: [(tp.topic, [.init(partition: tp.partition, time: time, maxNumOffsets: 1)])]))
        guard let p = resp.topics.first?.partitions.first else { throw KafkaClientError("empty offsets response for \(tp)") }
        guard p.error == .none else { throw KafkaClientError("offsets request for \(tp) failed: \(p.error)") }
        return p.offsets.first ?? 0
    }

    public func close() async { await connection.close() }
}
