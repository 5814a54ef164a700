import ArgumentParser
import Foundation
import KafkaClient
import KafkaProtocol
import NIOCore

/// kafka-replica-verification.sh (0.8.2 `kafka.tools.ReplicaVerificationTool`): fetches every
/// replica of the selected partitions as the debugging consumer (replica id -2), compares the
/// replicas message by message (offset and checksum) up to each replica's high watermark, and
/// every `--report-interval-ms` prints the largest lag behind the high watermark. Runs until
/// interrupted; exits 1 when two replicas hold different offsets at the same position.
public struct ReplicaVerificationCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "kafka-replica-verification.sh",
        abstract: "Validate that all replicas for a set of topics have the same data.",
        discussion: """
        Example:
          bin/kafka-replica-verification.sh --broker-list localhost:9092 \\
              --topic-white-list 'replicated.*' --report-interval-ms 5000
        Prints "<time>: max lag is N for partition [t,p] at offset O among K paritions"
        (0.8.2's wording), and a line for every offset or checksum mismatch.
        """)

    @Option(name: .customLong("broker-list"), help: ArgumentHelp("REQUIRED: The list of hostname and port of the server to connect to.", valueName: "hostname:port,...,hostname:port"))
    var brokerList: String?
    @Option(name: .customLong("fetch-size"), help: ArgumentHelp("The fetch size of each request.", valueName: "bytes"))
    var fetchSize: Int32 = 1024 * 1024
    @Option(name: .customLong("max-wait-ms"), help: ArgumentHelp("The max amount of time each fetch request waits.", valueName: "ms"))
    var maxWaitMs: Int32 = 1000
    @Option(name: .customLong("topic-white-list"), help: ArgumentHelp("White list of topics to verify replica consistency. Defaults to all topics.", valueName: "Java regex (String)"))
    var topicWhiteList: String = ".*"
    @Option(name: .customLong("time"), parsing: .unconditional, help: ArgumentHelp("Timestamp for getting the initial offsets.", valueName: "timestamp/-1(latest)/-2(earliest)"))
    var time: Int64 = -1
    @Option(name: .customLong("report-interval-ms"), help: ArgumentHelp("The reporting interval.", valueName: "ms"))
    var reportIntervalMs: Int64 = 30_000

    public init() {}

    static let clientId = "replicaVerificationTool"

    static func now() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd HH:mm:ss,SSS"
        return f.string(from: Date())
    }

    /// One top-level (shallow) message of a fetched set.
    struct Entry { var offset: Int64; var checksum: UInt32 }

    /// Shallow iteration over a message set: offset and stored CRC of each complete entry.
    static func entries(_ buffer: ByteBuffer) -> [Entry] {
        var out: [Entry] = []
        var b = buffer
        while b.readableBytes >= 12 {
            guard let offset = b.getInteger(at: b.readerIndex, as: Int64.self),
                  let size = b.getInteger(at: b.readerIndex + 8, as: Int32.self), size >= 4,
                  b.readableBytes >= 12 + Int(size),
                  let crc = b.getInteger(at: b.readerIndex + 12, as: UInt32.self) else { break }
            out.append(Entry(offset: offset, checksum: crc))
            b.moveReaderIndex(forwardBy: 12 + Int(size))
        }
        return out
    }

    public func run() async throws {
        guard let brokerList else { throw ValidationError("Missing required argument \"[broker-list]\"") }
        let filter: TopicFilter
        do { filter = try TopicFilter(whitelist: topicWhiteList) } catch {
            throw ToolError("--topic-white-list \(topicWhiteList) is an invalid regex.")
        }
        guard fetchSize > 0 else { throw ToolError("--fetch-size must be positive, got \(fetchSize)") }
        guard maxWaitMs >= 0 else { throw ToolError("--max-wait-ms must not be negative, got \(maxWaitMs)") }
        guard reportIntervalMs >= 0 else { throw ToolError("--report-interval-ms must not be negative, got \(reportIntervalMs)") }
        let seeds: [(host: String, port: Int)]
        do { seeds = try BrokerList.parse(brokerList) } catch { throw ToolError("--broker-list \(brokerList): \(error)") }

        // Topic metadata from the first broker that answers.
        var metadata: MetadataResponse?
        var lastError = ""
        for s in seeds {
            do {
                let c = try await BrokerConnection.connect(host: s.host, port: s.port, clientId: Self.clientId)
                metadata = try await c.metadata([])
                await c.close()
                break
            } catch { lastError = "\(s.host):\(s.port): \(error)" }
        }
        guard let metadata else { throw ToolError("Cannot fetch topic metadata from --broker-list \(brokerList) (\(lastError))") }
        let brokers = Dictionary(metadata.brokers.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var replicasOf: [TopicPartition: [Int32]] = [:]
        var leaderOf: [TopicPartition: Int32] = [:]
        for t in metadata.topics where t.error == .none && filter.allows(t.topic) {
            for p in t.partitions {
                let tp = TopicPartition(t.topic, p.partition)
                guard p.leader >= 0, brokers[p.leader] != nil else { throw ToolError("Partition \(tp) has no leader; cannot read its initial offset") }
                replicasOf[tp] = p.replicas
                leaderOf[tp] = p.leader
            }
        }
        var partitionsOf: [Int32: [TopicPartition]] = [:]
        for (tp, rs) in replicasOf { for r in rs { partitionsOf[r, default: []].append(tp) } }
        for b in partitionsOf.keys where brokers[b] == nil {
            throw ToolError("Broker \(b) holds replicas of \(partitionsOf[b]!.sorted().map(\.description).joined(separator: ",")) but is not alive")
        }

        // Initial offsets from the leaders.
        var offsets: [TopicPartition: Int64] = [:]
        for (tp, leader) in leaderOf.sorted(by: { $0.key < $1.key }) {
            let b = brokers[leader]!
            let c = try await SimpleConsumer.connect(host: b.host, port: Int(b.port), clientId: Self.clientId)
            defer { Task { await c.close() } }
            do { offsets[tp] = try await c.offsetBefore(tp, time: time) } catch {
                throw ToolError("Cannot get the initial offset of \(tp) (--time \(time)) from broker \(leader): \(error)")
            }
        }

        var connections: [Int32: SimpleConsumer] = [:]
        Console.out("\(Self.now()): verification process is started.")
        var lastReport = Date()
        while !Task.isCancelled {
            // Every broker fetches its replicas at the common offsets (as 0.8.2's fetcher threads).
            let round = try await withThrowingTaskGroup(of: (Int32, [TopicPartition: FetchResponse.PartitionData]?, SimpleConsumer?).self) { group in
                for (b, tps) in partitionsOf {
                    let endpoint = brokers[b]!
                    let existing = connections[b]
                    let request = FetchRequest(replicaId: -2, maxWaitMs: maxWaitMs, minBytes: 1, topics: Dictionary(grouping: tps, by: \.topic).map { t, ps in
                        .init(topic: t, partitions: ps.map { .init(partition: $0.partition, fetchOffset: offsets[$0]!, maxBytes: fetchSize) })
                    })
                    group.addTask {
                        do {
                            let c: SimpleConsumer
                            if let existing { c = existing } else { c = try await SimpleConsumer.connect(host: endpoint.host, port: Int(endpoint.port), clientId: Self.clientId) }
                            let resp = try await c.connection.fetch(request)
                            var data: [TopicPartition: FetchResponse.PartitionData] = [:]
                            for t in resp.topics { for p in t.partitions { data[TopicPartition(t.topic, p.partition)] = p } }
                            return (b, data, c)
                        } catch {
                            if let existing { await existing.close() }
                            return (b, nil, nil)
                        }
                    }
                }
                var out: [Int32: [TopicPartition: FetchResponse.PartitionData]] = [:]
                for try await (b, data, c) in group {
                    connections[b] = c
                    out[b] = data ?? [:]
                }
                return out
            }
            try verify(round, replicasOf: replicasOf, offsets: &offsets, lastReport: &lastReport)
        }
    }

    /// 0.8.2 `ReplicaBuffer.verifyCheckSum`: walk every replica's messages in step up to its
    /// high watermark; a different offset ends the tool, a different checksum is printed;
    /// the offset advances while all replicas agree. Reports the max lag when it is time.
    func verify(_ round: [Int32: [TopicPartition: FetchResponse.PartitionData]], replicasOf: [TopicPartition: [Int32]],
                offsets: inout [TopicPartition: Int64], lastReport: inout Date) throws {
        var maxLag: Int64 = -1
        var offsetWithMaxLag: Int64 = -1
        var maxLagPartition: TopicPartition?
        for tp in replicasOf.keys.sorted() {
            let replicas = replicasOf[tp]!
            var iterators: [(replica: Int32, entries: [Entry], hw: Int64)] = []
            for r in replicas {
                let data = round[r]?[tp]
                let ok = data.map { $0.error == .none } ?? false
                iterators.append((r, ok ? Self.entries(data!.messageSet) : [], ok ? data!.highWatermark : 0))
            }
            let maxHw = iterators.map(\.hw).max() ?? 0
            var index = 0
            var allHave = true
            while allHave {
                var first: (replica: Int32, entry: Entry)?
                for it in iterators {
                    guard index < it.entries.count else { allHave = false; continue }
                    let e = it.entries[index]
                    if e.offset >= it.hw { allHave = false; continue }
                    guard let f = first else { first = (it.replica, e); continue }
                    if f.entry.offset != e.offset {
                        Console.out("\(Self.now()): partition \(tp): replica \(f.replica)'s offset \(f.entry.offset) doesn't match replica \(it.replica)'s offset \(e.offset)")
                        throw ToolError("Replicas of partition \(tp) disagree on offsets; stopping")
                    }
                    if f.entry.checksum != e.checksum {
                        Console.out("\(Self.now()): partition \(tp) has unmatched checksum at offset \(e.offset); replica \(f.replica)'s checksum \(f.entry.checksum); replica \(it.replica)'s checksum \(e.checksum)")
                    }
                }
                if allHave, let f = first {
                    offsets[tp] = f.entry.offset + 1
                    index += 1
                } else {
                    allHave = false
                }
            }
            let lag = maxHw - offsets[tp]!
            if lag > maxLag {
                maxLag = lag
                offsetWithMaxLag = offsets[tp]!
                maxLagPartition = tp
            }
        }
        let now = Date()
        if now.timeIntervalSince(lastReport) * 1000 > Double(reportIntervalMs) {
            Console.out("\(Self.now()): max lag is \(maxLag) for partition \(maxLagPartition.map(\.description) ?? "null") at offset \(offsetWithMaxLag) among \(replicasOf.count) paritions")
            lastReport = now
        }
    }
}

/// A topic whitelist or blacklist as 0.8.2's `TopicFilter`: commas mean alternation, spaces and
/// surrounding quotes are dropped, and a topic must match the whole expression.
struct TopicFilter: Sendable {
    let regex: String
    let blacklist: Bool
    private let compiled: NSRegularExpression

    init(whitelist: String) throws { try self.init(whitelist, blacklist: false) }
    init(blacklist: String) throws { try self.init(blacklist, blacklist: true) }

    private init(_ raw: String, blacklist: Bool) throws {
        var r = raw.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: ",", with: "|").replacingOccurrences(of: " ", with: "")
        while let f = r.first, f == "\"" || f == "'" { r.removeFirst() }
        while let l = r.last, l == "\"" || l == "'" { r.removeLast() }
        regex = r
        self.blacklist = blacklist
        compiled = try NSRegularExpression(pattern: "^(?:" + r + ")$")
    }

    func allows(_ topic: String) -> Bool {
        let matches = compiled.firstMatch(in: topic, range: NSRange(topic.startIndex..., in: topic)) != nil
        return blacklist ? !matches : matches
    }
}
