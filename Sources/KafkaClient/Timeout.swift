import Synchronization

/// `withTimeout` ran out of time.
public struct TimeoutError: Error, CustomStringConvertible {
    public let milliseconds: Int
    public var description: String { "no answer within \(milliseconds) ms" }
}

/// Runs `body` in a task of its own and returns what it returns, or throws `TimeoutError` after
/// `ms` milliseconds. On a timeout the task is cancelled and not waited for: work that does not
/// notice cancellation (a ZooKeeper retry on an unreachable server) cannot hold up the caller.
public func withTimeout<T: Sendable>(ms: Int, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let work = Task { try await body() }
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            let pending = Mutex<CheckedContinuation<T, Error>?>(continuation)
            let resume = { @Sendable (result: Result<T, Error>) -> Bool in
                guard let c = pending.withLock({ p -> CheckedContinuation<T, Error>? in defer { p = nil }; return p }) else { return false }
                c.resume(with: result)
                return true
            }
            let timer = Task {
                try? await Task.sleep(nanoseconds: UInt64(max(ms, 1)) * 1_000_000)
                if !Task.isCancelled, resume(.failure(TimeoutError(milliseconds: ms))) { work.cancel() }
            }
            Task {
                let result = await work.result
                timer.cancel()
                _ = resume(result)
            }
        }
    } onCancel: {
        work.cancel()
    }
}
