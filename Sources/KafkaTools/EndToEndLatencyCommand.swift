import ArgumentParser
import Foundation
import KafkaClient
import KafkaCluster
import KafkaProtocol
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Monotonic clock in nanoseconds (CLOCK_MONOTONIC): producer and consumer run in this process,
/// so the timestamps they compare come from the same clock.
@inline(__always) func e2eNowNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// `kafka-tools end-to-end-latency`: produces at a fixed rate to partition 0 of a topic, each message
/// carrying its send time and sequence number; a consumer in the same process long-polls the same
/// partition and records, for every message, the time from the producer's send to the consumer's
/// receipt. Prints p50/p99/p99.9/max in ms and the achieved rate.
public struct EndToEndLatencyCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "end-to-end-latency",
        abstract: "Measure end-to-end latency (produce -> broker -> consumer) at a fixed message rate.",
        discussion: """
            The producer sends, every time messages are due, one Produce request holding the messages
            due by then (at 10,000 msg/s and ~1 ms timer granularity that is a few messages per request);
            requests are pipelined on one connection. Each message is stamped with the monotonic time at
            which its request is built. The consumer long-polls (--max-wait-ms, min bytes 1) from the log
            end at start. Latencies of the first --warmup-seconds are left out of the percentiles.
            Example:
              kafka-tools end-to-end-latency --broker-list localhost:9092 --topic e2e --rate 10000 --seconds 10
            """)
    @Option(name: .customLong("broker-list"), help: "REQUIRED: a broker to bootstrap from (host:port[,host:port]).") var brokerList: String?
    @Option(name: .customLong("topic"), help: "REQUIRED: the topic (partition 0 is used).") var topic: String?
    @Option(name: .customLong("rate"), help: "Messages per second to produce.") var rate = 10_000
    @Option(name: .customLong("seconds"), help: "How long to produce.") var seconds: Double = 10
    @Option(name: .customLong("warmup-seconds"), help: "Leading seconds whose latencies are not counted.") var warmupSeconds: Double = 1
    @Option(name: .customLong("message-size"), help: "Payload bytes per message (at least 16).") var messageSize = 100
    @Option(name: .customLong("acks"), parsing: .unconditional, help: "request.required.acks of the Produce requests (0, 1 or -1).") var acks: Int16 = 1
    @Option(name: .customLong("max-wait-ms"), help: "The consumer's fetch max wait (long poll).") var maxWaitMs: Int32 = 500
    @Option(name: .customLong("print-slow-ms"), help: "Also print how many counted messages took longer than this, and when (seconds after the start) the slow ones were sent, grouped in 10 ms windows.") var printSlowMs: Double?
    @Flag(name: .customLong("csv"), help: "Print one CSV line (rate,achieved,sent,received,p50,p99,p99.9,max) instead of the report.") var csv = false
    public init() {}

    public func run() async throws {
        let (brokerList, topic) = try UsageCheck.requireBrokerListAndTopic(brokerList, topic)
        guard rate > 0, seconds > 0 else { throw ValidationError("--rate and --seconds must be positive") }
        guard messageSize >= 16 else { throw ValidationError("--message-size must be at least 16 (timestamp and sequence number)") }
        guard [0, 1, -1].contains(acks) else { throw ValidationError("--acks must be 0, 1 or -1") }
        let broker = try BrokerList.parse(brokerList)[0]
        let tp = TopicPartition(topic, 0)

        // Leader of partition 0 (a metadata request auto-creates the topic when the broker allows it).
        let leader = try await BrokerConnection.findLeader(bootstrap: broker, topic: topic, clientId: "end-to-end-latency", attempts: 150)
        guard let leader else { throw ToolError("no leader for \(topic) partition 0") }

        let consumer = try await SimpleConsumer.connect(host: leader.0, port: leader.1, clientId: "end-to-end-latency-consumer")
        let producer = try await BrokerConnection.connect(host: leader.0, port: leader.1, clientId: "end-to-end-latency-producer")
        let startOffset = try await consumer.offsetBefore(tp, time: OffsetsRequest.latestTime)

        let total = max(1, Int((Double(rate) * seconds).rounded()))
        let padding = [UInt8](repeating: UInt8(ascii: "x"), count: messageSize - 16)
        let maxWait = maxWaitMs

        // Consumer: long-polls from the log end until it has seen every message (or 10 s of silence).
        let consumerTask = Task { () throws -> (latencies: [UInt64], sendTimes: [UInt64], received: Int) in
            var latencies = [UInt64](repeating: 0, count: total)
            var seen = [Bool](repeating: false, count: total)
            var sendTimes = [UInt64](repeating: 0, count: total)
            var received = 0
            var offset = startOffset
            var lastProgress = e2eNowNanos()
            while received < total {
                let r = try await consumer.fetch(tp, offset: offset, maxBytes: 1 << 20, maxWaitMs: maxWait, minBytes: 1)
                let now = e2eNowNanos()
                guard r.error == .none else { throw ToolError("fetch of \(tp) at \(offset) failed: \(r.error)") }
                for m in r.messages {
                    guard let v = m.value, v.count >= 16 else { continue }
                    var sent: UInt64 = 0
                    var seq: UInt64 = 0
                    for i in 0..<8 { sent |= UInt64(v[i]) << (8 * i); seq |= UInt64(v[8 + i]) << (8 * i) }
                    let s = Int(seq)
                    guard s < total, !seen[s] else { continue }
                    seen[s] = true
                    sendTimes[s] = sent
                    latencies[s] = now &- sent
                    received += 1
                }
                if r.nextOffset > offset {
                    offset = r.nextOffset
                    lastProgress = now
                } else if now - lastProgress > 10_000_000_000 {
                    break
                }
            }
            return (latencies, sendTimes, received)
        }

        // Producer: at each wake-up, one request with every message due by now.
        let rateD = Double(rate)
        let t0 = e2eNowNanos()
        var sent = 0
        var requests = 0
        try await withThrowingDiscardingTaskGroup { group in
            while sent < total {
                let now = e2eNowNanos()
                let due = min(total, Int(Double(now - t0) / 1e9 * rateD) + 1)
                if due > sent {
                    var msgs: [(key: [UInt8]?, value: [UInt8]?)] = []
                    msgs.reserveCapacity(due - sent)
                    let stamp = e2eNowNanos()
                    for seq in sent..<due {
                        var v = [UInt8](repeating: 0, count: 16)
                        for i in 0..<8 { v[i] = UInt8(truncatingIfNeeded: stamp >> (8 * UInt64(i))); v[8 + i] = UInt8(truncatingIfNeeded: UInt64(seq) >> (8 * UInt64(i))) }
                        v.append(contentsOf: padding)
                        msgs.append((key: nil, value: v))
                    }
                    let set = try MessageSetBuilder.build(msgs, codec: .none)
                    var buf = ByteBufferAllocator().buffer(capacity: set.count)
                    buf.writeBytes(set)
                    let req = ProduceRequest(requiredAcks: acks, timeoutMs: 10_000,
                                             topics: [.init(topic: tp.topic, partitions: [.init(partition: tp.partition, messageSet: buf)])])
                    sent = due
                    requests += 1
                    if acks == 0 {
                        _ = try await producer.produce(req)
                    } else {
                        group.addTask {
                            if let resp = try await producer.produce(req), let e = resp.topics.first?.partitions.first?.error, e != .none {
                                throw ToolError("produce failed: \(e)")
                            }
                        }
                    }
                } else {
                    let next = t0 + UInt64((Double(sent) / rateD * 1e9).rounded(.up))
                    if next > now { try await Task.sleep(nanoseconds: next - now) }
                }
            }
        }
        let t1 = e2eNowNanos()
        let result = try await consumerTask.value
        await producer.close()
        await consumer.close()

        let produceSecs = Double(t1 - t0) / 1e9
        let achieved = Double(sent) / produceSecs
        let warmupEnd = t0 + UInt64(warmupSeconds * 1e9)
        var counted: [UInt64] = []
        counted.reserveCapacity(result.received)
        for s in 0..<total where result.sendTimes[s] != 0 && result.sendTimes[s] >= warmupEnd {
            counted.append(result.latencies[s])
        }
        counted.sort()
        func pct(_ p: Double) -> Double {
            guard !counted.isEmpty else { return .nan }
            let i = min(counted.count - 1, max(0, Int((p / 100 * Double(counted.count)).rounded(.up)) - 1))
            return Double(counted[i]) / 1e6
        }
        let mean = counted.isEmpty ? Double.nan : Double(counted.reduce(0, +)) / Double(counted.count) / 1e6
        if csv {
            print("rate,achieved.msg.sec,sent,received,p50.ms,p99.ms,p99.9.ms,max.ms")
            print(String(format: "%d,%.1f,%d,%d,%.3f,%.3f,%.3f,%.3f", rate, achieved, sent, result.received, pct(50), pct(99), pct(99.9), pct(100)))
        } else {
            print(String(format: "end-to-end latency, topic %@ partition 0 on %@:%d, %d-byte messages, acks %d", topic, leader.0, leader.1, messageSize, Int(acks)))
            print(String(format: "target rate %d msg/s; sent %d messages in %d requests (%.1f per request) in %.3f s: achieved %.1f msg/s",
                         rate, sent, requests, Double(sent) / Double(max(requests, 1)), produceSecs, achieved))
            print(String(format: "received %d of %d; %d counted (after %.1f s warm-up)", result.received, sent, counted.count, warmupSeconds))
            print(String(format: "latency ms: mean %.3f, p50 %.3f, p99 %.3f, p99.9 %.3f, max %.3f", mean, pct(50), pct(99), pct(99.9), pct(100)))
        }
        if let limit = printSlowMs {
            var windows: [(start: Double, count: Int, worst: Double)] = []
            for s in 0..<total where result.sendTimes[s] != 0 && result.sendTimes[s] >= warmupEnd {
                let ms = Double(result.latencies[s]) / 1e6
                guard ms > limit else { continue }
                let at = Double(result.sendTimes[s] &- t0) / 1e9
                if let last = windows.last, at - last.start < 0.01 {
                    windows[windows.count - 1].count += 1
                    windows[windows.count - 1].worst = max(last.worst, ms)
                } else {
                    windows.append((at, 1, ms))
                }
            }
            print(String(format: "%d messages over %.1f ms, in %d stalls:", windows.reduce(0) { $0 + $1.count }, limit, windows.count))
            for w in windows { print(String(format: "  sent at %.3f s: %d messages, worst %.3f ms", w.start, w.count, w.worst)) }
        }
        if result.received < sent { throw ToolError("only \(result.received) of \(sent) messages were consumed") }
    }
}
