import Foundation
import Synchronization
import XCTest
import KafkaLog
import KafkaProtocol

/// A `LogDirExecutor` that records which dir each job was for and runs it on a thread of its own,
/// or holds jobs until `release` (`held`), or refuses them like a stopped pool (`stopped`).
final class RecordingExecutor: LogDirExecutor, @unchecked Sendable {
    enum Mode { case run, held, stopped }
    private struct State {
        var mode: Mode
        var dirs: [String] = []
        var held: [@Sendable (Bool) -> Void] = []
    }
    private let state: Mutex<State>

    init(_ mode: Mode = .run) { state = Mutex(State(mode: mode)) }

    /// The dir of every job submitted so far, in order.
    var dirs: [String] { state.withLock { $0.dirs } }
    var heldCount: Int { state.withLock { $0.held.count } }

    func execute(inDir dir: String, _ work: @escaping @Sendable (Bool) -> Void) {
        let mode = state.withLock { st -> Mode in
            st.dirs.append(dir)
            if st.mode == .held { st.held.append(work) }
            return st.mode
        }
        switch mode {
        case .run: Thread { work(true) }.start()
        case .held: break
        case .stopped: work(false)
        }
    }

    /// Runs every held job (on the calling thread) and runs later ones at once.
    func release() {
        let jobs = state.withLock { st -> [@Sendable (Bool) -> Void] in
            st.mode = .run
            defer { st.held = [] }
            return st.held
        }
        for j in jobs { j(true) }
    }
}

/// The log layer's background work goes to the executor it is given, per log dir (issue 8: the
/// broker passes its I/O pools), and retention holds the log's write lock only to detach segments.
final class LogDirExecutorTests: LogTestCase {
    /// Recovery after an unclean stop runs on the executor, one job per dir, and `open` returns
    /// once every dir is loaded.
    func testOpenLoadsAndRecoversEachDirOnTheExecutor() async throws {
        let dirs = [tmp + "/d1", tmp + "/d2"]
        var m: LogManager? = try LogManager(logDirs: dirs, defaultConfig: LogConfig(), logger: logger)
        for p in 0..<4 {
            let log = try m!.getOrCreateLog(TopicPartition("t", Int32(p)))
            for i in 0..<(10 + p) { _ = try log.append(set(["v\(i)"])) }
        }
        m = nil   // no shutdown: no clean-shutdown marker, the next start recovers
        let executor = RecordingExecutor()
        let m2 = try await LogManager.open(logDirs: dirs, defaultConfig: LogConfig(), logger: logger, executor: executor)
        XCTAssertEqual(executor.dirs.sorted(), dirs, "one load job per dir")
        XCTAssertEqual(m2.allLogs.count, 4)
        for p in 0..<4 { XCTAssertEqual(m2.log(for: TopicPartition("t", Int32(p)))?.logEndOffset, Int64(10 + p)) }
        m2.shutdown()
    }

    /// A dir that fails to load fails `open`, and its lock is released.
    func testOpenFailsWhenTheExecutorHasStopped() async throws {
        let dir = tmp + "/d"
        do {
            _ = try await LogManager.open(logDirs: [dir], defaultConfig: LogConfig(), logger: logger,
                                          executor: RecordingExecutor(.stopped))
            XCTFail("open succeeded without loading")
        } catch {
            XCTAssertTrue("\(error)".contains(dir), "\(error)")
        }
        let m = try LogManager(logDirs: [dir], defaultConfig: LogConfig(), logger: logger)
        m.shutdown()
    }

