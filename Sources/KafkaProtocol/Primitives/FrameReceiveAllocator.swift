import NIOCore

/// A connection's large frame (a request on the broker, a response on a client) while its bytes
/// arrive: the connection's handler parks it here between reads, and the channel's
/// `FrameReceiveAllocator` hands it to the next socket read, which then lands right after the
/// bytes already received. A 1.3 MB produce request arriving in many reads is thus received
/// without a copy; appending each read to it was 9 % of the broker's CPU at one partition.
///
/// Only an optimisation: if NIO reads into another buffer instead, or the parked buffer is shared
/// when NIO writes into it (ByteBuffer then copies it), the handler takes the frame back and
/// appends the read as before.
// Touched only on its channel's event loop (the allocator is called there by the read path).
public final class FrameReceiveHandoff: @unchecked Sendable {
    /// The partial frame waiting for the next read (its writable space is where that read goes).
    public var parked: ByteBuffer?
    /// Whether the last buffer given to a read was the parked frame.
    public var lastReadWasParked = false
    /// The size of the next read's buffer when it will start a frame that is likely large: the
    /// last frame's, which ended where its read did. With the whole frame fitting, it is parked
    /// without a copy of its first read.
    public var nextFrameBytes = 0

    /// Frames of at least this many bytes (prefix included) are parked; smaller ones are appended.
    public static let minimumFrameBytes = 32 * 1024
    /// Larger frames are not parked (see `parkIfLarge`).
    public static let maximumFrameBytes = 128 * 1024 * 1024

    public init() {}

    /// A handoff for `channel`, with the receive allocator that uses it and one read per wake-up
    /// (epoll is level-triggered, so nothing is missed; NIO's receive buffer pool then never
    /// keeps a frame handed to a read). Call on the channel's event loop before it reads.
    public static func install(on channel: Channel, adaptive: AdaptiveRecvByteBufferAllocator) throws -> FrameReceiveHandoff {
        let handoff = FrameReceiveHandoff()
        guard let options = channel.syncOptions else { return handoff }
        try options.setOption(ChannelOptions.maxMessagesPerRead, value: 1)
        try options.setOption(ChannelOptions.recvAllocator, value: FrameReceiveAllocator(handoff: handoff, adaptive: adaptive))
        return handoff
    }

    /// Parks `frame`, the received start of a frame whose prefix says `size`. The buffer a read
    /// goes into must start at the frame and have room for all of it; when `frame` has not (it
    /// shares storage with earlier requests, or is too small), its bytes are first copied into one
    /// that has: one copy of the first read instead of one of every later read.
    public func park(_ frame: ByteBuffer, size: Int, allocator: ByteBufferAllocator) {
        let whole = SizePrefixedFrame.prefixLength + size
        if frame.readerIndex == 0 && frame.capacity >= whole {
            parked = frame
        } else {
            var dedicated = allocator.buffer(capacity: whole)
            var bytes = frame
            dedicated.writeBuffer(&bytes)
            parked = dedicated
        }
    }

    /// Parks `bytes` when they start a partial frame (prefix says `size`) large enough to be
    /// worth it; whether it did (the caller then drops its own reference).
    /// Parking allocates the whole frame at once, so a size prefix above `maximumFrameBytes` (a
    /// client's responses may claim up to 2 GB) is not trusted with it: such frames are appended
    /// read by read, as they arrive.
    public func parkIfLarge(_ bytes: ByteBuffer, size: Int, allocator: ByteBufferAllocator) -> Bool {
        let whole = SizePrefixedFrame.prefixLength + size
        guard whole >= Self.minimumFrameBytes && whole <= Self.maximumFrameBytes else { return false }
        park(bytes, size: size, allocator: allocator)
        return true
    }

    /// A frame of `frameBytes` (prefix included) was cut with `leftover` received bytes after it:
    /// a large one that ended with its read sizes the next read (`nextFrameBytes`).
    public func frameCut(frameBytes: Int, leftover: Int) {
        if frameBytes >= Self.minimumFrameBytes && leftover == 0 { nextFrameBytes = frameBytes }
    }

    /// The parked frame, if the read did not take it.
    public func reclaim() -> ByteBuffer? {
        defer { parked = nil }
        return parked
    }
}

/// The receive allocator of connections that park frames: NIO's adaptive sizing, except that a read
/// continuing a parked frame (`FrameReceiveHandoff`) goes into that frame's buffer.
/// With one read per wake-up (`maxMessagesPerRead` 1) NIO's receive buffer pool keeps only its
/// first buffer and never the frames handed out here, so they stay uniquely owned by the read.
public struct FrameReceiveAllocator: RecvByteBufferAllocator {
    public let handoff: FrameReceiveHandoff
    public var adaptive: AdaptiveRecvByteBufferAllocator

    public init(handoff: FrameReceiveHandoff, adaptive: AdaptiveRecvByteBufferAllocator) {
        self.handoff = handoff
        self.adaptive = adaptive
    }

    public func buffer(allocator: ByteBufferAllocator) -> ByteBuffer {
        if let frame = handoff.reclaim() {
            handoff.lastReadWasParked = true
            return frame
        }
        handoff.lastReadWasParked = false
        let frameBytes = handoff.nextFrameBytes
        if frameBytes > 0 {
            handoff.nextFrameBytes = 0
            return allocator.buffer(capacity: frameBytes)
        }
        return adaptive.buffer(allocator: allocator)
    }

    /// No size while a frame is parked or expected: NIO's pool then asks `buffer(allocator:)`
    /// instead of reusing its own buffer (given `record` answers true).
    public func nextBufferSize() -> Int? {
        handoff.parked == nil && handoff.nextFrameBytes == 0 ? adaptive.nextBufferSize() : nil
    }

    public mutating func record(actualReadBytes: Int) -> Bool {
        if !handoff.lastReadWasParked { _ = adaptive.record(actualReadBytes: actualReadBytes) }
        return true
    }
}
