import CZooKeeperShim
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An asynchronous ZooKeeper client over the C multi-threaded client.
///
/// * All operations are asynchronous on the C side; nothing here blocks a Swift concurrency thread.
/// * Paths are relative to the chroot of the connect string, if any ("h1:2181,h2:2181/kafka").
/// * Watches (`watch: true`) are one-shot, as in ZooKeeper; notifications and session changes are
///   broadcast to every stream returned by `events()`.
/// * Session expiry: the client emits `.session(.expired)`, opens a new session on the same connect
///   string and emits `.session(.connected)` when it is up. Operations issued in between throw
///   `.sessionExpired` (or `.connectionLoss`). Ephemeral nodes and watches of the old session are gone:
///   callers re-create / re-set them on the `.connected` that follows an `.expired`.
public final class ZooKeeperClient: Sendable {
    public let connectString: String
    let requestedSessionTimeoutMs: Int
    let logger: Logger

    private struct State {
        var handle: HandleRef?
        var context: HandleContext?
        var generation: UInt64 = 0
        var closed = false
        var connected = false
        var lastEmitted: SessionState?
        var nextWaiter: UInt64 = 0
        var connectWaiters: [UInt64: CheckedContinuation<Bool, Never>] = [:]
        var negotiatedTimeoutMs: Int = 0
    }

    private let state = Mutex(State())
    private let subscribers = Mutex<(next: Int, all: [Int: AsyncStream<ZooKeeperEvent>.Continuation])>((0, [:]))

    private init(connectString: String, sessionTimeoutMs: Int, logger: Logger) {
        self.connectString = connectString
        self.requestedSessionTimeoutMs = sessionTimeoutMs
        self.logger = logger
    }

    deinit {
        // Only reached without close() (a handle context holds the client weakly).
        let leftover = state.withLock { s -> (HandleRef, HandleContext)? in
            guard let h = s.handle, let c = s.context else { return nil }
            s.handle = nil
            s.context = nil
            return (h, c)
        }
        if let (h, c) = leftover {
            let job = CloseJob(context: c, continuation: nil)
            _ = zks_close_async(h.pointer, zkCloseDoneCallback, Unmanaged.passRetained(job).toOpaque())
        }
        subscribers.withLock { s in
            for c in s.all.values { c.finish() }
            s.all.removeAll()
        }
    }

    // MARK: - Connecting

    /// Connects to `connectString` ("h1:2181,h2:2181" with an optional chroot suffix "/kafka").
    /// Waits up to `connectionTimeoutMs` for the first connection, else throws `.connectTimeout`.
    /// `resumingSession` attaches to an existing session instead of creating one (mainly for tests).
    public static func connect(_ connectString: String, sessionTimeoutMs: Int = 6000,
                               connectionTimeoutMs: Int = 6000,
                               logger: Logger = Logger(label: "zookeeper"),
                               resumingSession: ZooKeeperSession? = nil) async throws -> ZooKeeperClient {
        let client = ZooKeeperClient(connectString: connectString, sessionTimeoutMs: sessionTimeoutMs, logger: logger)
        try client.openFirstHandle(resuming: resumingSession)
        let ok = await client.waitForConnection(timeoutMs: connectionTimeoutMs)
        if !ok {
            let wasClosed = client.state.withLock { $0.closed }
            await client.close()
            if wasClosed { throw ZooKeeperError.closed }
            throw ZooKeeperError.connectTimeout(connectString)
        }
        return client
    }

    /// Creates the chroot of `connectString` (if it has one) through a connection without it,
    /// as a Kafka broker does at startup. A no-op without a chroot.
    public static func ensureChroot(_ connectString: String, sessionTimeoutMs: Int = 6000,
                                    connectionTimeoutMs: Int = 6000,
                                    logger: Logger = Logger(label: "zookeeper")) async throws {
        let (hosts, chroot) = splitChroot(connectString)
        guard let chroot else { return }
        let client = try await connect(hosts, sessionTimeoutMs: sessionTimeoutMs,
                                       connectionTimeoutMs: connectionTimeoutMs, logger: logger)
        do {
            try await client.ensurePath(chroot)
        } catch {
            await client.close()
            throw error
        }
        await client.close()
    }

