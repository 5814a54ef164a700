import KafkaProtocol

/// The decisions of a group coordinator (Kafka 0.9's broker-side group membership: JoinGroup,
/// SyncGroup, Heartbeat, LeaveGroup, v0), as a value type: `handle` takes an event (a request,
/// with the time it arrived, or a clock tick) and returns the answers to send. No I/O, no clock,
/// no randomness: the caller (`GroupCoordinator` in KafkaServer) keeps the machine, feeds it and
/// carries out the answers; the tests drive it with tables.
///
/// Group state lives in memory on one broker, the coordinator every broker names (the live broker
/// with the lowest id); offsets are not kept here: OffsetCommit stores them in ZooKeeper, and asks
/// `checkCommit` whether a member's commit belongs to the current generation.
///
/// A group is in one phase:
/// - `empty`: no members (such a group is forgotten);
/// - `preparingRebalance`: waiting until every member has sent JoinGroup again, or until the
///   rebalance deadline (the largest session timeout of the members after the rebalance began),
///   when members that did not rejoin are dropped;
/// - `awaitingSync`: the join answers went out (the leader's with every member's metadata for the
///   chosen protocol); waiting for the leader's SyncGroup with the assignments;
/// - `stable`: every member has its assignment; heartbeats keep members alive.
/// A member joining or leaving, a known member rejoining, or a session expiring starts a rebalance;
/// members learn about it from REBALANCE_IN_PROGRESS on their heartbeat and join again.
public struct GroupCoordinatorMachine: Sendable {
    public typealias Token = UInt64

    public enum Phase: String, Sendable, Equatable { case empty, preparingRebalance, awaitingSync, stable }

    public struct GroupProtocol: Sendable, Equatable {
        public var name: String
        public var metadata: [UInt8]
        public init(_ name: String, _ metadata: [UInt8] = []) {
            self.name = name
            self.metadata = metadata
        }
    }

    public enum Event: Sendable, Equatable {
        case join(Token, group: String, memberId: String, clientId: String, sessionTimeoutMs: Int32,
                  protocolType: String, protocols: [GroupProtocol], nowMs: Int64)
        case sync(Token, group: String, generation: Int32, memberId: String, assignments: [String: [UInt8]], nowMs: Int64)
        case heartbeat(Token, group: String, generation: Int32, memberId: String, nowMs: Int64)
        case leave(Token, group: String, memberId: String, nowMs: Int64)
        /// Time passes: sessions expire, rebalance deadlines pass.
        case tick(nowMs: Int64)
        /// The coordinator stops: every waiting request is answered COORDINATOR_NOT_AVAILABLE.
        case shutdown
    }

    public struct JoinAnswer: Sendable, Equatable {
        public var error: Int16
        public var generation: Int32
        public var protocolName: String
        public var leaderId: String
        public var memberId: String
        /// Every member and its metadata for the chosen protocol, in the leader's answer only.
        public var members: [(memberId: String, metadata: [UInt8])]

        public init(error: Int16, generation: Int32 = -1, protocolName: String = "", leaderId: String = "",
                    memberId: String = "", members: [(memberId: String, metadata: [UInt8])] = []) {
            self.error = error
            self.generation = generation
            self.protocolName = protocolName
            self.leaderId = leaderId
            self.memberId = memberId
            self.members = members
        }

        public static func == (a: JoinAnswer, b: JoinAnswer) -> Bool {
            a.error == b.error && a.generation == b.generation && a.protocolName == b.protocolName
                && a.leaderId == b.leaderId && a.memberId == b.memberId
                && a.members.map(\.memberId) == b.members.map(\.memberId) && a.members.map(\.metadata) == b.members.map(\.metadata)
        }
    }

    public enum Action: Sendable, Equatable {
        case joinAnswer(Token, JoinAnswer)
        case syncAnswer(Token, error: Int16, assignment: [UInt8])
        case heartbeatAnswer(Token, error: Int16)
        case leaveAnswer(Token, error: Int16)

        public var token: Token {
            switch self {
            case let .joinAnswer(t, _), let .syncAnswer(t, _, _), let .heartbeatAnswer(t, _), let .leaveAnswer(t, _): return t
            }
        }
    }

    /// Error codes (Kafka's `Errors`).
    public typealias Code = GroupErrorCode

