import Foundation
import KafkaClient
import KafkaCluster
import KafkaProtocol

/// consumer-perf-test through the ZooKeeper group consumer, as 0.8.2's ConsumerPerformance does:
/// one group member with `--threads` streams, `auto.offset.reset` smallest (or largest with
/// `--from-latest`), the group's old offsets deleted first unless `--from-latest`.
extension ConsumerPerfCommand {
    /// The latest offset of each partition of `topic` (where a run without `--messages` stops).
    static func logEnds(_ kzk: KafkaZooKeeper, topic: String) async throws -> [Int32: Int64] {
        guard let assignment = try await kzk.assignment(topic) else { throw ToolError("Topic \(topic) does not exist") }
        var out: [Int32: Int64] = [:]
        var conns: [String: SimpleConsumer] = [:]
        defer { let cs = conns.values; Task { for c in cs { await c.close() } } }
        for p in assignment.keys.sorted() {
            let tp = TopicPartition(topic, p)
            guard let st = try await kzk.partitionState(tp), st.state.leader >= 0 else { throw ToolError("no leader for \(tp)") }
            guard let reg = try await kzk.broker(st.state.leader) else { throw ToolError("leader \(st.state.leader) of \(tp) is not registered") }
            let key = "\(reg.host):\(reg.port)"
            let c: SimpleConsumer
            if let have = conns[key] { c = have } else {
                c = try await SimpleConsumer.connect(host: reg.host, port: Int(reg.port), clientId: "consumer-performance")
                conns[key] = c
            }
            out[p] = try await c.offsetBefore(tp, time: OffsetsRequest.latestTime)
        }
        return out
    }

    func runThroughGroup() async throws {
        let topic = topic!
        let group = self.group ?? "perf-consumer-\(Int.random(in: 0..<100000))"
        let props = ["zookeeper.connect": zookeeper!, "group.id": group,
                     "auto.offset.reset": fromLatest ? "largest" : "smallest",
                     "fetch.message.max.bytes": String(fetchSize), "zookeeper.session.timeout.ms": "30000",
                     "client.id": "consumer-performance"]
        let cfg: ZookeeperConsumerConfig
        do { cfg = try ZookeeperConsumerConfig(properties: props) } catch { throw ToolError("\(error)") }
        let consumer = try await ToolZooKeeper.connectConsumer(cfg)
        let ends: [Int32: Int64]
        do {
            ends = try await Self.logEnds(consumer.zooKeeper, topic: topic)
            if !fromLatest { try? await consumer.zooKeeper.deleteConsumerGroup(group) }
            try await consumer.subscribe(topics: [topic: threads])
        } catch {
            await consumer.shutdown()
            throw error
        }
        let untilEnd = perf.messages == nil
        let target = perf.messages ?? Int.max
        let dateFormat = perf.dateFormat, detailed = perf.showDetailedStats, interval = perf.reportingInterval
        if !perf.hideHeader {
            print(detailed ? "time, fetch.size, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec"
                           : "start.time, end.time, fetch.size, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec")
        }
        func report(_ id: Int, _ bytes: Int, _ lastBytes: Int, _ msgs: Int, _ lastMsgs: Int, _ from: Date, _ to: Date) {
            let ms = max(to.timeIntervalSince(from) * 1000, 1e-6)
            Console.out(String(format: "%@, %d, %d, %.4f, %.4f, %d, %.4f", perfDate(to, format: dateFormat), id, Int(fetchSize),
                               Double(bytes) / 1048576.0, 1000.0 * (Double(bytes - lastBytes) / 1048576.0 / ms), msgs,
                               Double(msgs - lastMsgs) / ms * 1000.0))
        }
        struct ThreadStats { var msgs = 0, bytes = 0, lastMsgs = 0, lastBytes = 0; var lastReport: Date }
        let start = Date()
        var stats = (0..<threads).map { _ in ThreadStats(lastReport: start) }
        var owners = await consumer.ownedPartitions
        var position: [Int32: Int64] = [:]           // next offset per partition (until-end runs)
        var total = 0, totalBytes = 0
        func done() -> Bool {
            if total >= target { return true }
            return untilEnd && ends.allSatisfy { p, end in end <= 0 || (position[p] ?? 0) >= end }
        }
        func count(_ m: ConsumedMessage) async {
            if untilEnd {
                position[m.partition] = m.offset + 1
                if m.offset >= ends[m.partition] ?? 0 { return }
            }
            let tp = TopicPartition(m.topic, m.partition)
            var t = 0
            if detailed {
                if owners[tp] == nil { owners = await consumer.ownedPartitions }
                t = min(owners[tp]?.thread ?? 0, threads - 1)
            }
            let size = m.value?.count ?? 0
            total += 1
            totalBytes += size
            stats[t].msgs += 1
            stats[t].bytes += size
            if detailed && stats[t].msgs % interval == 0 {
                let now = Date()
                report(t, stats[t].bytes, stats[t].lastBytes, stats[t].msgs, stats[t].lastMsgs, stats[t].lastReport, now)
                stats[t].lastReport = now; stats[t].lastMsgs = stats[t].msgs; stats[t].lastBytes = stats[t].bytes
            }
        }
        do {
            // Stops after 5 s without a message (0.8.2's consumer.timeout.ms).
            loop: while !done() {
                let chunk = try await nextChunk(consumer, timeoutMs: 5000)
                if chunk.isEmpty { break }
                if !untilEnd && !detailed {
                    // Only totals: the chunk's sizes up to the target, without copying each message.
                    let n = min(chunk.count, target - total)
                    var b = 0
                    for i in chunk.startIndex..<(chunk.startIndex + n) { b += chunk[i].value?.count ?? 0 }
                    total += n
                    totalBytes += b
                    continue
                }
                for i in chunk.indices {
                    await count(chunk[i])
                    if done() { break loop }
                }
            }
        } catch {
            await consumer.shutdown()
            throw error
        }
        let endT = Date()
        if detailed {
            for t in 0..<threads { report(t, stats[t].bytes, 0, stats[t].msgs, 0, start, endT) }
        } else {
            let secs = max(endT.timeIntervalSince(start), 1e-9)
            let mb = Double(totalBytes) / 1048576.0
            print(String(format: "%@, %@, %d, %.4f, %.4f, %d, %.4f", perfDate(start, format: dateFormat), perfDate(endT, format: dateFormat), Int(fetchSize), mb, mb / secs, total, Double(total) / secs))
        }
        await consumer.shutdown()
    }

    /// The messages the group consumer has ready, waiting up to `timeoutMs` for the first one.
    private func nextChunk(_ consumer: ZookeeperConsumer, timeoutMs: Int) async throws -> ArraySlice<ConsumedMessage> {
        try await consumer.nextChunk(timeoutMs: timeoutMs)
    }
}
