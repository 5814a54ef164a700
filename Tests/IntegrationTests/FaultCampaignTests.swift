import Foundation
import KafkaTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A short fault campaign on every CI run: ZooKeeper and three brokers on network-namespace hosts,
/// one fault of every kind (kill -9, SIGSTOP, partition, Kafka port blocked, ZooKeeper stopped, full
/// log disk, failing fsync, failing writes, Jepsen's leader isolation) in an order drawn from a seed,
/// under steady acks=-1 and acks=1 load with RF 3, min.insync.replicas=2, unclean election off.
///
/// Needs root: network namespaces, veth, nftables and tmpfs. It fails (does not skip) without.
/// The seed is printed; KAFKA_FAULT_SEED=<n> replays a run (also `kafka-tools fault-campaign --seed n`).
final class FaultCampaignTests: XCTestCase {
    func testShortCampaignLosesNoAcknowledgedWrite() async throws {
        try Self.requireRoot()
        let releaseTools = ProjectPaths.releaseBinDir + "/kafka-tools"
        let releaseServer = ProjectPaths.releaseBinDir + "/kafka-server"
        for exe in [releaseTools, releaseServer] where !FileManager.default.isExecutableFile(atPath: exe) {
            XCTFail("\(exe) is missing: run `swift build -c release` first (bin/test.sh does)")
            return
        }
        var o = CampaignOptions()
        if let s = ProcessInfo.processInfo.environment["KAFKA_FAULT_SEED"], let seed = UInt64(s) {
            o.seed = seed
        } else {
            o.seed = UInt64(Date().timeIntervalSince1970 * 1000) % 1_000_000_007
        }
        o.kinds = FaultKind.allCases
        o.minFaults = FaultKind.allCases.count
        o.maxFaults = FaultKind.allCases.count
        o.durationSeconds = 0
        o.zkStopSeconds = 6
        o.recoveryLimit = 30
        let report = try await FaultCampaign(options: o).run()
        print(report.table)
        let replay = "replay with KAFKA_FAULT_SEED=\(o.seed), or by hand: \(o.replayCommand)"
        XCTAssertEqual(report.faults.count, FaultKind.allCases.count, replay)
        XCTAssertEqual(Set(report.faults.map(\.kind)), Set(FaultKind.allCases), replay)
        let all = try XCTUnwrap(report.acksAllCheck)
        XCTAssertGreaterThan(all.acknowledged, 100, "the acks=-1 writers got too few acknowledgements; \(replay)")
        XCTAssertEqual(all.lost.count, 0, "acknowledged acks=-1 writes lost: \(all.lost.prefix(10)); \(replay)")
        XCTAssertEqual(all.offsetConflicts.count, 0, "offset conflicts: \(all.offsetConflicts.prefix(10)); \(replay)")
        XCTAssertEqual(all.duplicated.count, 0, "duplicates: \(all.duplicated.prefix(10)); \(replay)")
        XCTAssertEqual(all.unexpected.count, 0, "values nobody wrote: \(all.unexpected.prefix(10)); \(replay)")
        XCTAssertTrue(report.replicasIdentical, "replicas differ up to the high watermark; \(replay)")
        XCTAssertEqual(report.problems, [], replay)
    }

    static func requireRoot() throws {
        guard geteuid() == 0 else {
            throw TestSupportError("FaultCampaignTests needs root (ip netns, veth, nftables, tmpfs); CI runs the suite as root. Not skipped on purpose: run as root.")
        }
    }
}