    /// Splits "h1:2181,h2:2181/kafka" into ("h1:2181,h2:2181", "/kafka"); the chroot is nil when absent or "/".
    public static func splitChroot(_ connectString: String) -> (hosts: String, chroot: String?) {
        guard let slash = connectString.firstIndex(of: "/") else { return (connectString, nil) }
        let hosts = String(connectString[..<slash])
        var chroot = String(connectString[slash...])
        while chroot.count > 1 && chroot.hasSuffix("/") { chroot.removeLast() }
        return (hosts, chroot == "/" ? nil : chroot)
    }

    private func openFirstHandle(resuming: ZooKeeperSession?) throws {
        _ = zkInstallLogging
        let generation = state.withLock { s -> UInt64 in
            s.generation += 1
            return s.generation
        }
        guard let (handle, context) = openHandle(generation: generation, resuming: resuming) else {
            let code = errno
            throw ZooKeeperError.other(code: ZKS_BADARGUMENTS.rawValue,
                                       path: "\(connectString) (zookeeper_init failed, errno \(code))")
        }
        install(handle, context)
    }

    /// Opens a C handle whose events carry `generation`. nil if the C client refused (bad connect string).
    private func openHandle(generation: UInt64, resuming: ZooKeeperSession?) -> (HandleRef, HandleContext)? {
        let context = HandleContext(client: self, generation: generation)
        let ctx = Unmanaged.passRetained(context).toOpaque()
        var session = zks_session()
        if let resuming {
            session.session_id = resuming.id
            withUnsafeMutableBytes(of: &session.password) { dst in
                for (i, b) in resuming.password.prefix(dst.count).enumerated() { dst[i] = b }
            }
        }
        let pointer: OpaquePointer? = connectString.withCString { cs in
            if resuming != nil {
                return withUnsafePointer(to: &session) { sp in
                    zks_init(cs, Int32(requestedSessionTimeoutMs), sp, zkEventCallback, ctx)
                }
            }
            return zks_init(cs, Int32(requestedSessionTimeoutMs), nil, zkEventCallback, ctx)
        }
        guard let pointer else {
            Unmanaged<HandleContext>.fromOpaque(ctx).release()
            return nil
        }
        return (HandleRef(pointer: pointer), context)
    }

    /// Makes a freshly opened handle the current one, unless the client was closed or moved on meanwhile.
    private func install(_ handle: HandleRef, _ context: HandleContext) {
        let accepted = state.withLock { s -> Bool in
            guard !s.closed, s.generation == context.generation else { return false }
            s.handle = handle
            s.context = context
            return true
        }
        if !accepted { Self.closeInBackground(handle, context) }
    }

    private static func closeInBackground(_ handle: HandleRef, _ context: HandleContext) {
        let job = CloseJob(context: context, continuation: nil)
        _ = zks_close_async(handle.pointer, zkCloseDoneCallback, Unmanaged.passRetained(job).toOpaque())
    }

