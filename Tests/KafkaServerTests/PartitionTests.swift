import Foundation
import KafkaLog
import KafkaProtocol
import KafkaServer
import Logging
import XCTest
import Synchronization

/// Leadership, appends and ISR decisions of one partition, without sockets or ZooKeeper
/// (issue 7 items 4 and 9).
final class PartitionTests: XCTestCase {
    var tmp = ""
    let tp = TopicPartition("t", 0)

    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "partition-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    func makePartition(localBroker: Int32 = 1, config: LogConfig = LogConfig()) throws -> Partition {
        let log = try Log(directory: tmp + "/t-0", topicPartition: tp, config: config, logger: Logger(label: "test"))
        return Partition(topicPartition: tp, log: log, localBrokerId: localBroker, highWatermark: 0)
    }

    func state(leader: Int32, epoch: Int32, isr: [Int32], zkVersion: Int32, replicas: [Int32] = [1, 2, 3]) -> PartitionStateInfo {
        PartitionStateInfo(topic: tp.topic, partition: tp.partition, controllerEpoch: 1, leader: leader, leaderEpoch: epoch,
                           isr: isr, zkVersion: zkVersion, replicas: replicas)
    }

    func messages(_ n: Int, size: Int = 10) -> [UInt8] {
        let payload = [UInt8](repeating: 0x61, count: size)
        return try! MessageSetBuilder.build((0..<n).map { _ in (key: nil, value: payload) }, codec: .none)
    }

    // MARK: item 4

    /// Leader appends race with a LeaderAndIsr that makes this broker a follower: once
    /// `applyLeadership` returned, no leader append may land (two replicas would otherwise hold
    /// different messages at one offset after the follower truncates and fetches).
    func testItem4_NoLeaderAppendLandsAfterBecomingFollower() throws {
        let p = try makePartition()
        let rounds = 300
        for round in 0..<rounds {
            let epoch = Int32(2 * round)
            XCTAssertTrue(p.applyLeadership(state(leader: 1, epoch: epoch, isr: [1], zkVersion: epoch), nowMs: 0))
            let stop = ManagedAtomicFlag()
            let one = messages(1)
            let appender = Thread {
                while !stop.isSet { _ = p.appendAsLeader(one, requiredAcks: 1) }
            }
            appender.start()
            usleep(UInt32.random(in: 50...400))
            XCTAssertTrue(p.applyLeadership(state(leader: 2, epoch: epoch + 1, isr: [2], zkVersion: epoch + 1), nowMs: 0))
            let endWhenDemoted = p.log.logEndOffset
            usleep(300)
            stop.set()
            while !appender.isFinished { usleep(50) }
            XCTAssertEqual(p.log.logEndOffset, endWhenDemoted, "round \(round): a leader append landed after the demotion")
            if p.log.logEndOffset != endWhenDemoted { return }
            guard case .failed(.notLeaderForPartition) = p.appendAsLeader(messages(1), requiredAcks: 1) else {
                return XCTFail("a follower accepted a leader append")
            }
        }
    }

    func testItem4_MinInsyncReplicasIsCheckedUnderTheAppend() throws {
        var cfg = LogConfig()
        cfg.minInsyncReplicas = 2
        let p = try makePartition(config: cfg)
        XCTAssertTrue(p.applyLeadership(state(leader: 1, epoch: 0, isr: [1], zkVersion: 0), nowMs: 0))
        guard case .failed(.notEnoughReplicas) = p.appendAsLeader(messages(1), requiredAcks: -1) else { return XCTFail("acks=-1 with ISR 1 < 2 accepted") }
        XCTAssertEqual(p.log.logEndOffset, 0)
        guard case .appended = p.appendAsLeader(messages(1), requiredAcks: 1) else { return XCTFail("acks=1 refused") }
        XCTAssertTrue(p.applyLeadership(state(leader: 1, epoch: 1, isr: [1, 2], zkVersion: 1), nowMs: 0))
        guard case .appended(_, let epoch) = p.appendAsLeader(messages(1), requiredAcks: -1) else { return XCTFail("acks=-1 with ISR 2 refused") }
        XCTAssertEqual(epoch, 1)
        XCTAssertTrue(p.isLeader(inEpoch: 1))
        XCTAssertFalse(p.isLeader(inEpoch: 0), "an acks=-1 produce appended in epoch 0 must not complete in epoch 1")
    }

    // MARK: item 9

    /// A broker that just became leader does not know where its followers are; it must not take
    /// "unknown" for offset 0 and drop caught-up followers from the ISR as lagging by messages.
    func testItem9_NewLeaderDoesNotShrinkFollowersWithUnknownPositions() throws {
        let p = try makePartition()
        XCTAssertTrue(p.applyLeadership(state(leader: 2, epoch: 0, isr: [1, 2, 3], zkVersion: 0), nowMs: 0))
        _ = try p.appendAsFollower(messages(5000), fetchOffset: 0)
        XCTAssertTrue(p.applyLeadership(state(leader: 1, epoch: 1, isr: [1, 2, 3], zkVersion: 1), nowMs: 1000))
        // Table: (now, follower fetches so far) -> expected ISR change.
        XCTAssertNil(p.proposeIsrShrink(nowMs: 1500, lagTimeMs: 10_000, lagMaxMessages: 4000),
                     "followers that have not fetched yet are judged by time only")
        _ = p.recordFollowerFetch(replica: 2, offset: 5000, nowMs: 2000)
        XCTAssertNil(p.proposeIsrShrink(nowMs: 2500, lagTimeMs: 10_000, lagMaxMessages: 4000))
        // Replica 3 never fetches: after the lag time it is out; replica 2, caught up, stays.
        let change = p.proposeIsrShrink(nowMs: 11_500, lagTimeMs: 10_000, lagMaxMessages: 4000)
        XCTAssertEqual(change?.newIsr, [1, 2])
        XCTAssertEqual(change?.leaderEpoch, 1)
        XCTAssertEqual(change?.zkVersion, 1)
    }

    /// While an ISR expansion is being written, the HW waits for the replica being added: once
    /// ZooKeeper holds the larger ISR the controller may elect that replica, so an acks=-1 append
    /// answered on the old ISR alone could be lost (ReassignPartitionsTests lost acknowledged
    /// messages that way in a full move).
    func testHighWatermarkWaitsForTheReplicaAnExpansionAdds() throws {
        let p = try makePartition()
        XCTAssertTrue(p.applyLeadership(state(leader: 1, epoch: 4, isr: [1], zkVersion: 7, replicas: [1, 2]), nowMs: 0))
        guard case .appended = p.appendAsLeader(messages(3), requiredAcks: -1) else { return XCTFail("append refused") }
        XCTAssertEqual(p.highWatermark, 3, "ISR {1}: the leader alone moves the HW")
        let (_, expand) = p.recordFollowerFetch(replica: 2, offset: 3, nowMs: 0)
        let change = try XCTUnwrap(expand)
        XCTAssertEqual(change.newIsr, [1, 2])
        // The write is in flight: appends now wait for replica 2.
        guard case .appended = p.appendAsLeader(messages(2), requiredAcks: -1) else { return XCTFail("append refused") }
        XCTAssertEqual(p.highWatermark, 3, "the HW must not pass replica 2 while {1, 2} is being written")
        _ = p.recordFollowerFetch(replica: 2, offset: 5, nowMs: 0)
        XCTAssertEqual(p.highWatermark, 5)
        XCTAssertFalse(p.finishIsrChange(change, newZkVersion: 8))
        XCTAssertEqual(p.isr, [1, 2])
    }

    /// An ISR expansion decided as leader is written against the znode version and epoch it was
    /// decided under; once a LeaderAndIsr demoted the broker it neither applies nor blocks.
    func testItem9_IsrChangeFromBeforeADemotionIsNotApplied() throws {
        let p = try makePartition()
        XCTAssertTrue(p.applyLeadership(state(leader: 1, epoch: 4, isr: [1], zkVersion: 7), nowMs: 0))
        guard case .appended = p.appendAsLeader(messages(3), requiredAcks: 1) else { return XCTFail("append refused") }
        let (_, expand) = p.recordFollowerFetch(replica: 2, offset: 3, nowMs: 0)
        let change = try XCTUnwrap(expand)
        XCTAssertEqual(change.newIsr, [1, 2])
        XCTAssertEqual(change.leaderEpoch, 4)
        XCTAssertEqual(change.zkVersion, 7)
        // The controller moves leadership to 2 (znode version 8) before the write completes.
        XCTAssertTrue(p.applyLeadership(state(leader: 2, epoch: 5, isr: [2, 3], zkVersion: 8), nowMs: 0))
        XCTAssertFalse(p.finishIsrChange(change, newZkVersion: 9))
        XCTAssertEqual(p.isr, [2, 3])
        XCTAssertEqual(p.zkVersion, 8)
        // Leader again: ISR changes are possible again (nothing stuck "in flight").
        XCTAssertTrue(p.applyLeadership(state(leader: 1, epoch: 6, isr: [1], zkVersion: 10), nowMs: 0))
        let (_, again) = p.recordFollowerFetch(replica: 3, offset: p.log.logEndOffset, nowMs: 0)
        XCTAssertEqual(again?.zkVersion, 10)
        XCTAssertEqual(again?.leaderEpoch, 6)
        XCTAssertFalse(p.finishIsrChange(again!, newZkVersion: 11))   // HW does not move: follower 3 was at the end
        XCTAssertEqual(p.isr, [1, 3])
    }

    /// A failed conditional write frees the partition for the next proposal.
    func testItem9_FailedIsrWriteAllowsTheNextChange() throws {
        let p = try makePartition()
        XCTAssertTrue(p.applyLeadership(state(leader: 1, epoch: 0, isr: [1, 2], zkVersion: 0), nowMs: 0))
        let shrink = try XCTUnwrap(p.proposeIsrShrink(nowMs: 20_000, lagTimeMs: 10_000, lagMaxMessages: 4000))
        XCTAssertNil(p.proposeIsrShrink(nowMs: 20_000, lagTimeMs: 10_000, lagMaxMessages: 4000), "one change at a time")
        XCTAssertFalse(p.finishIsrChange(shrink, newZkVersion: nil))
        XCTAssertEqual(p.isr, [1, 2])
        XCTAssertEqual(p.proposeIsrShrink(nowMs: 20_000, lagTimeMs: 10_000, lagMaxMessages: 4000)?.newIsr, [1])
    }
}

