import Logging
import NIOCore
import NIOPosix

/// The broker's listening socket (Kafka's `SocketServer`): one NIO channel per connection,
/// frames split by size, requests answered in order.
public final class SocketServer: Sendable {
    let group: MultiThreadedEventLoopGroup
    let channel: Channel
    public var localPort: Int { channel.localAddress?.port ?? -1 }

    public init(host: String?, port: Int, maxRequestSize: Int, sendBuffer: Int, receiveBuffer: Int,
                threads: Int, processor: RequestProcessor, logger: Logger) throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.so_sndbuf), value: SocketOptionValue(sendBuffer))
            .childChannelOption(ChannelOptions.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBuffer))
            .childChannelOption(ChannelOptions.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 64 * 1024, maximum: 1024 * 1024))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try SocketServer.addConnectionHandlers(to: channel.pipeline.syncOperations, maxRequestSize: maxRequestSize,
                                                           processor: processor, logger: logger)
                }
            }
        do {
            self.channel = try bootstrap.bind(host: (host?.isEmpty ?? true) ? "0.0.0.0" : host!, port: port).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
        self.group = group
    }

    /// The per-connection pipeline: size-prefixed frames in, responses out in request order.
    public static func addConnectionHandlers(to pipeline: ChannelPipeline.SynchronousOperations, maxRequestSize: Int,
                                             processor: RequestProcessor, logger: Logger) throws {
        try pipeline.addHandler(ByteToMessageHandler(KafkaFrameDecoder(maxFrameSize: maxRequestSize, logger: logger)))
        try pipeline.addHandler(KafkaConnectionHandler(processor: processor, logger: logger))
    }

    public func shutdown() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}
