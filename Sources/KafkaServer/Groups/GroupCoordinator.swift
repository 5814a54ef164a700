import Dispatch
import KafkaCluster
import KafkaProtocol

/// Carries out `GroupCoordinatorMachine`'s decisions for the group APIs (JoinGroup, SyncGroup,
/// Heartbeat, LeaveGroup, v0): each request becomes an event with the time it arrived, and waits
/// (suspended, never blocking a thread) until the machine answers it, which for JoinGroup and
/// SyncGroup may be on a later request or tick. A tick every 100 ms expires sessions and rebalance
/// deadlines; it runs only while some group exists.
///
/// Which broker coordinates: every broker names the live broker with the lowest id (from the
/// controller's UpdateMetadata, that is from `/brokers/ids`), so all agree; group requests to any
/// other broker get NOT_COORDINATOR (16) and the client asks FindCoordinator again. Group state is
/// in memory: when the coordinator changes, members join the new one afresh. Offsets stay in
/// ZooKeeper (`/consumers/<g>/offsets/<t>/<p>`), written by OffsetCommit, so 0.8 tools read them.
actor GroupCoordinator {
    typealias Machine = GroupCoordinatorMachine
    nonisolated let brokerId: Int32
    nonisolated let metadataCache: MetadataCache
    private var machine: Machine
    private var waiting: [Machine.Token: CheckedContinuation<Machine.Action, Never>] = [:]
    private var nextToken: Machine.Token = 1
    private var ticking = false
    static let tickMs: UInt64 = 100

    init(brokerId: Int32, metadataCache: MetadataCache) {
        self.brokerId = brokerId
        self.metadataCache = metadataCache
        let random = UInt32.random(in: 0...UInt32.max)
        let hex = String(random, radix: 16)
        machine = Machine(incarnation: String(repeating: "0", count: 8 - hex.count) + hex)
    }

    /// The coordinator every broker names (nil until this broker has metadata).
    nonisolated var coordinator: BrokerEndpoint? { metadataCache.liveBrokers.first }

    /// Why this broker cannot answer a group request, or nil when it is the coordinator.
    nonisolated var notServing: Int16? {
        guard let c = coordinator else { return GroupErrorCode.coordinatorNotAvailable }
        return c.id == brokerId ? nil : GroupErrorCode.notCoordinator
    }

    static var nowMs: Int64 { Int64(DispatchTime.now().uptimeNanoseconds / 1_000_000) }

    /// Feeds the event built around a fresh token and waits for that token's answer.
    func submit(_ make: @Sendable (Machine.Token, Int64) -> Machine.Event) async -> Machine.Action {
        let token = nextToken
        nextToken += 1
        let event = make(token, Self.nowMs)
        return await withCheckedContinuation { (c: CheckedContinuation<Machine.Action, Never>) in
            waiting[token] = c
            run(machine.handle(event))
            startTicking()
        }
    }

    /// OffsetCommit v1's check (see `GroupCoordinatorMachine.checkCommit`).
    func checkCommit(group: String, generation: Int32, memberId: String) -> Int16 {
        machine.checkCommit(group: group, generation: generation, memberId: memberId)
    }

    private func run(_ actions: [Machine.Action]) {
        for a in actions { waiting.removeValue(forKey: a.token)?.resume(returning: a) }
    }

    private func tick() -> Bool {
        run(machine.handle(.tick(nowMs: Self.nowMs)))
        if machine.groupCount == 0 && waiting.isEmpty {
            ticking = false
            return false
        }
        return true
    }

    private func startTicking() {
        guard !ticking else { return }
        ticking = true
        Task { [weak self] in
            while true {
                try? await Task.sleep(nanoseconds: Self.tickMs * 1_000_000)
                guard let self, await self.tick() else { return }
            }
        }
    }
}
