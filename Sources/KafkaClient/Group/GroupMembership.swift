import KafkaProtocol

/// Why the group consumer stopped or could not start.
public enum GroupConsumerError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Rebalancing failed `rebalance.max.retries` times (0.8.2's ConsumerRebalanceFailedException text).
    case rebalanceFailed(String)
    /// The consumer id is registered by another live session.
    case alreadyRegistered(String)
    /// A fetch that retrying cannot fix (message larger than the fetch size, corrupt message).
    case fetchFailed(String)
    case shutDown

    public var description: String {
        switch self {
        case .rebalanceFailed(let s), .alreadyRegistered(let s), .fetchFailed(let s): return s
        case .shutDown: return "the consumer is shut down"
        }
    }
}

/// Why a fetch of one partition failed, as the fetcher reports it.
public enum FetchFailure: Sendable, Equatable {
    /// NotLeaderForPartition, UnknownTopicOrPartition, LeaderNotAvailable, or the leader's
    /// connection was lost: the leader must be looked up again.
    case leaderUnavailable
    /// OffsetOutOfRange: the position must be reset by `auto.offset.reset`.
    case offsetOutOfRange
    /// Retrying cannot help (a message larger than the fetch size, a corrupt message): the
    /// consumer stops and the iterator throws this text.
    case fatal(String)
}

/// What the group consumer learns: from ZooKeeper (through the actor that reads it), from its
/// fetchers and from its caller.
public enum GroupEvent: Sendable, Equatable {
    /// The caller subscribed: register and run the first rebalance.
    case started
    /// Our registration node is written.
    case registered
    /// Registering failed (a ZooKeeper error): retried like a failed rebalance attempt.
    case registrationFailed(String)
    /// Our consumer id is held by another live session (already waited out): the consumer stops.
    case registrationConflict(String)
    /// Children of `/consumers/<g>/ids` changed, or a subscribed topic's partitions did.
    case groupChanged
    /// Everything an assignment depends on, freshly read (the watches are set again).
    case groupRead(AssignmentContext)
    /// Reading the group failed (ZooKeeper error, unreadable registration).
    case groupReadFailed(String)
    /// Owner nodes were created for `claimed`; `conflicts` are held by another thread (its id, if readable).
    case claimResult(claimed: [TopicPartition], conflicts: [TopicPartition: String?])
    /// The owner nodes we waited on: `released` are gone now, the rest are still held.
    case ownersReleased([TopicPartition])
    /// Committed offsets of the claimed partitions (nil: none committed).
    case offsetsRead([TopicPartition: Int64?])
    case offsetsReadFailed(String)
    /// The backoff after a failed attempt is over.
    case backoffElapsed
    case fetchFailed(TopicPartition, FetchFailure)
    /// The ZooKeeper session expired: registration and owner nodes are gone.
    case sessionExpired
    /// A session is connected again after an expiry.
    case sessionReestablished
    case shutdown
}

/// What the actor must do, in order.
public enum GroupAction: Sendable, Equatable {
    /// Write the ephemeral registration.
    case register
    /// Read members, their registrations, topics and partitions (setting the watches).
    case readGroup
    /// Stop every fetcher and drop buffered, undelivered messages.
    case stopFetchers
    /// Commit the consumed positions of the partitions still owned.
    case commitOffsets
    /// Delete these owner nodes.
    case release([TopicPartition])
    /// Create owner nodes, partition → our thread id.
    case claim([TopicPartition: ConsumerThreadId])
    /// Wait (up to the time given) until these owner nodes are deleted by their holders.
    case awaitRelease([TopicPartition], timeoutMs: Int)
    case readOffsets([TopicPartition])
    /// Fetch these partitions from these positions (nil: reset by `auto.offset.reset`).
    case startFetchers([TopicPartition: Int64?])
    /// Feed `.backoffElapsed` after this long.
    case retryAfter(ms: Int)
    /// Look the leaders of these partitions up again and resume them after this long.
    case refreshLeaders([TopicPartition], afterMs: Int)
    /// Set these partitions' positions by `auto.offset.reset` and resume them.
    case resetOffsets([TopicPartition])
    /// The first rebalance (what `subscribe` waits for) succeeded.
    case reportReady
    /// The first rebalance (what `subscribe` waits for) cannot succeed: `subscribe` throws this.
    case reportGaveUp(GroupConsumerError)
    /// Stop consuming; the iterator throws this.
    case fail(String)
    /// Log a line (the decisions worth a line in the consumer's log).
    case log(String)
}

