import Foundation
import KafkaClient
import KafkaProtocol
import KafkaServer
import Logging
import NIOCore
import XCTest
import Synchronization

/// Request frames over a real socket, where large partial frames are parked for the next read
/// (`FrameReceiveAllocator`): whatever the pieces they arrive in, each frame reaches the
/// processor whole and unchanged, in order, and small frames pipelined beside them too.
final class LargeFrameReceiveTests: XCTestCase {
    /// Answers each frame with its length and a checksum of its bytes, and keeps both.
    final class DigestProcessor: RequestProcessor, @unchecked Sendable {
        let seen = Mutex<[(Int, UInt64)]>([])

        static func digest<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 {
            var h: UInt64 = 14_695_981_039_346_656_037
            for b in bytes { h = (h ^ UInt64(b)) &* 1_099_511_628_211 }
            return h
        }

        func process(frame: ByteBuffer, connection: ConnectionInfo, eventLoop: EventLoop) -> EventLoopFuture<ResponseAction> {
            let d = Self.digest(frame.readableBytesView)
            seen.withLock { $0.append((frame.readableBytes, d)) }
            var out = ByteBufferAllocator().buffer(capacity: 16)
            out.writeInteger(UInt64(frame.readableBytes))
            out.writeInteger(d)
            return eventLoop.makeSucceededFuture(.send([.byteBuffer(out)], written: {}))
        }
    }

    func testLargeFramesInRandomPiecesArriveWholeAndInOrder() async throws {
        let processor = DigestProcessor()
        let server = try await SocketServer.start(host: "127.0.0.1", port: 0, maxRequestSize: 4 << 20, sendBuffer: 1 << 20,
                                                  receiveBuffer: 1 << 20, threads: 1, processor: processor,
                                                  logger: Logger(label: "test"))
        let port = server.localPort
        var rng = SystemRandomNumberGenerator()
        // Large frames (parked between reads) with small ones between them.
        var payloads: [[UInt8]] = []
        for i in 0..<24 {
            let size = i % 3 == 2 ? Int.random(in: 1...300, using: &rng) : Int.random(in: 40_000...2_500_000, using: &rng)
            payloads.append((0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) })
        }
        var stream: [UInt8] = []
        for p in payloads { stream += withUnsafeBytes(of: Int32(p.count).bigEndian, Array.init) + p }

        let bytes = stream
        let expectedAnswerBytes = payloads.count * 16
        let answers = try await Task.detached { () throws -> [UInt8] in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw POSIXError(.EIO) }
            defer { close(fd) }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard rc == 0 else { throw POSIXError(.ECONNREFUSED) }
            // Pieces of 1 B to 300 KB, some with a pause, so frames start and end anywhere in a read.
            var sent = 0
            var local = SystemRandomNumberGenerator()
            while sent < bytes.count {
                let n = min(bytes.count - sent, [1, 7, 4096, 65_536, 300_000].randomElement(using: &local)!)
                let w = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, n, 0) }
                guard w > 0 else { throw POSIXError(.EPIPE) }
                sent += w
                if Bool.random(using: &local) { usleep(200) }
            }
            var got: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while got.count < expectedAnswerBytes {
                let r = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, 4096, 0) }
                guard r > 0 else { break }
                got += chunk[0..<r]
            }
            return got
        }.value
        await server.shutdown()

        XCTAssertEqual(answers.count, payloads.count * 16, "every frame answered")
        let seen = processor.seen.withLock { $0 }
        XCTAssertEqual(seen.count, payloads.count)
        for (i, p) in payloads.enumerated() where i < seen.count {
            XCTAssertEqual(seen[i].0, p.count, "frame \(i) length")
            XCTAssertEqual(seen[i].1, DigestProcessor.digest(p), "frame \(i) bytes")
        }
    }
}

/// The client side (`BrokerConnection`, which a follower fetches with): large responses, read
/// into place between reads, reach the caller whole and matched to their requests.
final class LargeResponseReceiveTests: XCTestCase {
    /// Answers a metadata request for topic "n=<size>" with `size` bytes that depend on `size`.
    final class SizedAnswerProcessor: RequestProcessor, @unchecked Sendable {
        static func body(size: Int) -> [UInt8] {
            var x = UInt64(size) &* 0x9E37_79B9_7F4A_7C15 | 1
            return (0..<size).map { _ in x ^= x << 13; x ^= x >> 7; x ^= x << 17; return UInt8(truncatingIfNeeded: x) }
        }

        func process(frame: ByteBuffer, connection: ConnectionInfo, eventLoop: EventLoop) -> EventLoopFuture<ResponseAction> {
            var f = frame
            guard f.readInteger(as: Int16.self) != nil, f.readInteger(as: Int16.self) != nil,
                  let corr = f.readInteger(as: Int32.self), let idLength = f.readInteger(as: Int16.self),
                  f.readSlice(length: max(Int(idLength), 0)) != nil, f.readInteger(as: Int32.self) == 1,
                  let nameLength = f.readInteger(as: Int16.self), let name = f.readString(length: Int(nameLength)),
                  name.hasPrefix("n="), let size = Int(name.dropFirst(2)) else {
                return eventLoop.makeSucceededFuture(.close(reason: "not a sized metadata request"))
            }
            var out = ByteBufferAllocator().buffer(capacity: 8 + size)
            out.writeInteger(Int32(4 + size))
            out.writeInteger(corr)
            out.writeBytes(Self.body(size: size))
            return eventLoop.makeSucceededFuture(.send([.byteBuffer(out)], written: {}))
        }
    }

    func testLargeResponsesArriveWholeAndMatched() async throws {
        let server = try await SocketServer.start(host: "127.0.0.1", port: 0, maxRequestSize: 1 << 20, sendBuffer: 1 << 20,
                                                  receiveBuffer: 1 << 20, threads: 1, processor: SizedAnswerProcessor(),
                                                  logger: Logger(label: "test"))
        let conn = try await BrokerConnection.connect(host: "127.0.0.1", port: server.localPort, clientId: "t")
        var rng = SystemRandomNumberGenerator()
        let sizes = (0..<20).map { i in i % 4 == 3 ? Int.random(in: 0...200, using: &rng) : Int.random(in: 40_000...3_000_000, using: &rng) }
        // Pipelined: the responses follow each other on the connection.
        let bodies = try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
            for (i, size) in sizes.enumerated() {
                group.addTask {
                    var b = try await conn.send(MetadataRequest(topics: ["n=\(size)"]))
                    return (i, b.readBytes(length: b.readableBytes) ?? [])
                }
            }
            var out = [[UInt8]](repeating: [], count: sizes.count)
            for try await (i, b) in group { out[i] = b }
            return out
        }
        await conn.close()
        await server.shutdown()
        for (i, size) in sizes.enumerated() {
            XCTAssertEqual(bodies[i].count, size, "response \(i) length")
            XCTAssertTrue(bodies[i] == SizedAnswerProcessor.body(size: size), "response \(i) bytes")
        }
    }
}