    struct Member: Sendable {
        var id: String
        var clientId: String
        var sessionTimeoutMs: Int32
        var protocolType: String
        var protocols: [GroupProtocol]
        var lastSeenMs: Int64
        var pendingJoin: Token?
        var pendingSync: Token?
        var assignment: [UInt8] = []
    }

    struct Group: Sendable {
        var phase: Phase = .empty
        var generation: Int32 = 0
        var protocolType: String = ""
        var protocolName: String = ""
        var leader: String?
        /// In join order.
        var members: [Member] = []
        var rebalanceDeadlineMs: Int64 = 0

        func index(_ id: String) -> Int? { members.firstIndex { $0.id == id } }
    }

    /// Kafka's `group.min.session.timeout.ms` / `group.max.session.timeout.ms`.
    public let minSessionTimeoutMs: Int32
    public let maxSessionTimeoutMs: Int32
    /// Part of every member id, so ids from an earlier coordinator never match new members.
    public let incarnation: String
    private var groups: [String: Group] = [:]
    private var nextMemberNumber: UInt64 = 1

    public init(incarnation: String, minSessionTimeoutMs: Int32 = 6_000, maxSessionTimeoutMs: Int32 = 300_000) {
        self.incarnation = incarnation
        self.minSessionTimeoutMs = minSessionTimeoutMs
        self.maxSessionTimeoutMs = maxSessionTimeoutMs
    }

    // MARK: Inspection (tests, OffsetCommit)

    public struct GroupSnapshot: Sendable, Equatable {
        public var phase: Phase
        public var generation: Int32
        public var protocolName: String
        public var leader: String?
        public var members: [String]
        public init(phase: Phase, generation: Int32, protocolName: String, leader: String?, members: [String]) {
            self.phase = phase
            self.generation = generation
            self.protocolName = protocolName
            self.leader = leader
            self.members = members
        }
    }

    public func snapshot(_ group: String) -> GroupSnapshot? {
        guard let g = groups[group] else { return nil }
        return GroupSnapshot(phase: g.phase, generation: g.generation, protocolName: g.protocolName, leader: g.leader, members: g.members.map(\.id))
    }

    public var groupCount: Int { groups.count }

    /// Whether an OffsetCommit (v1) from `memberId` in `generation` may be stored: commits outside
    /// group management (generation -1, as 0.8 clients send, some with a consumer id of their own,
    /// e.g. pykafka's balanced consumer) always may, as in 0.8.2; a commit naming a generation must
    /// come from a current member in the current generation.
    public func checkCommit(group: String, generation: Int32, memberId: String) -> Int16 {
        if generation < 0 { return Code.none }
        guard let g = groups[group], g.index(memberId) != nil else { return Code.illegalGeneration }
        return generation == g.generation ? Code.none : Code.illegalGeneration
    }

    // MARK: Events

    public mutating func handle(_ event: Event) -> [Action] {
        var out: [Action] = []
        switch event {
        case let .join(token, group, memberId, clientId, timeout, type, protocols, now):
            join(token, group, memberId, clientId, timeout, type, protocols, now, &out)
        case let .sync(token, group, generation, memberId, assignments, now):
            sync(token, group, generation, memberId, assignments, now, &out)
        case let .heartbeat(token, group, generation, memberId, now):
            out.append(.heartbeatAnswer(token, error: heartbeat(group, generation, memberId, now)))
        case let .leave(token, group, memberId, now):
            leave(token, group, memberId, now, &out)
        case let .tick(now):
            for name in groups.keys.sorted() { expire(name, now, &out) }
        case .shutdown:
            for name in groups.keys.sorted() {
                for m in groups[name]!.members {
                    if let t = m.pendingJoin { out.append(.joinAnswer(t, JoinAnswer(error: Code.coordinatorNotAvailable, memberId: m.id))) }
                    if let t = m.pendingSync { out.append(.syncAnswer(t, error: Code.coordinatorNotAvailable, assignment: [])) }
                }
            }
            groups = [:]
        }
        return out
    }

