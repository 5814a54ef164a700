import Logging
import NIOCore

/// Splits the byte stream into request frames (int32 size prefix). A size <= 0 or above
/// `socket.request.max.bytes` closes the connection, as Kafka 0.8.2 does.
final class KafkaFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    let maxFrameSize: Int
    let logger: Logger

    init(maxFrameSize: Int, logger: Logger) {
        self.maxFrameSize = maxFrameSize
        self.logger = logger
    }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let size = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: Int32.self) else { return .needMoreData }
        guard size > 0, Int(size) <= maxFrameSize else {
            logger.warning("Closing connection from \(context.remoteAddress?.description ?? "?"): request size \(size) is not in 1...\(maxFrameSize) (socket.request.max.bytes)")
            buffer.moveReaderIndex(to: buffer.writerIndex)
            context.close(promise: nil)
            return .needMoreData
        }
        guard buffer.readableBytes >= 4 + Int(size) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        let frame = buffer.readSlice(length: Int(size))!
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .needMoreData
    }
}

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

/// Handles one connection: requests are processed one at a time and answered strictly in
/// order (pykafka matches responses by order; correlation ids may all be 0).
// Touched only on its channel's event loop.
final class KafkaConnectionHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = IOData

    let processor: RequestProcessor
    let logger: Logger
    private var queue = CircularBuffer<ByteBuffer>()
    private var busy = false
    private var closed = false
    private var readPaused = false
    private var info = ConnectionInfo(remote: "?")
    private static let maxQueued = 64

    init(processor: RequestProcessor, logger: Logger) {
        self.processor = processor
        self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        info = ConnectionInfo(remote: context.remoteAddress?.description ?? "?")
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        queue.removeAll()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        queue.append(unwrapInboundIn(data))
        if queue.count >= Self.maxQueued && !readPaused {
            readPaused = true
            _ = context.channel.setOption(ChannelOptions.autoRead, value: false)
        }
        processNext(context: context)
    }

    private func processNext(context: ChannelHandlerContext) {
        guard !busy, !closed, let frame = queue.popFirst() else { return }
        if readPaused && queue.count < Self.maxQueued / 2 {
            readPaused = false
            _ = context.channel.setOption(ChannelOptions.autoRead, value: true)
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
                self.processNext(context: context)
            case .success(.noResponse):
                self.processNext(context: context)
            case .success(.close(let reason)):
                self.logger.warning("Closing connection from \(self.info.remote): \(reason)")
                self.closed = true
                context.close(promise: nil)
            case .failure(let error):
                self.logger.error("Closing connection from \(self.info.remote) after an error while handling a request: \(error)")
                self.closed = true
                context.close(promise: nil)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("Connection \(info.remote) error: \(error)")
        context.close(promise: nil)
    }
}
