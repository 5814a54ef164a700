import KafkaProtocol
import KafkaServer
import Logging
import NIOCore
import NIOEmbedded
import XCTest
import Synchronization

/// The broker's per-connection pipeline on an EmbeddedChannel: frames split by their size
/// prefix, answered strictly in request order whatever order processing finishes in, bad
/// frames close the connection.
final class ConnectionPipelineTests: XCTestCase {
    /// A processor whose answers the test completes by hand, in any order.
    final class ManualProcessor: RequestProcessor, @unchecked Sendable {
        private struct State {
            var frames: [[UInt8]] = []
            var promises: [EventLoopPromise<ResponseAction>] = []
        }
        private let state = Mutex(State())

        func process(frame: ByteBuffer, connection: ConnectionInfo, eventLoop: EventLoop) -> EventLoopFuture<ResponseAction> {
            let p = eventLoop.makePromise(of: ResponseAction.self)
            state.withLock { st in
                st.frames.append(Array(frame.readableBytesView))
                st.promises.append(p)
            }
            return p.futureResult
        }

        var frames: [[UInt8]] { state.withLock { st in st.frames } }
        var count: Int { state.withLock { st in st.promises.count } }
        func complete(_ i: Int, with action: ResponseAction) { state.withLock { st in st.promises[i] }.succeed(action) }
    }