    private func waitForConnection(timeoutMs: Int) async -> Bool {
        let id = state.withLock { s -> UInt64 in
            s.nextWaiter += 1
            return s.nextWaiter
        }
        let timeout = Task { [weak self] in
            try? await Task.sleep(nanoseconds: UInt64(max(timeoutMs, 0)) * 1_000_000)
            self?.resumeWaiter(id, with: false)
        }
        defer { timeout.cancel() }
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let immediate = state.withLock { s -> Bool? in
                if s.closed { return false }
                if s.connected { return true }
                s.connectWaiters[id] = continuation
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }

    private func resumeWaiter(_ id: UInt64, with value: Bool) {
        let waiter = state.withLock { $0.connectWaiters.removeValue(forKey: id) }
        waiter?.resume(returning: value)
    }

    // MARK: - Events from the C client (on its completion thread)

    func handleEvent(generation: UInt64, type: zks_event_type, state cState: zks_state, path: String) {
        switch type {
        case ZKS_EVENT_SESSION:
            handleSessionEvent(generation: generation, cState)
        case ZKS_EVENT_CREATED, ZKS_EVENT_DELETED, ZKS_EVENT_CHANGED, ZKS_EVENT_CHILD:
            let current = state.withLock { !$0.closed && $0.generation == generation }
            guard current else { return }
            let event: ZooKeeperEvent
            switch type {
            case ZKS_EVENT_CREATED: event = .nodeCreated(path)
            case ZKS_EVENT_DELETED: event = .nodeDeleted(path)
            case ZKS_EVENT_CHANGED: event = .nodeDataChanged(path)
            default: event = .nodeChildrenChanged(path)
            }
            broadcast(event)
        default:
            break
        }
    }

    private func handleSessionEvent(generation: UInt64, _ cState: zks_state) {
        switch cState {
        case ZKS_STATE_CONNECTED, ZKS_STATE_READONLY:
            var sessionInfo: (Int64, Int32) = (0, 0)
            let (waiters, emit) = state.withLock { s -> ([CheckedContinuation<Bool, Never>], Bool) in
                guard !s.closed, s.generation == generation else { return ([], false) }
                s.connected = true
                if let h = s.handle {
                    var session = zks_session()
                    zks_get_session(h.pointer, &session)
                    let timeout = zks_session_timeout(h.pointer)
                    s.negotiatedTimeoutMs = Int(timeout)
                    sessionInfo = (session.session_id, timeout)
                }
                let waiters = Array(s.connectWaiters.values)
                s.connectWaiters.removeAll()
                let emit = s.lastEmitted != .connected
                s.lastEmitted = .connected
                return (waiters, emit)
            }
            for w in waiters { w.resume(returning: true) }
            if emit {
                logger.info("ZooKeeper session established",
                            metadata: ["connect": "\(connectString)",
                                       "session": "0x\(String(UInt64(bitPattern: sessionInfo.0), radix: 16))",
                                       "timeoutMs": "\(sessionInfo.1)"])
                broadcast(.session(.connected))
            }
        case ZKS_STATE_CONNECTING, ZKS_STATE_ASSOCIATING, ZKS_STATE_NOTCONNECTED:
            let emit = state.withLock { s -> Bool in
                guard !s.closed, s.generation == generation else { return false }
                s.connected = false
                guard s.lastEmitted == .connected else { return false }
                s.lastEmitted = .disconnected
                return true
            }
            if emit {
                logger.info("ZooKeeper connection lost, reconnecting", metadata: ["connect": "\(connectString)"])
                broadcast(.session(.disconnected))
            }
        case ZKS_STATE_EXPIRED, ZKS_STATE_AUTH_FAILED:
            sessionExpired(generation: generation, authFailed: cState == ZKS_STATE_AUTH_FAILED)
        default:
            break
        }
    }

    /// The current handle is dead: retire it, tell subscribers, and open a new session.
    private func sessionExpired(generation: UInt64, authFailed: Bool) {
        let retired = state.withLock { s -> (HandleRef, HandleContext, UInt64)? in
            guard !s.closed, s.generation == generation, let h = s.handle, let c = s.context else { return nil }
            s.handle = nil
            s.context = nil
            s.connected = false
            s.generation += 1
            s.lastEmitted = .expired
            return (h, c, s.generation)
        }
        guard let (oldHandle, oldContext, newGeneration) = retired else { return }
        if authFailed {
            logger.error("ZooKeeper authentication failed; opening a new session", metadata: ["connect": "\(connectString)"])
        } else {
            logger.warning("ZooKeeper session expired; opening a new session", metadata: ["connect": "\(connectString)"])
        }
        broadcast(.session(.expired))
        // Never close a handle from inside its own callback: the close runs on a separate thread.
        Self.closeInBackground(oldHandle, oldContext)
        renewSession(generation: newGeneration, attempt: 0)
    }

    private func renewSession(generation: UInt64, attempt: Int) {
        if let (handle, context) = openHandle(generation: generation, resuming: nil) {
            install(handle, context)
            return
        }
        // zookeeper_init refused (e.g. the host names do not resolve right now): retry.
        logger.error("ZooKeeper: cannot open a new session, retrying", metadata: ["connect": "\(connectString)"])
        Task { [weak self] in
            try? await Task.sleep(nanoseconds: 1_000_000_000)
            guard let self else { return }
            let stillWanted = self.state.withLock { !$0.closed && $0.generation == generation && $0.handle == nil }
            if stillWanted { self.renewSession(generation: generation, attempt: attempt + 1) }
        }
    }

    private func broadcast(_ event: ZooKeeperEvent) {
        let targets = subscribers.withLock { Array($0.all.values) }
        for t in targets { t.yield(event) }
    }

    // MARK: - Public state

    /// Each call returns a new stream that receives every watch and session event from now on.
    /// The stream finishes when the client is closed.
    public func events() -> AsyncStream<ZooKeeperEvent> {
        let (stream, continuation) = AsyncStream<ZooKeeperEvent>.makeStream(bufferingPolicy: .unbounded)
        let closed = state.withLock { $0.closed }
        if closed {
            continuation.finish()
            return stream
        }
        let id = subscribers.withLock { s -> Int in
            s.next += 1
            s.all[s.next] = continuation
            return s.next
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.all.removeValue(forKey: id) }
        }
        return stream
    }

