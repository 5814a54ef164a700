import KafkaCluster
import KafkaProtocol
import Logging
import ZooKeeper

/// Pipelined partition-state writes: a failover or topic creation over thousands of partitions
/// is a few batches of in-flight ZooKeeper requests, not thousands of sequential round trips.
/// Every write stays conditional (create fails if the node exists, update names the version
/// read), so pipelining changes no outcome, only the waiting.
extension KafkaController {
    /// Requests in flight at once (the client pipelines them on its one connection).
    static let stateWriteConcurrency = 256

    struct StateWriteOutcome: Sendable {
        var failed: [TopicPartition] = []
        var followUps: [ControllerEvent] = []
    }

    private enum WriteResult: Sendable {
        case done
        case conflict(TopicPartition, VersionedLeaderIsr?)
        case failed(TopicPartition)
    }

    /// The contiguous `createState`/`updateState` actions starting at `start`, each for a
    /// different partition (a second write of one partition ends the run: it must wait for the first).
    static func stateWriteRun(_ actions: [ControllerAction], from start: Int) -> ArraySlice<ControllerAction> {
        var seen = Set<TopicPartition>()
        var end = start
        while end < actions.endIndex {
            let tp: TopicPartition
            switch actions[end] {
            case let .createState(p, _): tp = p
            case let .updateState(p, _, _): tp = p
            default: return actions[start..<end]
            }
            guard seen.insert(tp).inserted else { break }
            end += 1
        }
        return actions[start..<end]
    }

    /// Runs the writes with up to `stateWriteConcurrency` in flight, each as the sequential
    /// executor would (retried on connection loss within the election's session): a lost race
    /// becomes a `.stateConflict` follow-up, another non-fatal failure is logged, and either
    /// marks the partition failed (its sends are skipped). A fatal error (session gone,
    /// shutdown) ends the whole run.
    func writeStates(_ writes: ArraySlice<ControllerAction>) async throws -> StateWriteOutcome {
        let zk = self.zk
        let logger = self.logger
        let pinned = currentSession
        let stopped: @Sendable () -> Bool = { self.isStopped }
        var outcome = StateWriteOutcome()
        let started = ContinuousClock.now
        defer {
            if writes.count >= 1000 {
                logger.info("Wrote \(writes.count) partition states in \(Self.millis(since: started)) ms (\(outcome.followUps.count) lost races, \(outcome.failed.count) failed)")
            }
        }
        try await withThrowingTaskGroup(of: WriteResult.self) { group in
            var next = writes.startIndex
            func addOne() {
                guard next < writes.endIndex else { return }
                let action = writes[next]
                next += 1
                group.addTask { try await Self.writeState(action, zk: zk, session: pinned, logger: logger, stopped: stopped) }
            }
            for _ in 0..<Self.stateWriteConcurrency { addOne() }
            while let result = try await group.next() {
                switch result {
                case .done: break
                case let .conflict(tp, fresh):
                    outcome.failed.append(tp)
                    outcome.followUps.append(.stateConflict(tp, fresh))
                case let .failed(tp):
                    outcome.failed.append(tp)
                }
                addOne()
            }
        }
        return outcome
    }

    private static func writeState(_ action: ControllerAction, zk: KafkaZooKeeper, session: Int64, logger: Logger,
                                   stopped: @escaping @Sendable () -> Bool) async throws -> WriteResult {
        /// `zkCall` outside the actor: pinned to the election's session, retried on connection loss.
        func call<T: Sendable>(_ what: String, _ operation: () async throws -> T) async throws -> T {
            guard session != 0, zk.sessionId == session else { throw ZooKeeperError.sessionExpired }
            let result = try await zk.retrying(what, scope: .session, logger: logger, stopped: stopped, operation)
            guard zk.sessionId == session else { throw ZooKeeperError.sessionExpired }
            return result
        }
        switch action {
        case let .createState(tp, state):
            do {
                try await call("Creating the state of \(tp)") { try await zk.createPartitionState(tp, state) }
                return .done
            } catch ZooKeeperError.nodeExists {
                let fresh = try await call("Reading the state of \(tp)") { try await zk.partitionState(tp) }
                // Our own write, when a retry after a connection loss finds it done.
                if let fresh, fresh.state == state, fresh.zkVersion == 0 { return .done }
                return .conflict(tp, fresh)
            } catch where !isFatal(error) {
                logger.error("Cannot create state of \(tp): \(error)")
                return .failed(tp)
            }
        case let .updateState(tp, state, expected):
            do {
                if try await call("Updating the state of \(tp)", { try await zk.updatePartitionState(tp, state, expectedVersion: expected) }) == nil {
                    return .conflict(tp, try await call("Reading the state of \(tp)") { try await zk.partitionState(tp) })
                }
                return .done
            } catch where !isFatal(error) {
                logger.error("Cannot update state of \(tp): \(error)")
                return .failed(tp)
            }
        default:
            return .done
        }
    }

    static func millis(since start: ContinuousClock.Instant) -> Int64 {
        let d = ContinuousClock.now - start
        return d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
    }

    private static func isFatal(_ error: Error) -> Bool {
        ControllerFaultPolicy.decide(error, phase: .event) != .logAndContinue
    }
}
