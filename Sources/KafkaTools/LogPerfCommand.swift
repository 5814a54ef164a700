import ArgumentParser
import Foundation
import KafkaLog
import KafkaProtocol
import KafkaTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `kafka-tools log-perf-test`: throughput of the log alone (no network, no broker). Appends fixed-size
/// messages in batches straight to a `KafkaLog.Log`, reads them back, optionally prefills the log to
/// compare the append rate of an empty log with that of a log holding many GB, and times the recovery of
/// an unclean segment.
public struct LogPerfCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "log-perf-test",
        abstract: "Measure append, read and recovery throughput of the on-disk log (no broker involved).",
        discussion: """
        Writes into <dir>/log-perf-0 (and <dir>/log-perf-fresh-0, <dir>/log-recovery-0); <dir> must not hold them already. The files are removed at the end unless --keep is given.

        Appends: --runs runs of --messages messages on an empty log. With --prefill-gb the log is then filled to that size and --runs more runs follow, in which slices of appends go alternately to a fresh empty log and to the full log, so both see the same machine state. Each run starts after an fsync of the log. Rates: msgs/s, payload MB/s (message-size × messages) and log MB/s (bytes written to the segments, 26 bytes of framing per message more). MB = 2^20 bytes.

        Reads: the whole log from its first offset in 1 MiB reads, from the page cache, then with the files' pages dropped (posix_fadvise). Recovery (--recovery-gb): one segment of that size is written, then reopened as after a crash (recovery point 0, no clean-shutdown marker) and every message's size and CRC checked, the index rebuilt.

        Memory warm-up: before each measurement a scratch file as large as the data about to be written or read is written and deleted, so the page cache gets memory that was just in use. On VMs with free page reporting (virtio-balloon) memory that stayed free for a while goes back to the host and costs a fault on first use, which makes whichever run gets such memory 2-3 times slower in the kernel, whatever the log holds. --no-warm-memory shows that effect.

        Examples:
          kafka-tools log-perf-test --dir /tmp/perf --messages 5000000
          kafka-tools log-perf-test --dir /tmp/perf --runs 5 --prefill-gb 10 --recovery-gb 1
        """)

    @Option(name: .customLong("dir"), help: "REQUIRED: directory for the test logs.") var dir: String?
    @Option(name: .customLong("messages"), help: "Messages appended per measured run.") var messages = 5_000_000
    @Option(name: .customLong("message-size"), help: "Payload bytes per message.") var messageSize = 100
    @Option(name: .customLong("batch-size"), help: "Messages per appended message set.") var batchSize = 200
    @Option(name: .customLong("runs"), help: "Measured runs per phase (the median is reported).") var runs = 3
    @Option(name: .customLong("segment-bytes"), help: "segment.bytes of the test log.") var segmentBytes = 1 << 30
    @Option(name: .customLong("prefill-gb"), help: "After the runs on the empty log, append until the log holds this many GB (2^30 bytes), then measure again.") var prefillGB: Double = 0
    @Option(name: .customLong("recovery-gb"), help: "Size of the unclean segment whose recovery is timed (0: skip).") var recoveryGB: Double = 0
    @Option(name: .customLong("settle-seconds"), help: "Pause after the prefill before measuring again (lets the machine finish its writeback).") var settleSeconds: Double = 0
    @Flag(name: .customLong("no-read"), help: "Skip the read measurement.") var noRead = false
    @Flag(name: .customLong("no-warm-memory"), help: "Do not write and delete a scratch file before each measurement (see the discussion).") var noWarmMemory = false
    @Flag(name: .customLong("keep"), help: "Keep the test logs.") var keep = false

    public init() {}

    static let mb = 1048576.0
    static let gb = 1073741824.0

    public func run() async throws {
        guard let dir else { throw ValidationError("Missing required argument \"[dir]\"") }
        guard messages > 0, messageSize >= 0, batchSize > 0, runs > 0 else {
            throw ValidationError("--messages, --batch-size and --runs must be positive, --message-size not negative")
        }
        guard segmentBytes >= 1024, segmentBytes <= Int(Int32.max) else { throw ValidationError("--segment-bytes must be between 1024 and 2147483647") }
        let perfDir = dir + "/log-perf-0"
        let recoveryDir = dir + "/log-recovery-0"
        let freshDir = dir + "/log-perf-fresh-0"
        for d in [perfDir, recoveryDir, freshDir] where FileManager.default.fileExists(atPath: d) {
            throw ToolError("\(d) already exists: remove it or choose another --dir")
        }
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw ToolError("cannot create --dir \(dir): \(error.localizedDescription)")
        }
        defer {
            if !keep {
                try? FileManager.default.removeItem(atPath: perfDir)
                try? FileManager.default.removeItem(atPath: recoveryDir)
            }
            try? FileManager.default.removeItem(atPath: freshDir)
        }
        let batch = Self.batch(count: batchSize, messageSize: messageSize)
        let perMessageOnDisk = Double(batch.count) / Double(batchSize)
        print("log-perf-test: \(batchSize)-message batches of \(messageSize)-byte messages (\(batch.count) bytes per set, \(Int(perMessageOnDisk)) bytes per message on disk); segment.bytes \(segmentBytes); \(ProcessInfo.processInfo.activeProcessorCount) cores")
        print("directory: \(dir)")

        var cfg = LogConfig()
        cfg.segmentBytes = segmentBytes
        cfg.maxMessageBytes = max(cfg.maxMessageBytes, batch.count + 64)
        let log = try Log(directory: perfDir, topicPartition: TopicPartition("log-perf", 0), config: cfg)
        let batchesPerRun = (messages + batchSize - 1) / batchSize

        // 1. Appends on an empty log.
        let empty = try measureAppends(log, batch: batch, batches: batchesPerRun, label: "append")
        // 2. Reads of everything written so far.
        if !noRead { try measureRead(log, label: "read") }
        // 3. Prefill, then appends on the full log, alternating with appends on a fresh empty log (A/B), so that
        //    both see the same page-cache and disk state: right after writing many GB the machine itself is
        //    slower for a while, whatever log is written.
        if prefillGB > 0 {
            let target = Int64(prefillGB * Self.gb)
            let start = Date()
            var appended: Int64 = 0
            let before = log.size
            while log.size < target {
                for _ in 0..<500 { appended += Int64(try log.append(batch).bytesWritten) }
            }
            let secs = Date().timeIntervalSince(start)
            print(String(format: "prefill: appended %.2f GB in %.1f s (%.1f MB/s, page-cache writeback included) to %.2f GB stored in %d segments (%.2f GB before)",
                         Double(appended) / Self.gb, secs, Double(appended) / Self.mb / secs, Double(log.size) / Self.gb,
                         log.segmentCount, Double(before) / Self.gb))
            if settleSeconds > 0 {
                print(String(format: "settling for %.0f s", settleSeconds))
                fflush(nil)
                usleep(UInt32(settleSeconds * 1_000_000))
            }
            fflush(nil)
            // Time-sliced A/B: slices of appends go alternately to a fresh empty log and to the full log, so
            // both see the same machine state (page cache, writeback, other load) within each run.
            var fullRates: [Double] = []
            var freshRates: [Double] = []
            for run in 1...runs {
                let fresh = try Log(directory: freshDir, topicPartition: TopicPartition("log-perf-fresh", 0), config: cfg)
                log.flush()
                warmMemory(bytes: 2 * batchesPerRun * batch.count, dir: log.directory)
                let slices = 100
                let perSlice = max(1, batchesPerRun / slices)
                var tFull = 0.0, tFresh = 0.0
                let storedBefore = Double(log.size) / Self.gb
                for _ in 0..<slices {
                    var t0 = DispatchTime.now().uptimeNanoseconds
                    for _ in 0..<perSlice { _ = try fresh.append(batch) }
                    var t1 = DispatchTime.now().uptimeNanoseconds
                    tFresh += Double(t1 - t0) / 1e9
                    t0 = DispatchTime.now().uptimeNanoseconds
                    for _ in 0..<perSlice { _ = try log.append(batch) }
                    t1 = DispatchTime.now().uptimeNanoseconds
                    tFull += Double(t1 - t0) / 1e9
                }
                let n = Double(slices * perSlice * batchSize)
                fullRates.append(n / tFull)
                freshRates.append(n / tFresh)
                print(String(format: "append A/B run %d, %d messages each: full log (%.2f GB stored before) %.0f msgs/s, %.1f MB/s payload; fresh empty log %.0f msgs/s, %.1f MB/s payload (%+.1f%%)",
                             run, slices * perSlice * batchSize, storedBefore, n / tFull, n * Double(messageSize) / Self.mb / tFull,
                             n / tFresh, n * Double(messageSize) / Self.mb / tFresh, (n / tFull - n / tFresh) / (n / tFresh) * 100))
                fflush(nil)
                fresh.delete()
            }
            let full = median(fullRates), fresh = median(freshRates)
            print(String(format: "append median, full log (now %.2f GB in %d segments): %.0f msgs/s, %.1f MB/s payload",
                         Double(log.size) / Self.gb, log.segmentCount, full, full * Double(messageSize) / Self.mb))
            print(String(format: "append median, fresh empty log (interleaved with the full one): %.0f msgs/s, %.1f MB/s payload",
                         fresh, fresh * Double(messageSize) / Self.mb))
            print(String(format: "append rate, full vs. empty log (interleaved): %+.1f%%; full log vs. the empty-log runs before the prefill: %+.1f%%",
                         (full - fresh) / fresh * 100, (full - empty) / empty * 100))
        }
        log.close()
        if !keep { try? FileManager.default.removeItem(atPath: perfDir) }

        // 4. Recovery of an unclean segment.
        if recoveryGB > 0 { try measureRecovery(dir: recoveryDir, batch: batch, config: cfg) }
    }

    /// One set of `count` messages with `messageSize`-byte payloads (printable, fixed seed), no keys.
    static func batch(count: Int, messageSize: Int) -> [UInt8] {
        var rng = SeededRandom(seed: 42)   // reproducible payloads
        let msgs: [(key: [UInt8]?, value: [UInt8]?)] = (0..<count).map { _ in
            (nil, (0..<messageSize).map { _ in UInt8(32 + rng.next() % 95) })
        }
        return try! MessageSetBuilder.build(msgs)
    }

    /// `runs` runs of `batches` appends each; prints each run and the median; returns the median msgs/s.
    func measureAppends(_ log: Log, batch: [UInt8], batches: Int, label: String) throws -> Double {
        var rates: [Double] = []
        for run in 1...runs { rates.append(try measureOnce(log, batch: batch, batches: batches, label: label, run: run)) }
        let m = median(rates)
        print(String(format: "%@ median: %.0f msgs/s, %.1f MB/s payload (log holds %.2f GB in %d segments)",
                     label, m, m * Double(messageSize) / Self.mb, Double(log.size) / Self.gb, log.segmentCount))
        return m
    }

    func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

    /// One run of `batches` appends; prints it; returns msgs/s.
    func measureOnce(_ log: Log, batch: [UInt8], batches: Int, label: String, run: Int) throws -> Double {
        log.flush()   // start each run without dirty pages from earlier phases
        warmMemory(bytes: batches * batch.count, dir: log.directory)
        let stored = Double(log.size) / Self.gb
        var bytes = 0
        // Offsets are assigned in one reused set, as the broker assigns them in the request's own
        // memory: the figure is the log's work, without a copy of each set.
        var set = batch
        let cpu0 = Self.cpuTimes()
        let start = DispatchTime.now().uptimeNanoseconds
        try set.withUnsafeMutableBytes { m in
            for _ in 0..<batches { bytes += try log.append(in: m).bytesWritten }
        }
        let secs = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let cpu1 = Self.cpuTimes()
        let n = Double(batches * batchSize)
        print(String(format: "%@ run %d: stored before %.2f GB, %d messages in %.3f s (cpu user %.2f s, sys %.2f s): %.0f msgs/s, %.1f MB/s payload, %.1f MB/s log",
                     label, run, stored, batches * batchSize, secs, cpu1.user - cpu0.user, cpu1.sys - cpu0.sys, n / secs,
                     n * Double(messageSize) / Self.mb / secs, Double(bytes) / Self.mb / secs))
        fflush(nil)
        return n / secs
    }

    /// Reads the whole log from its start in 1 MiB fetches, walking the entries as a consumer does to find
    /// the next offset. Hot (page cache), then cold (the files' pages dropped with posix_fadvise).
    func measureRead(_ log: Log, label: String) throws {
        for cold in [false, true] {
            if cold {
                Self.dropCache(directory: log.directory)
                warmMemory(bytes: Int(log.size), dir: log.directory)
            }
            var next = log.logStartOffset
            let end = log.logEndOffset
            var bytes = 0
            var count = 0
            let start = DispatchTime.now().uptimeNanoseconds
            while next < end {
                let chunk = try log.readBytes(startOffset: next, maxBytes: 1 << 20)
                let (n, last) = Self.walk(chunk)
                guard let last else { throw ToolError("read made no progress at offset \(next)") }
                bytes += chunk.count
                count += n
                next = last + 1
            }
            let secs = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            print(String(format: "%@ (%@): %d messages, %.2f GB in %.3f s: %.0f msgs/s, %.1f MB/s",
                         label, cold ? "cold: pages dropped first" : "hot: page cache", count, Double(bytes) / Self.gb, secs,
                         Double(count) / secs, Double(bytes) / Self.mb / secs))
        }
    }

    /// Writes and deletes a scratch file of `bytes` (+10%) in `dir`, so that the next page-cache allocations reuse
    /// memory that was just in use (no disk write: the file is deleted before writeback).
    func warmMemory(bytes: Int, dir: String) {
        if noWarmMemory { return }
        let path = dir + "/.warm-memory.tmp"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return }
        let chunk = 1 << 20
        let buf = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 4096)
        memset(buf, 0x5A, chunk)
        var written = 0
        let target = bytes + bytes / 10
        while written < target {
            let n = write(fd, buf, chunk)
            if n <= 0 { break }
            written += n
        }
        buf.deallocate()
        close(fd)
        unlink(path)
    }

    /// CPU time of this process so far (user, system), in seconds.
    static func cpuTimes() -> (user: Double, sys: Double) {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return (Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6,
                Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6)
    }

    /// Messages in a fetched chunk and the offset of its last complete one.
    static func walk(_ b: [UInt8]) -> (Int, Int64?) {
        var pos = 0
        var n = 0
        var last: Int64? = nil
        b.withUnsafeBytes { p in
            while pos + 12 <= p.count {
                var o: UInt64 = 0
                for i in 0..<8 { o = o << 8 | UInt64(p[pos + i]) }
                var s: UInt32 = 0
                for i in 8..<12 { s = s << 8 | UInt32(p[pos + i]) }
                guard pos + 12 + Int(s) <= p.count else { break }
                last = Int64(bitPattern: o)
                n += 1
                pos += 12 + Int(s)
            }
        }
        return (n, last)
    }

    /// fsync and drop the page-cache pages of every file in `directory` (only these files are affected).
    static func dropCache(directory: String) {
        for f in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            let fd = open(directory + "/" + f, O_RDONLY)
            guard fd >= 0 else { continue }
            fsync(fd)
            _ = posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_DONTNEED))
            close(fd)
        }
    }

    /// Writes one segment of `recoveryGB`, closes the log, and reopens it as after a crash (no clean
    /// shutdown, recovery point 0): every message's size and CRC is checked and the index rebuilt.
    func measureRecovery(dir: String, batch: [UInt8], config: LogConfig) throws {
        let target = Int64(recoveryGB * Self.gb)
        guard target + Int64(batch.count) <= Int64(Int32.max) else { throw ValidationError("--recovery-gb must be below 2") }
        var cfg = config
        cfg.segmentBytes = Int(Int32.max)
        let tp = TopicPartition("log-recovery", 0)
        let log = try Log(directory: dir, topicPartition: tp, config: cfg)
        while log.size < target { _ = try log.append(batch) }
        let leo = log.logEndOffset
        let size = log.size
        log.close()
        let segments = (try? FileManager.default.contentsOfDirectory(atPath: dir))?.filter { $0.hasSuffix(".log") }.count ?? 0
        print(String(format: "recovery: wrote %.2f GB (%d messages) in %d segment(s)", Double(size) / Self.gb, leo, segments))
        for cold in [false, true] {
            if cold {
                Self.dropCache(directory: dir)
                warmMemory(bytes: Int(size), dir: dir)
            }
            let start = DispatchTime.now().uptimeNanoseconds
            let reopened = try Log(directory: dir, topicPartition: tp, config: cfg, recoveryPoint: 0, cleanShutdown: false)
            let secs = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            guard reopened.logEndOffset == leo else {
                throw ToolError("recovery changed the log end offset from \(leo) to \(reopened.logEndOffset)")
            }
            reopened.close()
            print(String(format: "recovery (%@): %.2f GB unclean segment checked (sizes, CRCs, index rebuilt) in %.3f s: %.1f MB/s, %.0f msgs/s",
                         cold ? "cold: pages dropped first" : "hot: page cache", Double(size) / Self.gb, secs,
                         Double(size) / Self.mb / secs, Double(leo) / secs))
        }
    }
}