/// The ZooKeeper group consumer's membership as a value type (Kafka 0.8.2
/// `ZookeeperConsumerConnector`'s `ZKRebalancerListener` and session listener): it takes events
/// and returns actions, doing no I/O. One actor (`ZookeeperConsumer`) carries the actions out and
/// feeds back what they produced.
///
/// A rebalance attempt: stop fetchers → commit → release every owner node → read the group →
/// decide (`RebalanceDecision`) → claim owner nodes → read offsets → start fetchers. Beyond 0.8.2:
/// a claim that meets a node still held waits (up to `claimWaitMs`, in rounds) for its holder to
/// let go before the attempt fails, and a group change during an attempt restarts it from the
/// read instead of counting a failure; so a burst of joins converges without exhausting
/// `rebalance.max.retries`.
public struct GroupMembership: Sendable, Equatable {
    public enum Phase: Sendable, Equatable {
        case idle
        case registering
        case readingGroup
        case claiming
        case waitingForOwners
        case readingOffsets
        case stable
        case backingOff
        /// The session expired; waiting for a new one.
        case disconnected
        /// All retries failed: no partitions until the group changes again.
        case gaveUp
        case failed
        case shutDown
    }

    public struct Settings: Sendable, Equatable {
        public var strategy: PartitionAssignmentStrategy
        public var autoCommit: Bool
        public var maxRetries: Int
        public var backoffMs: Int
        public var refreshLeaderBackoffMs: Int
        /// How long one attempt may wait in total for owner nodes held by others.
        public var claimWaitMs: Int
        /// One wait round (the total is split in rounds, so a changed group is seen between them).
        public var claimWaitRoundMs: Int

        public init(strategy: PartitionAssignmentStrategy = .range, autoCommit: Bool = true, maxRetries: Int = 4,
                    backoffMs: Int = 2000, refreshLeaderBackoffMs: Int = 200, claimWaitMs: Int = 3000, claimWaitRoundMs: Int = 500) {
            self.strategy = strategy
            self.autoCommit = autoCommit
            self.maxRetries = maxRetries
            self.backoffMs = backoffMs
            self.refreshLeaderBackoffMs = refreshLeaderBackoffMs
            self.claimWaitMs = claimWaitMs
            self.claimWaitRoundMs = claimWaitRoundMs
        }

        public init(_ c: ZookeeperConsumerConfig) {
            self.init(strategy: c.partitionAssignmentStrategy, autoCommit: c.autoCommitEnable, maxRetries: c.rebalanceMaxRetries,
                      backoffMs: c.rebalanceBackoffMs, refreshLeaderBackoffMs: c.refreshLeaderBackoffMs,
                      claimWaitMs: max(c.rebalanceBackoffMs, 3000), claimWaitRoundMs: 500)
        }
    }

    public let consumerId: String
    public let settings: Settings
    public private(set) var phase: Phase = .idle
    /// Owner nodes that are ours and installed (fetching).
    public private(set) var owned: [TopicPartition: ConsumerThreadId] = [:]
    /// The decision being carried out, and what of it is claimed so far.
    public private(set) var decision: RebalanceDecision?
    public private(set) var claimed: [TopicPartition: ConsumerThreadId] = [:]
    /// The last decision installed (nil before the first and after a failed attempt).
    public private(set) var lastDecision: RebalanceDecision?
    /// Failed attempts in this run of retries.
    public private(set) var failures = 0
    /// A change arrived while an attempt was running: run (or restart) one after it.
    public private(set) var pendingChange = false
    /// `subscribe` is still waiting for the first rebalance.
    public private(set) var awaitingFirst = false
    /// Time already spent waiting on held owner nodes in this attempt.
    public private(set) var waitedMs = 0
    /// Registering again after a session expiry.
    public private(set) var renewingSession = false
    /// Rebalances that ended with partitions installed.
    public private(set) var completedRebalances = 0

    public init(consumerId: String, settings: Settings = Settings()) {
        self.consumerId = consumerId
        self.settings = settings
    }

    /// True while an attempt is between its start and its end (its I/O may be in flight).
    public var isRebalancing: Bool {
        switch phase {
        case .readingGroup, .claiming, .waitingForOwners, .readingOffsets: return true
        default: return false
        }
    }

