import Foundation
import Logging
import ZooKeeper

/// How long a ZooKeeper operation is retried (zkclient's `retryUntilConnected`, which Kafka 0.8.2
/// wraps around every call it makes).
public enum ZkRetryScope: Sendable, Equatable {
    /// Only while the session the operation started on is alive: its result (a watch, an ephemeral
    /// node, a decision taken on what it read) belongs to that session. The controller's scope: on
    /// session expiry it resigns and is elected again on the new session.
    case session
    /// Across sessions, until it succeeds or the caller stops (the broker's re-registration).
    case anySession
}

/// What to do after a failed ZooKeeper operation: a pure decision, table-tested.
public enum ZkRetryDecision: Sendable, Equatable {
    case retry(afterMs: Int)
    case fail
}

public enum ZkRetryPolicy {
    public static let initialBackoffMs = 50
    public static let maxBackoffMs = 1000

    /// Backoff before retry number `attempt` (0-based): doubling from 50 ms, at most 1 s.
    public static func backoffMs(attempt: Int) -> Int {
        min(maxBackoffMs, initialBackoffMs << min(max(attempt, 0), 10))
    }

    /// Connection loss and operation timeouts are retried while the session lasts (the server
    /// keeps the session, its ephemeral nodes and watches through a short disconnection); an
    /// expired session ends a `.session` retry; a closed client or a stopped caller ends every
    /// retry; any other error (no node, bad version, bad data) is an answer, not a failure to
    /// reach ZooKeeper, and goes to the caller.
    public static func decide(_ error: Error, attempt: Int, scope: ZkRetryScope, sessionChanged: Bool,
                              stopped: Bool) -> ZkRetryDecision {
        if stopped || error is CancellationError { return .fail }
        guard let zkError = error as? ZooKeeperError else { return .fail }
        switch zkError {
        case .connectionLoss, .operationTimeout:
            if scope == .session && sessionChanged { return .fail }
            return .retry(afterMs: backoffMs(attempt: attempt))
        case .sessionExpired:
            return scope == .anySession ? .retry(afterMs: backoffMs(attempt: attempt)) : .fail
        case .closed:
            return .fail
        default:
            return .fail
        }
    }
}

extension KafkaZooKeeper {
    /// Runs `operation`, retrying it as `ZkRetryPolicy` decides. With `.session` scope, a
    /// connection loss that outlives the session is reported as `.sessionExpired`.
    /// `stopped` is polled before every retry (a shutting-down broker stops retrying).
    public func retrying<T: Sendable>(_ what: @autoclosure () -> String, scope: ZkRetryScope = .session, logger: Logger? = nil,
                                      stopped: () -> Bool = { false },
                                      isolation: isolated (any Actor)? = #isolation,
                                      _ operation: () async throws -> T) async throws -> T {
        let session = zk.sessionId
        var attempt = 0
        while true {
            // A retry never runs on a newer session than the one the operation started on.
            if attempt > 0, scope == .session, zk.sessionId != session { throw ZooKeeperError.sessionExpired }
            do {
                return try await operation()
            } catch {
                let changed = zk.sessionId != session || session == 0
                switch ZkRetryPolicy.decide(error, attempt: attempt, scope: scope, sessionChanged: changed,
                                            stopped: stopped() || Task.isCancelled) {
                case .fail:
                    if scope == .session, changed, error as? ZooKeeperError == .connectionLoss || error as? ZooKeeperError == .operationTimeout {
                        throw ZooKeeperError.sessionExpired
                    }
                    throw error
                case .retry(let ms):
                    if attempt == 0 || attempt % 10 == 0 {
                        logger?.warning("\(what()) failed (\(error)); retrying (attempt \(attempt + 1), backoff \(ms) ms)")
                    }
                    attempt += 1
                    try await Task.sleep(nanoseconds: UInt64(ms) * 1_000_000)
                }
            }
        }
    }
}