    /// Retention detaches the segments (renamed `.deleted`) and returns; the files are removed
    /// after `file.delete.delay.ms` by a job on the log's dir's executor. Until that job runs,
    /// appends and reads go on.
    func testRetentionDetachesAndTheDelayedDeletionRunsOnTheDirsExecutorWhileAppendsProceed() throws {
        let dir = tmp + "/d"
        let executor = RecordingExecutor(.held)
        let cfg = config { $0.segmentBytes = 300; $0.retentionBytes = 600; $0.fileDeleteDelayMs = 50 }
        let m = try LogManager(logDirs: [dir], defaultConfig: cfg, logger: logger, executor: executor)
        let log = try m.getOrCreateLog(TopicPartition("r", 0))
        for i in 0..<60 { _ = try log.append(set(["value-\(i)-xxxxxxxxxx"])) }
        let before = executor.heldCount   // fsyncs after rolls
        XCTAssertGreaterThan(before, 0, "the fsync after a roll goes to the executor")
        let deleted = m.cleanupLogs()
        XCTAssertGreaterThan(deleted, 0)
        let partDir = dir + "/r-0"
        XCTAssertEqual(files(partDir).filter { $0.hasSuffix(".log.deleted") }.count, deleted)
        // The delay passes; the deletion is handed to the executor of the log's dir.
        let deadline = Date().addingTimeInterval(5)
        while executor.heldCount == before && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        XCTAssertEqual(executor.heldCount, before + 1, "one deletion job for the detached segments")
        XCTAssertEqual(Set(executor.dirs), [dir])
        // Meanwhile the log is not held: appends and reads go on.
        let start = log.logStartOffset
        XCTAssertGreaterThan(start, 0)
        for i in 60..<70 { XCTAssertEqual(try log.append(set(["more-\(i)"])).firstOffset, Int64(i)) }
        XCTAssertEqual(try readAll(log).map(\.offset), Array(start..<70))
        XCTAssertEqual(files(partDir).filter { $0.hasSuffix(".deleted") }.count, 2 * deleted, "files still there")
        executor.release()
        XCTAssertEqual(files(partDir).filter { $0.hasSuffix(".deleted") }, [], "removed by the job")
        m.shutdown()
    }

    /// A stopped executor (broker shutdown) leaves the `.deleted` files; the next load removes them.
    func testDeletionAfterTheExecutorStoppedIsLeftToTheNextLoad() throws {
        let dir = tmp + "/d"
        let cfg = config { $0.segmentBytes = 300; $0.retentionBytes = 0; $0.fileDeleteDelayMs = 20 }
        var m: LogManager? = try LogManager(logDirs: [dir], defaultConfig: cfg, logger: logger,
                                            executor: RecordingExecutor(.stopped))
        let log = try m!.getOrCreateLog(TopicPartition("r", 0))
        for i in 0..<30 { _ = try log.append(set(["value-\(i)-xxxxxxxxxx"])) }
        XCTAssertGreaterThan(m!.cleanupLogs(), 0)
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertFalse(files(dir + "/r-0").filter { $0.hasSuffix(".deleted") }.isEmpty)
        m!.shutdown()
        m = nil
        let m2 = try LogManager(logDirs: [dir], defaultConfig: cfg, logger: logger)
        XCTAssertEqual(files(dir + "/r-0").filter { $0.hasSuffix(".deleted") }, [])
        XCTAssertEqual(m2.log(for: TopicPartition("r", 0))?.logEndOffset, 30)
        m2.shutdown()
    }

    /// The periodic tasks run their work as jobs on the executor of each dir.
    func testBackgroundTasksRunOnTheExecutorOfEachDir() throws {
        let dirs = [tmp + "/d1", tmp + "/d2"]
        var settings = LogManagerSettings()
        settings.flushCheckIntervalMs = 30
        settings.recoveryPointCheckpointIntervalMs = 30
        settings.retentionCheckIntervalMs = 30
        let executor = RecordingExecutor()
        let m = try LogManager(logDirs: dirs, defaultConfig: config { $0.segmentBytes = 300; $0.fileDeleteDelayMs = 0; $0.flushMs = 10 },
                               topicOverrides: { _ in ["retention.bytes": "600"] },
                               logger: logger, settings: settings, executor: executor)
        let logs = try (0..<2).map { try m.getOrCreateLog(TopicPartition("r", Int32($0))) }
        XCTAssertNotEqual(m.logDir(for: logs[0].topicPartition), m.logDir(for: logs[1].topicPartition))
        for i in 0..<60 { for l in logs { _ = try l.append(set(["value-\(i)-xxxxxxxxxx"])) } }
        m.startBackgroundTasks()
        let deadline = Date().addingTimeInterval(10)
        func checkpointed(_ l: Log) -> Int64? {
            let d = m.logDir(for: l.topicPartition)!
            return (try? OffsetCheckpoint(path: d + "/recovery-point-offset-checkpoint").read())?[l.topicPartition]
        }
        func done() -> Bool { logs.allSatisfy { $0.logStartOffset > 0 && $0.recoveryPoint == 60 && checkpointed($0) == 60 } }
        while !done() && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertTrue(done(), "retention, flushes and checkpoints ran")
        for d in dirs { XCTAssertGreaterThanOrEqual(executor.dirs.filter { $0 == d }.count, 3, "jobs for \(d)") }
        m.shutdown()
        for d in dirs {
            XCTAssertTrue(FileManager.default.fileExists(atPath: d + "/.kafka_cleanshutdown"))
        }
    }
}