    public mutating func handle(_ event: GroupEvent) -> [GroupAction] {
        if phase == .shutDown { return [] }
        switch event {
        case .started:
            guard phase == .idle else { return [] }
            phase = .registering
            awaitingFirst = true
            return [.register]

        case .registered:
            guard phase == .registering else { return [] }
            if renewingSession {
                renewingSession = false
                return [.log("[\(consumerId)], re-registered in a new ZooKeeper session")] + beginAttempt()
            }
            return beginAttempt()

        case .registrationFailed(let why):
            guard phase == .registering else { return [] }
            return attemptFailed("cannot register consumer \(consumerId): \(why)", reRegister: true)

        case .registrationConflict(let why):
            guard phase == .registering else { return [] }
            phase = .failed
            if awaitingFirst {
                awaitingFirst = false
                return [.reportGaveUp(.alreadyRegistered(why))]
            }
            return [.stopFetchers, .fail(why)]

        case .groupChanged:
            switch phase {
            case .stable, .gaveUp:
                failures = 0
                return beginAttempt()
            case .backingOff:
                // The retry is already scheduled; it will see the change.
                return []
            case .readingGroup, .claiming, .waitingForOwners, .readingOffsets, .registering:
                pendingChange = true
                return []
            default:
                return []
            }

        case .groupRead(let ctx):
            guard phase == .readingGroup else { return [] }
            // A change that arrived during the read is kept: it may have come after the read (its
            // watch was set by it), so this decision may already be stale.
            guard ctx.members[consumerId] != nil else {
                // Our node is gone (deleted by hand, or a new session not yet registered).
                phase = .registering
                return [.log("[\(consumerId)] not registered in the group; registering again"), .register]
            }
            let d: RebalanceDecision
            do { d = try RebalanceDecision.decide(ctx, strategy: settings.strategy) } catch {
                return attemptFailed("\(error)")
            }
            decision = d
            claimed = [:]
            waitedMs = 0
            if d.ownership.isEmpty { return claimsDone() }
            phase = .claiming
            return [.claim(d.ownership)]

        case .groupReadFailed(let why):
            guard phase == .readingGroup else { return [] }
            return attemptFailed(why)

        case .claimResult(let got, let conflicts):
            guard phase == .claiming, let d = decision else { return [] }
            for tp in got { if let t = d.ownership[tp] { claimed[tp] = t } }
            if conflicts.isEmpty { return claimsDone() }
            if pendingChange { return restartAttempt() }
            let round = min(settings.claimWaitRoundMs, settings.claimWaitMs - waitedMs)
            guard round > 0 else {
                let (tp, holder) = conflicts.min { $0.key < $1.key }!
                return attemptFailed("partition \(tp) is still owned by \((holder ?? nil) ?? "another consumer")")
            }
            waitedMs += round
            phase = .waitingForOwners
            return [.awaitRelease(conflicts.keys.sorted(), timeoutMs: round)]

        case .ownersReleased:
            guard phase == .waitingForOwners, let d = decision else { return [] }
            if pendingChange { return restartAttempt() }
            // Claim whatever is still missing (released nodes are free now; held ones conflict again).
            phase = .claiming
            return [.claim(d.ownership.filter { claimed[$0.key] == nil })]

        case .offsetsRead(let offsets):
            guard phase == .readingOffsets, let d = decision else { return [] }
            owned = claimed
            claimed = [:]
            decision = nil
            failures = 0
            if pendingChange {
                // Decided on a group that has changed since: no fetching, straight into the next attempt.
                var actions: [GroupAction] = [.log("[\(consumerId)] group changed during the rebalance; rebalancing again")]
                actions += beginAttempt()
                if awaitingFirst { awaitingFirst = false; actions.append(.reportReady) }
                return actions
            }
            lastDecision = d
            completedRebalances += 1
            phase = .stable
            let desc = d.partitionsByThread.sorted { $0.key < $1.key }
                .map { "\($0.key) -> \($0.value.map(\.description).joined(separator: ","))" }.joined(separator: "; ")
            var actions: [GroupAction] = [.log("[\(consumerId)], \(settings.strategy.rawValue) assignment: \(desc.isEmpty ? "none" : desc)")]
            if !owned.isEmpty {
                var starts: [TopicPartition: Int64?] = [:]
                for tp in owned.keys { starts[tp] = offsets[tp] ?? nil }
                actions.append(.startFetchers(starts))
            }
            if awaitingFirst {
                awaitingFirst = false
                actions.append(.reportReady)
            }
            return actions

        case .offsetsReadFailed(let why):
            guard phase == .readingOffsets else { return [] }
            return attemptFailed(why)

        case .backoffElapsed:
            if phase == .registering { return [.register] }
            guard phase == .backingOff else { return [] }
            return beginAttempt()

        case .fetchFailed(let tp, let failure):
            guard phase == .stable, owned[tp] != nil else { return [] }
            switch failure {
            case .leaderUnavailable: return [.refreshLeaders([tp], afterMs: settings.refreshLeaderBackoffMs)]
            case .offsetOutOfRange: return [.resetOffsets([tp])]
            case .fatal(let why):
                phase = .failed
                return [.stopFetchers, .fail(why)]
            }

        case .sessionExpired:
            guard phase != .idle, phase != .failed else { return [] }
            // The nodes went with the session; positions belong to that ownership (as in 0.8.2,
            // uncommitted progress is not committed: another member may own those partitions now).
            owned = [:]
            claimed = [:]
            decision = nil
            lastDecision = nil
            pendingChange = false
            phase = .disconnected
            return [.stopFetchers, .log("[\(consumerId)] ZooKeeper session expired; waiting for a new session")]

        case .sessionReestablished:
            guard phase == .disconnected else { return [] }
            phase = .registering
            failures = 0
            renewingSession = true
            return [.log("[\(consumerId)] connected in a new ZooKeeper session; registering again"), .register]

        case .shutdown:
            let wasOwned = Array(owned.keys).sorted() + Array(claimed.keys).sorted()
            var actions: [GroupAction] = [.stopFetchers]
            if settings.autoCommit && !owned.isEmpty { actions.append(.commitOffsets) }
            if !wasOwned.isEmpty { actions.append(.release(wasOwned)) }
            owned = [:]
            claimed = [:]
            decision = nil
            if awaitingFirst {
                awaitingFirst = false
                actions.append(.reportGaveUp(.shutDown))
            }
            phase = .shutDown
            return actions
        }
    }