    private mutating func join(_ token: Token, _ name: String, _ memberId: String, _ clientId: String, _ timeout: Int32,
                               _ type: String, _ protocols: [GroupProtocol], _ now: Int64, _ out: inout [Action]) {
        func refuse(_ code: Int16) { out.append(.joinAnswer(token, JoinAnswer(error: code, memberId: memberId))) }
        if name.isEmpty { return refuse(Code.invalidGroupId) }
        if timeout < minSessionTimeoutMs || timeout > maxSessionTimeoutMs { return refuse(Code.invalidSessionTimeout) }
        var g = groups[name] ?? Group()
        if !memberId.isEmpty && g.index(memberId) == nil { return refuse(Code.unknownMemberId) }
        if type.isEmpty || protocols.isEmpty { return refuse(Code.inconsistentGroupProtocol) }
        // Another member's view counts only while it stays: the joining member itself is replaced.
        let others = g.members.filter { $0.id != memberId }
        if let first = others.first {
            if type != first.protocolType { return refuse(Code.inconsistentGroupProtocol) }
            let common = others.reduce(Set(first.protocols.map(\.name))) { $0.intersection($1.protocols.map(\.name)) }
            if common.isDisjoint(with: protocols.map(\.name)) { return refuse(Code.inconsistentGroupProtocol) }
        }
        let id: String
        if let i = g.index(memberId) {
            id = memberId
            let unchanged = g.members[i].protocols == protocols
            if let old = g.members[i].pendingJoin { out.append(.joinAnswer(old, JoinAnswer(error: Code.rebalanceInProgress, memberId: id))) }
            g.members[i].protocols = protocols
            g.members[i].sessionTimeoutMs = timeout
            g.members[i].lastSeenMs = now
            if g.phase == .stable && unchanged && g.leader != id {
                // Nothing changes for the group: the member gets the current generation again.
                out.append(.joinAnswer(token, JoinAnswer(error: Code.none, generation: g.generation, protocolName: g.protocolName,
                                                         leaderId: g.leader ?? "", memberId: id)))
                groups[name] = g
                return
            }
            g.members[i].pendingJoin = token
        } else {
            id = "\(clientId.isEmpty ? "member" : clientId)-\(incarnation)-\(nextMemberNumber)"
            nextMemberNumber += 1
            g.members.append(Member(id: id, clientId: clientId, sessionTimeoutMs: timeout, protocolType: type,
                                    protocols: protocols, lastSeenMs: now, pendingJoin: token))
        }
        g.protocolType = g.members.first?.protocolType ?? type
        prepareRebalance(&g, now, &out)
        completeJoinIfReady(&g, now, force: false, &out)
        store(name, g)
    }

    private mutating func sync(_ token: Token, _ name: String, _ generation: Int32, _ memberId: String,
                               _ assignments: [String: [UInt8]], _ now: Int64, _ out: inout [Action]) {
        func answer(_ code: Int16) { out.append(.syncAnswer(token, error: code, assignment: [])) }
        guard var g = groups[name], let i = g.index(memberId) else { return answer(Code.unknownMemberId) }
        if generation != g.generation { return answer(Code.illegalGeneration) }
        g.members[i].lastSeenMs = now
        switch g.phase {
        case .empty, .preparingRebalance:
            answer(Code.rebalanceInProgress)
        case .stable:
            out.append(.syncAnswer(token, error: Code.none, assignment: g.members[i].assignment))
        case .awaitingSync:
            if let old = g.members[i].pendingSync { out.append(.syncAnswer(old, error: Code.rebalanceInProgress, assignment: [])) }
            g.members[i].pendingSync = token
            if memberId == g.leader {
                for j in g.members.indices {
                    g.members[j].assignment = assignments[g.members[j].id] ?? []
                    if let t = g.members[j].pendingSync {
                        out.append(.syncAnswer(t, error: Code.none, assignment: g.members[j].assignment))
                        g.members[j].pendingSync = nil
                    }
                }
                g.phase = .stable
            }
        }
        groups[name] = g
    }

    private mutating func heartbeat(_ name: String, _ generation: Int32, _ memberId: String, _ now: Int64) -> Int16 {
        guard var g = groups[name], let i = g.index(memberId) else { return Code.unknownMemberId }
        if generation != g.generation { return Code.illegalGeneration }
        g.members[i].lastSeenMs = now
        groups[name] = g
        return g.phase == .preparingRebalance ? Code.rebalanceInProgress : Code.none
    }

    private mutating func leave(_ token: Token, _ name: String, _ memberId: String, _ now: Int64, _ out: inout [Action]) {
        guard var g = groups[name], let i = g.index(memberId) else {
            out.append(.leaveAnswer(token, error: Code.unknownMemberId))
            return
        }
        remove(&g, at: i, &out)
        out.append(.leaveAnswer(token, error: Code.none))
        afterRemoval(&g, now, &out)
        store(name, g)
    }

