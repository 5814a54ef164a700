import KafkaProtocol
import Logging
import NIOCore

/// What the request layer answers to one request.
public enum ResponseAction: Sendable {
    /// Write these parts (byte buffers and file regions) as one response, then run `written`.
    case send([IOData], written: @Sendable () -> Void)
    /// acks=0 produce: nothing goes back.
    case noResponse
    /// Protocol violation or unknown api key: close the connection.
    case close(reason: String)

    static func send(_ buffer: ByteBuffer) -> ResponseAction { .send([.byteBuffer(buffer)], written: {}) }
}

/// Anything that turns a request frame into a response.
public protocol RequestProcessor: Sendable {
    func process(frame: ByteBuffer, connection: ConnectionInfo, eventLoop: EventLoop) -> EventLoopFuture<ResponseAction>
}

public struct ConnectionInfo: Sendable {
    public var remote: String
}

/// Handles one connection: splits the byte stream into request frames (int32 size prefix; a
/// size <= 0 or above `socket.request.max.bytes` closes the connection, as Kafka 0.8.2 does),
/// processes them one at a time and answers strictly in order (pykafka matches responses by
/// order; correlation ids may all be 0).
///
/// Received bytes count until their frame is started, so a pipelining client holds at most
/// `maxQueuedBytesPerConnection` (or one frame, if larger) of unread requests here. A large
/// partial frame is parked for the next read (`FrameReceiveHandoff`), after cutting out the
/// complete frames before it.
/// Backpressure: the next request is not started while the connection's unsent responses are
/// above the channel's high write mark (a client that never reads holds at most about one
/// response's worth of buffers), and the connection is not read while that holds, while its
/// received bytes are at their bound, or while `queued.max.requests` connections have a complete
/// request waiting behind one in progress. Nothing read for `connections.max.idle.ms` with no
/// request in progress closes it (`IdleConnectionSweeper`).
// Touched only on its channel's event loop.
final class KafkaConnectionHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = IOData

    let processor: RequestProcessor
    let logger: Logger
    let maxFrameSize: Int
    let limits: SocketServerLimits
    let gate: RequestGate
    /// Where a large partial frame waits for its next read (nil: reads are always appended).
    let handoff: FrameReceiveHandoff?
    /// Received bytes not yet cut into a started request (while parked in `handoff`: nil).
    private var inbound: ByteBuffer?
    /// Complete frames cut out of `inbound` ahead of their turn, oldest first, so that a large
    /// partial frame behind them could be parked; their bytes still count as queued.
    private var cutAhead: [ByteBuffer] = []
    private var cutAheadBytes = 0
    private var busy = false
    private var closed = false
    private var reading = true
    private var waitingForGate = false
    /// Whether this connection counts in the gate (a complete request waiting behind one in progress).
    private var counted = false
    private var info = ConnectionInfo(remote: "?")
    /// Idle detection (`IdleConnectionSweeper`): set by every read, cleared by each sweep.
    private var readSinceSweep = true
    private var quietSweeps = 0
    private var sweeper: IdleConnectionSweeper?
    /// This connection's place in its sweeper (kept by the sweeper).
    var sweepSlot: Int?
    private var ownsSweeper = false
    private var context: ChannelHandlerContext?

    /// `sweeper`: the event loop's idle sweep; without one (a pipeline built alone, as in tests)
    /// and with `connections.max.idle.ms` on, the connection gets a sweep of its own.
    init(processor: RequestProcessor, logger: Logger, maxFrameSize: Int, limits: SocketServerLimits = SocketServerLimits(),
         gate: RequestGate? = nil, sweeper: IdleConnectionSweeper? = nil, handoff: FrameReceiveHandoff? = nil) {
        self.processor = processor
        self.logger = logger
        self.maxFrameSize = maxFrameSize
        self.limits = limits
        self.gate = gate ?? RequestGate(limit: limits.queuedMaxRequests)
        self.sweeper = sweeper
        self.handoff = handoff
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if sweeper == nil, let idleMs = IdleConnectionSweeper.idleMs(limits) {
            sweeper = IdleConnectionSweeper(eventLoop: context.eventLoop, idleMs: idleMs)
            ownsSweeper = true
        }
        sweeper?.add(self)
    }

    func channelActive(context: ChannelHandlerContext) {
        info = ConnectionInfo(remote: context.remoteAddress?.description ?? "?")
        context.fireChannelActive()
    }

    /// For the sweep: whether `idleSweeps` sweeps in a row saw no read and no request in progress.
    func idleCheck(idleSweeps: Int) -> Bool {
        if readSinceSweep || busy {
            readSinceSweep = false
            quietSweeps = 0
            return false
        }
        quietSweeps += 1
        return !closed && quietSweeps >= idleSweeps
    }

    func closeIdle() {
        guard !closed, let context else { return }
        logger.debug("Closing connection from \(info.remote): idle for more than \(limits.connectionsMaxIdleMs) ms (connections.max.idle.ms)")
        close(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        shutDown()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        shutDown()
    }

    private func shutDown() {
        closed = true
        inbound = nil
        cutAhead = []
        cutAheadBytes = 0
        handoff?.parked = nil
        context = nil
        if let sweeper {
            sweeper.remove(self)
            if ownsSweeper { sweeper.stop() }
            self.sweeper = nil
        }
        if counted {
            counted = false
            gate.removed()
        }
        if waitingForGate {
            waitingForGate = false
            gate.cancelWait(ObjectIdentifier(self))
        }
    }

    private func close(context: ChannelHandlerContext) {
        shutDown()
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closed else { return }
        readSinceSweep = true
        var bytes = unwrapInboundIn(data)
        // A parked frame the read did not go into: append the read to it as usual.
        unpark()
        if inbound == nil || inbound!.readableBytes == 0 {
            inbound = bytes
        } else {
            // A frame that spans reads: make room for all of it at once, so its bytes are
            // copied once rather than again at every doubling of the buffer.
            let have = inbound!.readableBytes
            if have >= 4, let size = inbound!.getInteger(at: inbound!.readerIndex, as: Int32.self),
               size > 0, Int(size) <= maxFrameSize, have + bytes.readableBytes < 4 + Int(size) {
                inbound!.reserveCapacity(minimumWritableBytes: 4 + Int(size) - have)
            }
            inbound!.writeBuffer(&bytes)
        }
        step(context: context)
    }

    /// Hands a large partial frame to the next read (`FrameReceiveHandoff`). Complete frames
    /// waiting before it (a pipelining producer whose requests arrive faster than they are
    /// appended) are cut out first.
    private func parkPartialFrame(context: ChannelHandlerContext) {
        guard let handoff, !closed, reading, inbound != nil else { return }
        let sizes = 1...maxFrameSize
        var h = SizePrefixedFrame.head(of: inbound!, sizes: sizes)
        while case .complete = h, let frame = SizePrefixedFrame.next(from: &inbound!, sizes: sizes).frame {
            cutAhead.append(frame)
            cutAheadBytes += SizePrefixedFrame.prefixLength + frame.readableBytes
            h = SizePrefixedFrame.head(of: inbound!, sizes: sizes)
        }
        if case .partial(let size) = h, handoff.parkIfLarge(inbound!, size: size, allocator: context.channel.allocator) {
            inbound = nil
        }
    }

    /// The first frame waiting: cut ahead, or at the start of `inbound`.
    private func firstHead(context: ChannelHandlerContext) -> SizePrefixedFrame.Head {
        if let first = cutAhead.first { return .complete(size: first.readableBytes) }
        return head(context: context)
    }

    /// Takes the first complete frame (see `firstHead`).
    private func takeFrame() -> ByteBuffer? {
        if !cutAhead.isEmpty {
            let frame = cutAhead.removeFirst()
            cutAheadBytes -= SizePrefixedFrame.prefixLength + frame.readableBytes
            return frame
        }
        guard inbound != nil else { return nil }
        return SizePrefixedFrame.next(from: &inbound!, sizes: 1...maxFrameSize).frame
    }

    /// The frame parked for a read that has not come yet, back where the handler looks for it.
    private func unpark() {
        if let parked = handoff?.reclaim() { inbound = parked }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Give back the space of consumed bytes now and then.
        if var b = inbound, b.readerIndex > 1 << 20 {
            b.discardReadBytes()
            inbound = b
        }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        step(context: context)
        context.fireChannelWritabilityChanged()
    }

    /// The first frame in `inbound` (cut by the shared `SizePrefixedFrame` codec); logs a bad size.
    private func head(context: ChannelHandlerContext) -> SizePrefixedFrame.Head {
        guard let b = inbound else { return .needSize }
        let h = SizePrefixedFrame.head(of: b, sizes: 1...maxFrameSize)
        if case .outOfBounds(let size) = h {
            logger.warning("Closing connection from \(info.remote): request size \(size) is not in 1...\(maxFrameSize) (socket.request.max.bytes)")
        }
        return h
    }

    private var stepping = false
    private var stepAgain = false

    /// Starts the next request if it can, then decides whether to read on. Iterative: requests
    /// answered synchronously do not nest one call per pipelined request.
    private func step(context: ChannelHandlerContext) {
        if stepping {
            stepAgain = true
            return
        }
        stepping = true
        defer { stepping = false }
        unpark()
        repeat {
            stepAgain = false
            stepOnce(context: context)
        } while stepAgain && !closed
        parkPartialFrame(context: context)
    }

    private func stepOnce(context: ChannelHandlerContext) {
        guard !closed else { return }
        let h = firstHead(context: context)
        if case .outOfBounds = h {
            close(context: context)
            return
        }
        if case .complete = h, !busy, context.channel.isWritable, let frame = takeFrame() {
            handoff?.frameCut(frameBytes: SizePrefixedFrame.prefixLength + frame.readableBytes,
                              leftover: cutAheadBytes + (inbound?.readableBytes ?? 0))
            start(frame, context: context)
            // Then look again: the next frame may start or be a bad one.
            stepAgain = true
            return
        }
        // A complete request waiting behind one in progress counts toward queued.max.requests.
        var waiting = false
        if case .complete = h { waiting = busy }
        if waiting != counted {
            counted = waiting
            if waiting { gate.added() } else { gate.removed() }
        }
        // Read on while the bounds have room: at least the whole first frame may arrive.
        var bound = limits.maxQueuedBytesPerConnection
        if case .partial(let size) = h { bound = max(bound, SizePrefixedFrame.prefixLength + size) }
        let ownRoom = cutAheadBytes + (inbound?.readableBytes ?? 0) < bound && context.channel.isWritable
        let gateRoom = counted || !gate.isFull
        let want = ownRoom && gateRoom
        if want != reading {
            reading = want
            _ = context.channel.setOption(ChannelOptions.autoRead, value: want)
        }
        if ownRoom && !gateRoom && !waitingForGate {
            waitingForGate = true
            let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
            let loop = context.eventLoop
            gate.waitForRoom(ObjectIdentifier(self)) {
                loop.execute {
                    guard self.waitingForGate else { return }
                    self.waitingForGate = false
                    self.step(context: ctx.value)
                }
            }
        }
    }

    private func start(_ frame: ByteBuffer, context: ChannelHandlerContext) {
        if counted {
            counted = false
            gate.removed()
        }
        busy = true
        let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
        processor.process(frame: frame, connection: info, eventLoop: context.eventLoop).hop(to: context.eventLoop).whenComplete { result in
            let context = ctx.value
            self.busy = false
            guard !self.closed else {
                if case .success(.send(_, let written)) = result { written() }
                return
            }
            switch result {
            case .success(.send(let parts, let written)):
                for (i, part) in parts.enumerated() {
                    if i == parts.count - 1 {
                        let p = context.eventLoop.makePromise(of: Void.self)
                        p.futureResult.whenComplete { _ in written() }
                        context.writeAndFlush(self.wrapOutboundOut(part), promise: p)
                    } else {
                        context.write(self.wrapOutboundOut(part), promise: nil)
                    }
                }
                if parts.isEmpty { written() }
                self.step(context: context)
            case .success(.noResponse):
                self.step(context: context)
            case .success(.close(let reason)):
                self.logger.warning("Closing connection from \(self.info.remote): \(reason)")
                self.close(context: context)
            case .failure(let error):
                self.logger.error("Closing connection from \(self.info.remote) after an error while handling a request: \(error)")
                self.close(context: context)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("Connection \(info.remote) error: \(error)")
        close(context: context)
    }
}
