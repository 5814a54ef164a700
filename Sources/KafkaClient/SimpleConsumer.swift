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
        guard p.error == .none else { return FetchResult(error: p.error, highWatermark: p.highWatermark, messages: [], nextOffset: offset, messageTooLarge: false) }
        let bytes = p.messageSet.getBytes(at: p.messageSet.readerIndex, length: p.messageSet.readableBytes) ?? []
        var next = offset
        let entries: [ShallowEntry]
        do { entries = try MessageSetDecoder.shallowEntries(bytes) } catch {
            throw CorruptMessageError(topicPartition: tp, offset: offset, fetchOffset: offset, reason: "\(error)")
        }
        if let last = entries.last { next = last.offset + 1 }
        var msgs: [ConsumedMessage] = []
        do {
            msgs = try Self.messages(MessageSetDecoder.decode(bytes, deep: true), tp, from: offset)
        } catch {
            // Something is corrupt: deliver the entries before it; fail once it is the first one.
            msgs = []
            next = offset
            for e in entries {
                do {
                    msgs += try Self.messages(MessageSetDecoder.decode(Array(bytes[e.position..<(e.position + 12 + e.size)]),
                                                                       deep: true), tp, from: offset)
                } catch {
                    if next > offset { break }
                    throw CorruptMessageError(topicPartition: tp, offset: e.offset, fetchOffset: offset, reason: "\(error)")
                }
                next = e.offset + 1
            }
        }
        return FetchResult(error: .none, highWatermark: p.highWatermark, messages: msgs, nextOffset: next,
                           messageTooLarge: entries.isEmpty && !bytes.isEmpty)
    }

    /// The messages at or after `offset`; a bad CRC is an error.
    private static func messages(_ decoded: [DecodedMessage], _ tp: TopicPartition, from offset: Int64) throws -> [ConsumedMessage] {
        var msgs: [ConsumedMessage] = []
        msgs.reserveCapacity(decoded.count)
        for d in decoded where d.offset >= offset {
            guard d.crcValid else { throw KafkaClientError("message at offset \(d.offset) has a bad CRC") }
            msgs.append(ConsumedMessage(topic: tp.topic, partition: tp.partition, offset: d.offset, key: d.key, value: d.value))
        }
        return msgs
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
