import CZooKeeperShim
import Logging
import Synchronization

// Bridging between the C client's threads and Swift concurrency.
//
// * Every open C handle has one `HandleContext`, passed retained as the event context and released
//   when the handle's asynchronous close has finished (no callback can run after that).
// * Every submitted operation has one `PendingOperation`, passed retained as the callback context.
//   The C client calls the callback exactly once if (and only if) submission succeeded; the callback
//   consumes the retain and resumes the continuation. Operations still registered when the handle's
//   close has finished (none are expected) are resumed with ZKS_CLOSING and their retain released.

/// The C handle pointer. The multi-threaded C client is thread-safe per handle; the client guards the
/// pointer's lifetime with its state lock.
struct HandleRef: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// The raw outcome of one C operation.
struct RawResult: Sendable {
    var code: Int32
    var data: [UInt8]? = nil
    var stat: ZNodeStat? = nil
    var strings: [String] = []

    func check(_ path: String) throws {
        if code != ZKS_OK.rawValue { throw ZooKeeperError.from(code: code, path: path) }
    }
}

final class HandleContext: Sendable {
    weak let client: ZooKeeperClient?
    let generation: UInt64
    private let pending = Mutex<(next: UInt64, ops: [UInt64: PendingOperation])>((0, [:]))

    init(client: ZooKeeperClient, generation: UInt64) {
        self.client = client
        self.generation = generation
    }

    func register(_ continuation: CheckedContinuation<RawResult, Never>) -> PendingOperation {
        pending.withLock { state in
            state.next += 1
            let op = PendingOperation(id: state.next, owner: self, continuation: continuation)
            state.ops[op.id] = op
            return op
        }
    }

    /// Removes the operation; true if it was still registered (the caller then owns its completion).
    func unregister(_ id: UInt64) -> Bool {
        pending.withLock { $0.ops.removeValue(forKey: id) } != nil
    }

    /// After the handle is fully closed: completes whatever the C client never called back.
    func sweepAfterClose() {
        let leftovers = pending.withLock { state -> [PendingOperation] in
            let ops = Array(state.ops.values)
            state.ops.removeAll()
            return ops
        }
        for op in leftovers {
            Unmanaged.passUnretained(op).release()   // the retain handed to C
            op.continuation.resume(returning: RawResult(code: ZKS_CLOSING.rawValue))
        }
    }
}

final class PendingOperation: Sendable {
    let id: UInt64
    let owner: HandleContext
    let continuation: CheckedContinuation<RawResult, Never>

    init(id: UInt64, owner: HandleContext, continuation: CheckedContinuation<RawResult, Never>) {
        self.id = id
        self.owner = owner
        self.continuation = continuation
    }

    /// Called from a C callback (after `takeRetainedValue`).
    func complete(_ result: RawResult) {
        if owner.unregister(id) {
            continuation.resume(returning: result)
        }
    }
}

/// Done-context for an asynchronous handle close.
final class CloseJob: Sendable {
    let context: HandleContext
    let continuation: CheckedContinuation<Void, Never>?

    init(context: HandleContext, continuation: CheckedContinuation<Void, Never>?) {
        self.context = context
        self.continuation = continuation
    }
}

// MARK: - C callbacks (capture-free, run on the C client's threads)

let zkResultCallback: zks_result_cb = { ctx, rc, data, length, stat in
    guard let ctx else { return }
    let op = Unmanaged<PendingOperation>.fromOpaque(ctx).takeRetainedValue()
    var result = RawResult(code: rc)
    if let data, length >= 0 {
        result.data = Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(data), count: Int(length)))
    }
    if let stat { result.stat = ZNodeStat(stat.pointee) }
    op.complete(result)
}

let zkStringsCallback: zks_strings_cb = { ctx, rc, strings, count in
    guard let ctx else { return }
    let op = Unmanaged<PendingOperation>.fromOpaque(ctx).takeRetainedValue()
    var result = RawResult(code: rc)
    if let strings, count > 0 {
        result.strings.reserveCapacity(Int(count))
        for i in 0..<Int(count) {
            if let s = strings[i] { result.strings.append(String(cString: s)) }
        }
    }
    op.complete(result)
}

let zkEventCallback: zks_event_cb = { ctx, type, state, path in
    guard let ctx else { return }
    let context = Unmanaged<HandleContext>.fromOpaque(ctx).takeUnretainedValue()
    let p = path.map { String(cString: $0) } ?? ""
    context.client?.handleEvent(generation: context.generation, type: type, state: state, path: p)
}

let zkCloseDoneCallback: zks_done_cb = { ctx in
    guard let ctx else { return }
    let job = Unmanaged<CloseJob>.fromOpaque(ctx).takeRetainedValue()
    job.context.sweepAfterClose()
    Unmanaged.passUnretained(job.context).release()   // the event-context retain of this handle
    job.continuation?.resume()
}

// MARK: - C client logging

let zkCClientLogger = Logger(label: "zookeeper.c-client")

let zkLogCallback: zks_log_cb = { level, message in
    guard let message else { return }
    // The C client logs an ERROR line every ~66 ms while no server answers; the Swift client reports
    // connection state itself, so everything from C goes to debug/trace.
    let text = String(cString: message)
    switch level {
    case ZKS_LOG_ERROR, ZKS_LOG_WARN: zkCClientLogger.debug("\(text)")
    default: zkCClientLogger.trace("\(text)")
    }
}

/// Installs the log routing once per process (before the first handle is opened).
let zkInstallLogging: Void = {
    zks_set_log(zkLogCallback, ZKS_LOG_WARN)
}()

/// Calls `body` with a C view of `data`: NULL for nil (a null znode), a valid pointer for empty data.
func withCData<R>(_ data: [UInt8]?, _ body: (UnsafePointer<CChar>?, Int32) -> R) -> R {
    guard let data else { return body(nil, -1) }
    if data.isEmpty { return "".withCString { body($0, 0) } }
    return data.withUnsafeBytes { raw in
        body(raw.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(data.count))
    }
}