    func makeChannel(_ processor: ManualProcessor, maxRequestSize: Int = 1000,
                     limits: SocketServerLimits = SocketServerLimits()) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try SocketServer.addConnectionHandlers(to: channel.pipeline.syncOperations, maxRequestSize: maxRequestSize,
                                               processor: processor, logger: Logger(label: "test"), limits: limits)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9092)).wait()
        return channel
    }

    func frame(_ payload: [UInt8]) -> [UInt8] {
        withUnsafeBytes(of: Int32(payload.count).bigEndian, Array.init) + payload
    }

    func buffer(_ bytes: [UInt8]) -> ByteBuffer {
        var b = ByteBufferAllocator().buffer(capacity: bytes.count)
        b.writeBytes(bytes)
        return b
    }

    func response(_ tag: UInt8) -> ResponseAction {
        .send([.byteBuffer(buffer([tag]))], written: {})
    }

    func outbound(_ channel: EmbeddedChannel) throws -> [UInt8] {
        var out: [UInt8] = []
        while let part = try channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let b) = part { out += Array(b.readableBytesView) }
        }
        return out
    }

    func testFramesSplitAcrossReadsAndSeveralInOneRead() throws {
        let p = ManualProcessor()
        let channel = try makeChannel(p)
        let bytes = frame([1, 2, 3]) + frame([4]) + frame([5, 6])
        // Byte by byte for the first frame, then the rest in one read.
        for b in bytes.prefix(7) { try channel.writeInbound(buffer([b])) }
        try channel.writeInbound(buffer(Array(bytes.dropFirst(7))))
        // One request at a time: the second is not handed over before the first is answered.
        XCTAssertEqual(p.frames, [[1, 2, 3]])
        p.complete(0, with: response(0xA))
        p.complete(1, with: response(0xB))
        p.complete(2, with: response(0xC))
        XCTAssertEqual(p.frames, [[1, 2, 3], [4], [5, 6]])
        XCTAssertEqual(try outbound(channel), [0xA, 0xB, 0xC])
        XCTAssertTrue(channel.isActive)
    }

    func testResponsesLeaveInRequestOrderAndAcksZeroSendsNothing() throws {
        let p = ManualProcessor()
        let channel = try makeChannel(p)
        try channel.writeInbound(buffer(frame([1]) + frame([2]) + frame([3])))
        XCTAssertEqual(p.count, 1)
        p.complete(0, with: .noResponse)          // acks=0 produce
        XCTAssertEqual(p.count, 2, "the next request starts once the previous one is done")
        XCTAssertEqual(try outbound(channel), [])
        p.complete(1, with: response(2))
        p.complete(2, with: response(3))
        XCTAssertEqual(try outbound(channel), [2, 3])
    }

    func testOversizeOrNonPositiveSizeClosesTheConnection() throws {
        for size in [Int32(1001), 0, -7] {
            let p = ManualProcessor()
            let channel = try makeChannel(p, maxRequestSize: 1000)
            try? channel.writeInbound(buffer(withUnsafeBytes(of: size.bigEndian, Array.init) + [0, 0]))
            XCTAssertFalse(channel.isActive, "size \(size)")
            XCTAssertEqual(p.count, 0)
        }
    }

    func testCloseActionClosesAndDropsQueuedRequests() throws {
        let p = ManualProcessor()
        let channel = try makeChannel(p)
        try channel.writeInbound(buffer(frame([1]) + frame([2])))
        p.complete(0, with: .close(reason: "unknown api key"))
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(p.count, 1, "requests queued behind the bad one are not processed")
        XCTAssertEqual(try outbound(channel), [])
    }

    /// `connections.max.idle.ms` (100 ms here, swept every 10 ms): a connection with nothing read
    /// for that long closes; reads and a request in progress keep it open.
    func testIdleConnectionsCloseAfterConnectionsMaxIdleMs() throws {
        var limits = SocketServerLimits()
        limits.connectionsMaxIdleMs = 100
        let p = ManualProcessor()
        let silent = try makeChannel(p, limits: limits)
        silent.embeddedEventLoop.advanceTime(by: .milliseconds(60))
        XCTAssertTrue(silent.isActive, "not idle for 100 ms yet")
        silent.embeddedEventLoop.advanceTime(by: .milliseconds(80))
        XCTAssertFalse(silent.isActive, "nothing read for 140 ms")

        let reading = try makeChannel(p, limits: limits)
        try reading.writeInbound(buffer([0, 0, 0, 50]))  // a request of 50 bytes, sent a byte at a time
        for _ in 0..<10 {
            reading.embeddedEventLoop.advanceTime(by: .milliseconds(50))
            try reading.writeInbound(buffer([7]))
        }
        XCTAssertTrue(reading.isActive, "read every 50 ms for 500 ms")

        let waiting = try makeChannel(p, limits: limits)
        try waiting.writeInbound(buffer(frame([9])))
        waiting.embeddedEventLoop.advanceTime(by: .milliseconds(500))
        XCTAssertTrue(waiting.isActive, "a request in progress is not idle")
        p.complete(p.count - 1, with: response(1))
        XCTAssertEqual(try outbound(waiting), [1])
        waiting.embeddedEventLoop.advanceTime(by: .milliseconds(150))
        XCTAssertFalse(waiting.isActive, "idle for 150 ms after its answer")
    }

    /// With a longer idle time the sweep runs in slices (here 10 of 10 ms per 100 ms sweep): a
    /// connection is still checked once per sweep, not once per slice.
    func testSlicedIdleSweepClosesOnlyAfterTheIdleTime() throws {
        var limits = SocketServerLimits()
        limits.connectionsMaxIdleMs = 1000
        let p = ManualProcessor()
        let silent = try makeChannel(p, limits: limits)
        let reading = try makeChannel(p, limits: limits)
        try reading.writeInbound(buffer([0, 0, 0, 50]))
        for _ in 0..<19 {
            silent.embeddedEventLoop.advanceTime(by: .milliseconds(50))
            reading.embeddedEventLoop.advanceTime(by: .milliseconds(50))
            try reading.writeInbound(buffer([7]))
        }
        XCTAssertTrue(silent.isActive, "silent for 950 ms, below connections.max.idle.ms")
        silent.embeddedEventLoop.advanceTime(by: .milliseconds(250))
        XCTAssertFalse(silent.isActive, "silent for 1,200 ms: closed within two sweeps of the idle time")
        for _ in 0..<20 {
            reading.embeddedEventLoop.advanceTime(by: .milliseconds(50))
            try reading.writeInbound(buffer([7]))
        }
        XCTAssertTrue(reading.isActive, "read every 50 ms for 2 s")
    }
}