    /// Members whose session expired (not those waiting in a join: the rebalance deadline covers
    /// them), and a rebalance whose deadline passed.
    private mutating func expire(_ name: String, _ now: Int64, _ out: inout [Action]) {
        guard var g = groups[name] else { return }
        var removed = false
        while let i = g.members.firstIndex(where: { $0.pendingJoin == nil && now - $0.lastSeenMs > Int64($0.sessionTimeoutMs) }) {
            remove(&g, at: i, &out)
            removed = true
        }
        if removed { afterRemoval(&g, now, &out) }
        if g.phase == .preparingRebalance && now >= g.rebalanceDeadlineMs {
            completeJoinIfReady(&g, now, force: true, &out)
        }
        store(name, g)
    }

    private func remove(_ g: inout Group, at i: Int, _ out: inout [Action]) {
        let m = g.members.remove(at: i)
        if let t = m.pendingJoin { out.append(.joinAnswer(t, JoinAnswer(error: Code.unknownMemberId, memberId: m.id))) }
        if let t = m.pendingSync { out.append(.syncAnswer(t, error: Code.unknownMemberId, assignment: [])) }
        if g.leader == m.id { g.leader = nil }
    }

    private func afterRemoval(_ g: inout Group, _ now: Int64, _ out: inout [Action]) {
        if g.members.isEmpty {
            toEmpty(&g)
            return
        }
        prepareRebalance(&g, now, &out)
        completeJoinIfReady(&g, now, force: false, &out)
    }

    private func toEmpty(_ g: inout Group) {
        g.phase = .empty
        g.generation += 1
        g.leader = nil
        g.protocolName = ""
    }

    private func prepareRebalance(_ g: inout Group, _ now: Int64, _ out: inout [Action]) {
        if g.phase == .preparingRebalance { return }
        if g.phase == .awaitingSync {
            for j in g.members.indices {
                if let t = g.members[j].pendingSync { out.append(.syncAnswer(t, error: Code.rebalanceInProgress, assignment: [])) }
                g.members[j].pendingSync = nil
            }
        }
        g.phase = .preparingRebalance
        g.rebalanceDeadlineMs = now + Int64(g.members.map(\.sessionTimeoutMs).max() ?? 0)
    }

    /// Ends the join phase once every member has rejoined (or, `force`d at the deadline, without
    /// the members that did not).
    private func completeJoinIfReady(_ g: inout Group, _ now: Int64, force: Bool, _ out: inout [Action]) {
        guard g.phase == .preparingRebalance else { return }
        if !force && g.members.contains(where: { $0.pendingJoin == nil }) { return }
        while let i = g.members.firstIndex(where: { $0.pendingJoin == nil }) { remove(&g, at: i, &out) }
        if g.members.isEmpty { return toEmpty(&g) }
        g.generation += 1
        g.protocolName = Self.chooseProtocol(g.members)
        if g.leader == nil || g.index(g.leader!) == nil { g.leader = g.members[0].id }
        let leader = g.leader!
        let all = g.members.map { m in (memberId: m.id, metadata: m.protocols.first { $0.name == g.protocolName }?.metadata ?? []) }
        for j in g.members.indices {
            let m = g.members[j]
            out.append(.joinAnswer(m.pendingJoin!, JoinAnswer(error: Code.none, generation: g.generation, protocolName: g.protocolName,
                                                              leaderId: leader, memberId: m.id, members: m.id == leader ? all : [])))
            g.members[j].pendingJoin = nil
            g.members[j].lastSeenMs = now
            g.members[j].assignment = []
        }
        g.phase = .awaitingSync
    }

    /// Kafka's choice: among the protocols every member supports, the one most members list first
    /// (ties: the earlier in the first member's list).
    static func chooseProtocol(_ members: [Member]) -> String {
        guard let first = members.first else { return "" }
        let common = members.dropFirst().reduce(Set(first.protocols.map(\.name))) { $0.intersection($1.protocols.map(\.name)) }
        var votes: [String: Int] = [:]
        for m in members { if let pick = m.protocols.first(where: { common.contains($0.name) }) { votes[pick.name, default: 0] += 1 } }
        var best = ""
        var bestVotes = -1
        for p in first.protocols where common.contains(p.name) {
            let v = votes[p.name] ?? 0
            if v > bestVotes { best = p.name; bestVotes = v }
        }
        return best
    }

    private mutating func store(_ name: String, _ g: Group) {
        groups[name] = g.phase == .empty && g.members.isEmpty ? nil : g
    }
}
