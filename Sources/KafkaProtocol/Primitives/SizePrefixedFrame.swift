import NIOCore

/// Kafka's framing of requests and responses alike: an int32 big-endian size, then that many
/// bytes. The one codec for it: the request and response framers write through it, the broker's
/// connection handler and the client's response decoder cut frames with it, each with its own
/// bounds (the broker: 1...`socket.request.max.bytes`; the client: at least a correlation id).
public enum SizePrefixedFrame {
    /// Bytes of the size prefix.
    public static let prefixLength = 4

    /// What the start of a received byte stream holds.
    public enum Head: Equatable, Sendable {
        /// Not all of the size prefix has arrived.
        case needSize
        /// The size (in bounds) has arrived, not yet all of the frame.
        case partial(size: Int)
        /// The whole frame has arrived.
        case complete(size: Int)
        /// The size is outside the allowed bounds: the stream cannot be read on.
        case outOfBounds(size: Int32)
    }

    /// Looks at the first frame in `buffer` without consuming anything.
    @inlinable
    public static func head(of buffer: ByteBuffer, sizes: ClosedRange<Int>) -> Head {
        guard let size = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: Int32.self) else { return .needSize }
        guard sizes.contains(Int(size)) else { return .outOfBounds(size: size) }
        return buffer.readableBytes >= prefixLength + Int(size) ? .complete(size: Int(size)) : .partial(size: Int(size))
    }

    /// Cuts the first frame out of `buffer` when it is complete and in bounds: its bytes after the
    /// size prefix (a slice, nothing copied); the reader index moves past it. Otherwise what is
    /// missing or wrong, and `buffer` is left as it was.
    @inlinable
    public static func next(from buffer: inout ByteBuffer, sizes: ClosedRange<Int>) -> (head: Head, frame: ByteBuffer?) {
        let h = head(of: buffer, sizes: sizes)
        guard case .complete(let size) = h else { return (h, nil) }
        buffer.moveReaderIndex(forwardBy: prefixLength)
        return (h, buffer.readSlice(length: size)!)
    }

    /// Appends one frame to `buffer`: the size prefix, then what `body` writes.
    @inlinable
    public static func write(into buffer: inout ByteBuffer, body: (inout ByteBuffer) -> Void) {
        let start = buffer.writerIndex
        buffer.writeInteger(Int32(0), endianness: .big)
        body(&buffer)
        buffer.setInteger(Int32(buffer.writerIndex - start - prefixLength), at: start, endianness: .big)
    }
}
