import NIOCore

/// `connections.max.idle.ms` for the connections of one event loop: a repeated sweep closes those
/// from which nothing was read for that long and that have no request in progress.
///
/// One timer per loop, not one per connection (NIO's `IdleStateHandler`): each loop's timer heap
/// then holds only the request path's own timers (parked fetches, acks=-1 produces) instead of
/// 5,000 more with 10,000 idle connections.
/// A sweep visits every connection once, in slices spread over its interval: touching all 5,000
/// connections of a loop at once was about a millisecond of cache misses, and in a working
/// client's p99 when it came once a second.
/// A connection closes between `connections.max.idle.ms` and that plus two sweep intervals after
/// its last read (later if the loop is late).
// Touched only on its event loop.
final class IdleConnectionSweeper: @unchecked Sendable {
    let eventLoop: EventLoop
    /// The time one sweep over all connections takes.
    let interval: TimeAmount
    /// Sweeps in a row that saw no read make a connection idle (counted, not timed: no clock call).
    let idleSweeps: Int
    /// A sweep is this many slices, one per tick.
    let slices: Int
    private var connections: [KafkaConnectionHandler] = []
    /// The next slice of the sweep, in 0..<slices.
    private var nextSlice = 0
    private var task: RepeatedTask?

    /// Sweeps every tenth of the idle time, between 10 ms and 10 s, in slices at least 10 ms
    /// apart (at most 100 per sweep).
    init(eventLoop: EventLoop, idleMs: Int64) {
        self.eventLoop = eventLoop
        let intervalMs = min(max(idleMs / 10, 10), 10_000)
        self.interval = .milliseconds(intervalMs)
        self.idleSweeps = Int((max(idleMs, 1) + intervalMs - 1) / intervalMs)
        self.slices = Int(min(max(intervalMs / 10, 1), 100))
    }

    /// `connections.max.idle.ms` as a sweep, or nil when it is off (≤ 0 or too large to count in ns).
    static func idleMs(_ limits: SocketServerLimits) -> Int64? {
        limits.connectionsMaxIdleMs > 0 && limits.connectionsMaxIdleMs < Int64.max / 1_000_000 ? limits.connectionsMaxIdleMs : nil
    }

    func add(_ connection: KafkaConnectionHandler) {
        eventLoop.preconditionInEventLoop()
        guard connection.sweepSlot == nil else { return }
        connection.sweepSlot = connections.count
        connections.append(connection)
        if task == nil {
            let tick = TimeAmount.nanoseconds(interval.nanoseconds / Int64(slices))
            task = eventLoop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { [weak self] _ in self?.sweepSlice() }
        }
    }

    /// O(1): the last connection takes the removed one's place.
    func remove(_ connection: KafkaConnectionHandler) {
        eventLoop.preconditionInEventLoop()
        guard let i = connection.sweepSlot, i < connections.count, connections[i] === connection else { return }
        connection.sweepSlot = nil
        let last = connections.removeLast()
        if i < connections.count {
            connections[i] = last
            last.sweepSlot = i
        }
    }

    func stop() {
        task?.cancel()
        task = nil
    }

    /// The next `1 / slices` of the connections: each is checked once per sweep.
    private func sweepSlice() {
        let k = nextSlice
        nextSlice = (k + 1) % slices
        let count = connections.count
        let lo = count * k / slices, hi = count * (k + 1) / slices
        guard lo < hi else { return }
        var idle: [KafkaConnectionHandler] = []
        for c in connections[lo..<hi] where c.idleCheck(idleSweeps: idleSweeps) { idle.append(c) }
        // Closing removes them from `connections`: not while iterating it.
        for c in idle { c.closeIdle() }
    }
}