/// A flag shared between the test thread and an appender thread.
final class ManagedAtomicFlag: @unchecked Sendable {
    private struct State {
        var value = false
    }
    private let state = Mutex(State())
    var isSet: Bool { state.withLock { st in st.value } }
    func set() { state.withLock { st in st.value = true } }
}

/// The high-watermark checkpoint before any LeaderAndIsr arrived (issue 7 item 9).
final class HighWatermarkCheckpointTests: XCTestCase {
    /// A restarted broker writes its checkpoint every few seconds; until the controller names its
    /// partitions it hosts none. That write must keep the high watermarks read at start: written
    /// empty, a second quick crash would start every partition at high watermark 0 and followers
    /// would truncate their whole logs.
    func testItem9_CheckpointBeforeLeaderAndIsrKeepsTheHighWatermarksReadAtStart() throws {
        let dir = NSTemporaryDirectory() + "hwcheckpoint-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let logger = Logger(label: "test")
        let tp = TopicPartition("t", 0)
        do {
            let manager = try LogManager(logDirs: [dir], defaultConfig: LogConfig(), logger: logger)
            let log = try manager.getOrCreateLog(tp)
            _ = try log.append(MessageSetBuilder.build((0..<7).map { _ in (key: nil, value: Array("v".utf8)) }, codec: .none))
            manager.shutdown()
        }
        let checkpoint = OffsetCheckpoint(path: dir + "/replication-offset-checkpoint")
        try checkpoint.write([tp: 7, TopicPartition("gone", 0): 3])

        let manager = try LogManager(logDirs: [dir], defaultConfig: LogConfig(), logger: logger)
        defer { manager.shutdown() }
        let replicas = ReplicaManager(brokerId: 1, logManager: manager, logDirs: [dir], logger: logger)
        replicas.checkpointHighWatermarks()
        XCTAssertEqual(try checkpoint.read(), [tp: 7], "the hosted log keeps its high watermark; a partition without a log is dropped")
    }
}