    /// Starts an attempt: stop, commit while still owning, release, read the group.
    private mutating func beginAttempt() -> [GroupAction] {
        var actions: [GroupAction] = []
        if !owned.isEmpty {
            actions.append(.stopFetchers)
            if settings.autoCommit { actions.append(.commitOffsets) }
            actions.append(.release(owned.keys.sorted()))
        }
        owned = [:]
        lastDecision = nil
        pendingChange = false
        phase = .readingGroup
        actions.append(.readGroup)
        return actions
    }

    /// The group changed under an attempt: give back what this attempt claimed and read again
    /// (not a failure: the decision was made on stale membership).
    private mutating func restartAttempt() -> [GroupAction] {
        let mine = claimed.keys.sorted()
        claimed = [:]
        decision = nil
        pendingChange = false
        phase = .readingGroup
        var actions: [GroupAction] = [.log("[\(consumerId)] group changed during the rebalance; starting it over")]
        if !mine.isEmpty { actions.append(.release(mine)) }
        actions.append(.readGroup)
        return actions
    }

    private mutating func claimsDone() -> [GroupAction] {
        phase = .readingOffsets
        return [.readOffsets(claimed.keys.sorted())]
    }

    /// One attempt failed: release what it claimed, then back off or give up.
    private mutating func attemptFailed(_ why: String, reRegister: Bool = false) -> [GroupAction] {
        failures += 1
        let attempt = failures - 1
        var actions: [GroupAction] = [.log("[\(consumerId)], begin rebalancing consumer \(consumerId) try #\(attempt) failed: \(why)")]
        let mine = claimed.keys.sorted()
        if !mine.isEmpty { actions.append(.release(mine)) }
        claimed = [:]
        decision = nil
        lastDecision = nil
        if failures >= settings.maxRetries {
            failures = 0
            phase = reRegister ? .failed : .gaveUp
            let message = "\(consumerId) can't rebalance after \(settings.maxRetries) retries: \(why)"
            if awaitingFirst {
                awaitingFirst = false
                actions.append(.reportGaveUp(.rebalanceFailed(message)))
            } else {
                actions.append(.log(message))
            }
            return actions
        }
        phase = reRegister ? .registering : .backingOff
        // Registration retries go straight back to .register after the backoff.
        actions.append(.retryAfter(ms: settings.backoffMs))
        return actions
    }
}
