import Foundation
import KafkaTestSupport
import XCTest

/// Issue 7 item 10: Jepsen's 2013 scenario on network-namespace hosts (RF 3,
/// min.insync.replicas=2, unclean election off): the leader's Kafka port is cut so the ISR
/// shrinks to the leader, then the leader is isolated, then everything heals. Nothing
/// acknowledged with acks=-1 may be lost, and acks=-1 writes must be accepted again within 3 s
/// of the heal (this broker once took 9.5 s and more; Kafka 0.8.2.2 resumes at once).
final class HealAvailabilityTests: XCTestCase {
    func testItem10_AcksAllWritesResumeWithinThreeSecondsOfHealingALeaderIsolation() async throws {
        try FaultCampaignTests.requireRoot()
        var o = CampaignOptions()
        o.seed = ProcessInfo.processInfo.environment["KAFKA_FAULT_SEED"].flatMap(UInt64.init) ?? UInt64(Date().timeIntervalSince1970) % 1_000_003
        o.kinds = [.leaderIsolation]
        o.minFaults = 2
        o.maxFaults = 2
        o.durationSeconds = 0
        o.recoveryLimit = 30
        let report = try await FaultCampaign(options: o).run()
        print(report.table)
        let replay = "replay with KAFKA_FAULT_SEED=\(o.seed)"
        XCTAssertEqual(report.faults.count, 2, replay)
        for f in report.faults {
            let seconds = try XCTUnwrap(f.availability, "fault #\(f.index) never got acks=-1 writes accepted again; \(replay)")
            XCTAssertLessThanOrEqual(seconds, 3.0, "fault #\(f.index) (\(f.target)): acks=-1 writes resumed only \(seconds) s after the heal; \(replay)")
        }
        let all = try XCTUnwrap(report.acksAllCheck)
        XCTAssertEqual(all.lost.count, 0, "acknowledged acks=-1 writes lost: \(all.lost.prefix(10)); \(replay)")
        XCTAssertEqual(all.offsetConflicts.count, 0, replay)
        XCTAssertTrue(report.replicasIdentical, replay)
    }
}