    /// The current session id (0 while a new session is being opened, or after close).
    public var sessionId: Int64 {
        session?.id ?? 0
    }

    /// The current session's id and password (nil while no handle is open).
    public var session: ZooKeeperSession? {
        state.withLock { s -> ZooKeeperSession? in
            guard let h = s.handle else { return nil }
            var raw = zks_session()
            zks_get_session(h.pointer, &raw)
            let password = withUnsafeBytes(of: raw.password) { Array($0) }
            return ZooKeeperSession(id: raw.session_id, password: password)
        }
    }

    /// The session timeout negotiated with the server (the requested one before the first connection).
    public var sessionTimeoutMs: Int {
        state.withLock { s in s.negotiatedTimeoutMs > 0 ? s.negotiatedTimeoutMs : requestedSessionTimeoutMs }
    }

    /// True while the current session is connected to a server.
    public var isConnected: Bool {
        state.withLock { $0.connected }
    }

    /// Closes the session (ephemeral nodes go away at once). Later calls throw `.closed`.
    /// Safe to call more than once.
    public func close() async {
        let taken = state.withLock { s -> (HandleRef?, HandleContext?, [CheckedContinuation<Bool, Never>])? in
            if s.closed { return nil }
            s.closed = true
            s.connected = false
            let result = (s.handle, s.context, Array(s.connectWaiters.values))
            s.handle = nil
            s.context = nil
            s.connectWaiters.removeAll()
            return result
        }
        guard let (handle, context, waiters) = taken else { return }
        for w in waiters { w.resume(returning: false) }
        if let handle, let context {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let job = CloseJob(context: context, continuation: continuation)
                _ = zks_close_async(handle.pointer, zkCloseDoneCallback, Unmanaged.passRetained(job).toOpaque())
            }
        }
        let streams = subscribers.withLock { s -> [AsyncStream<ZooKeeperEvent>.Continuation] in
            let all = Array(s.all.values)
            s.all.removeAll()
            return all
        }
        for c in streams { c.finish() }
    }

    // MARK: - Operation plumbing

    /// Submits one C operation on the current handle and waits for its callback.
    private func submit(_ operation: (OpaquePointer, UnsafeMutableRawPointer) -> Int32) async -> RawResult {
        await withCheckedContinuation { (continuation: CheckedContinuation<RawResult, Never>) in
            let rc: Int32 = state.withLock { s -> Int32 in
                if s.closed { return ZKS_CLOSING.rawValue }
                guard let handle = s.handle, let context = s.context else { return ZKS_SESSIONEXPIRED.rawValue }
                let op = context.register(continuation)
                let ctx = Unmanaged.passRetained(op).toOpaque()
                let rc = operation(handle.pointer, ctx)
                if rc != ZKS_OK.rawValue {
                    // The C client will never call back: undo the registration and the retain.
                    _ = context.unregister(op.id)
                    Unmanaged<PendingOperation>.fromOpaque(ctx).release()
                }
                return rc
            }
            if rc != ZKS_OK.rawValue { continuation.resume(returning: RawResult(code: rc)) }
        }
    }

    // MARK: - Operations

    /// Creates a node; returns its path (with the sequential suffix for sequential modes).
    @discardableResult
    public func create(_ path: String, data: [UInt8]?, mode: CreateMode = .persistent) async throws -> String {
        let result = await submit { h, ctx in
            path.withCString { p in
                withCData(data) { d, n in zks_create(h, p, d, n, mode.shimMode, zkStringsCallback, ctx) }
            }
        }
        try result.check(path)
        return result.strings.first ?? path
    }

    /// Creates a node and any missing parents (persistent, null data). `.nodeExists` if the node itself exists.
    public func createRecursive(_ path: String, data: [UInt8]?, mode: CreateMode = .persistent) async throws {
        do {
            try await create(path, data: data, mode: mode)
        } catch ZooKeeperError.noNode {
            if let parent = Self.parent(of: path) { try await ensurePath(parent) }
            try await create(path, data: data, mode: mode)
        }
    }

    /// Creates the persistent path and its parents if missing (null data); fine if it exists.
    public func ensurePath(_ path: String) async throws {
        if path == "/" || path.isEmpty { return }
        do {
            try await create(path, data: nil)
        } catch ZooKeeperError.nodeExists {
            return
        } catch ZooKeeperError.noNode {
            if let parent = Self.parent(of: path) { try await ensurePath(parent) }
            do {
                try await create(path, data: nil)
            } catch ZooKeeperError.nodeExists {
                return
            }
        }
    }

    public func get(_ path: String, watch: Bool = false) async throws -> (data: [UInt8]?, stat: ZNodeStat) {
        let result = await submit { h, ctx in
            path.withCString { zks_get(h, $0, watch ? 1 : 0, zkResultCallback, ctx) }
        }
        try result.check(path)
        guard let stat = result.stat else { throw ZooKeeperError.other(code: ZKS_MARSHALLINGERROR.rawValue, path: path) }
        return (result.data, stat)
    }

    /// Sets the data; with `version` >= 0 only if the node's version matches (else `.badVersion`).
    @discardableResult
    public func set(_ path: String, data: [UInt8]?, version: Int32 = -1) async throws -> ZNodeStat {
        let result = await submit { h, ctx in
            path.withCString { p in
                withCData(data) { d, n in zks_set(h, p, d, n, version, zkResultCallback, ctx) }
            }
        }
        try result.check(path)
        guard let stat = result.stat else { throw ZooKeeperError.other(code: ZKS_MARSHALLINGERROR.rawValue, path: path) }
        return stat
    }

    /// The node's stat, or nil if it does not exist. With `watch`, a watch is set either way
    /// (it fires `.nodeCreated`, `.nodeDeleted` or `.nodeDataChanged`).
    public func exists(_ path: String, watch: Bool = false) async throws -> ZNodeStat? {
        let result = await submit { h, ctx in
            path.withCString { zks_exists(h, $0, watch ? 1 : 0, zkResultCallback, ctx) }
        }
        if result.code == ZKS_NONODE.rawValue { return nil }
        try result.check(path)
        return result.stat
    }

    /// Child names (not paths), in the server's order (unsorted).
    public func children(_ path: String, watch: Bool = false) async throws -> [String] {
        let result = await submit { h, ctx in
            path.withCString { zks_get_children(h, $0, watch ? 1 : 0, zkStringsCallback, ctx) }
        }
        try result.check(path)
        return result.strings
    }

    /// Deletes a node without children; with `version` >= 0 only if the version matches.
    public func delete(_ path: String, version: Int32 = -1) async throws {
        let result = await submit { h, ctx in
            path.withCString { zks_delete(h, $0, version, zkResultCallback, ctx) }
        }
        try result.check(path)
    }

    /// Deletes a node and everything under it; fine if it does not exist.
    public func deleteRecursive(_ path: String) async throws {
        for attempt in 0..<5 {
            let kids: [String]
            do {
                kids = try await children(path)
            } catch ZooKeeperError.noNode {
                return
            }
            for kid in kids {
                try await deleteRecursive(path == "/" ? "/\(kid)" : "\(path)/\(kid)")
            }
            if path == "/" { return }
            do {
                try await delete(path)
                return
            } catch ZooKeeperError.noNode {
                return
            } catch ZooKeeperError.notEmpty where attempt < 4 {
                continue   // a child appeared meanwhile
            }
        }
    }

    static func parent(of path: String) -> String? {
        guard let slash = path.lastIndex(of: "/") else { return nil }
        if slash == path.startIndex { return nil }   // parent is "/"
        return String(path[..<slash])
    }
}
