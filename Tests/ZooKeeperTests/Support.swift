import Foundation
import Synchronization
import KafkaTestSupport
import XCTest
import ZooKeeper

/// One real ZooKeeper server shared by the tests of this target (started on first use, stopped by
/// `ZooKeeperTestCase.tearDown()` of the class); every test works under its own unique root path.
enum SharedZooKeeper {
    private static let server = Mutex<ZooKeeperServer?>(nil)
    private static let starting = Mutex<Task<ZooKeeperServer, Error>?>(nil)

    static func get() async throws -> ZooKeeperServer {
        if let s = server.withLock({ $0 }) { return s }
        let task = starting.withLock { t -> Task<ZooKeeperServer, Error> in
            if let t { return t }
            let new = Task { try await ZooKeeperServer.start() }
            t = new
            return new
        }
        let s = try await task.value
        server.withLock { $0 = s }
        return s
    }

    static func stop() {
        let s = server.withLock { current -> ZooKeeperServer? in
            defer { current = nil }
            return current
        }
        starting.withLock { $0 = nil }
        s?.stop()
    }
}

class ZooKeeperTestCase: XCTestCase {
    override class func tearDown() {
        SharedZooKeeper.stop()
        super.tearDown()
    }

    /// A unique root path for one test.
    func uniqueRoot(_ name: String = #function) -> String {
        let clean = name.filter { $0.isLetter || $0.isNumber }
        return "/\(clean)-\(UUID().uuidString.prefix(8))"
    }
}

/// Records every event of one stream, for polling from tests.
final class EventRecorder: Sendable {
    private final class Box: Sendable {
        let events = Mutex<[ZooKeeperEvent]>([])
    }
    private let box = Box()
    private let task: Task<Void, Never>

    init(_ stream: AsyncStream<ZooKeeperEvent>) {
        let box = self.box
        self.task = Task {
            for await event in stream { box.events.withLock { $0.append(event) } }
        }
    }

    deinit { task.cancel() }

    var events: [ZooKeeperEvent] { box.events.withLock { $0 } }

    /// Waits until `event` has been recorded; true if it was within `timeout` seconds.
    func waitFor(_ event: ZooKeeperEvent, timeout: Double = 10) async -> Bool {
        await waitUntil(timeout: timeout) { $0.contains(event) }
    }

    func waitUntil(timeout: Double = 10, _ predicate: ([ZooKeeperEvent]) -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if predicate(events) { return true }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return predicate(events)
    }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Asserts that `body` throws exactly `expected`.
func assertThrows<T>(_ expected: ZooKeeperError, file: StaticString = #filePath, line: UInt = #line,
                     _ body: () async throws -> T) async {
    do {
        _ = try await body()
        XCTFail("expected \(expected), nothing was thrown", file: file, line: line)
    } catch let error as ZooKeeperError {
        XCTAssertEqual(error, expected, file: file, line: line)
    } catch {
        XCTFail("expected \(expected), got \(error)", file: file, line: line)
    }
}
