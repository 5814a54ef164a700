import Foundation
import KafkaTestSupport
import XCTest
import ZooKeeper

final class ZooKeeperClientTests: ZooKeeperTestCase {
    func connect(sessionTimeoutMs: Int = 6000) async throws -> ZooKeeperClient {
        let server = try await SharedZooKeeper.get()
        return try await ZooKeeperClient.connect(server.connectString, sessionTimeoutMs: sessionTimeoutMs)
    }

    func testCreateGetSetExistsChildrenDelete() async throws {
        let zk = try await connect()
        let root = uniqueRoot()

        let created = try await zk.create(root, data: bytes("hello"))
        XCTAssertEqual(created, root)
        var (data, stat) = try await zk.get(root)
        XCTAssertEqual(data, bytes("hello"))
        XCTAssertEqual(stat.version, 0)
        XCTAssertEqual(stat.dataLength, 5)
        XCTAssertEqual(stat.ephemeralOwner, 0)
        XCTAssertGreaterThan(stat.ctime, 0)

        let newStat = try await zk.set(root, data: bytes("world"))
        XCTAssertEqual(newStat.version, 1)
        (data, stat) = try await zk.get(root)
        XCTAssertEqual(data, bytes("world"))
        XCTAssertEqual(stat, newStat)

        // null data vs empty data
        try await zk.create(root + "/null", data: nil)
        try await zk.create(root + "/empty", data: [])
        let nullData = try await zk.get(root + "/null").data
        XCTAssertNil(nullData)
        let emptyData = try await zk.get(root + "/empty").data
        XCTAssertEqual(emptyData, [])
        try await zk.set(root + "/empty", data: nil)
        let nowNull = try await zk.get(root + "/empty").data
        XCTAssertNil(nowNull)

        let kids = try await zk.children(root)
        XCTAssertEqual(Set(kids), ["null", "empty"])
        let parentStat = try await zk.exists(root)
        XCTAssertEqual(parentStat?.numChildren, 2)
        XCTAssertEqual(parentStat?.cversion, 2)
        let missing = try await zk.exists(root + "/nope")
        XCTAssertNil(missing)

        try await zk.delete(root + "/null")
        try await zk.delete(root + "/empty", version: 1)
        let after = try await zk.children(root)
        XCTAssertEqual(after, [])
        try await zk.delete(root)
        let gone = try await zk.exists(root)
        XCTAssertNil(gone)

        // binary data round-trips
        let binary: [UInt8] = Array(0...255) + [0, 0, 255]
        try await zk.create(root, data: binary)
        let back = try await zk.get(root).data
        XCTAssertEqual(back, binary)
        try await zk.delete(root)
        await zk.close()
    }

    func testErrors() async throws {
        let zk = try await connect()
        let root = uniqueRoot()
        await assertThrows(.noNode(root)) { try await zk.get(root) }
        await assertThrows(.noNode(root)) { try await zk.set(root, data: nil) }
        await assertThrows(.noNode(root)) { try await zk.delete(root) }
        await assertThrows(.noNode(root)) { try await zk.children(root) }
        await assertThrows(.noNode(root + "/a/b")) { try await zk.create(root + "/a/b", data: nil) }
        try await zk.create(root, data: bytes("v0"))
        await assertThrows(.nodeExists(root)) { try await zk.create(root, data: nil) }

        // conditional set and delete
        try await zk.set(root, data: bytes("v1"), version: 0)
        await assertThrows(.badVersion(root)) { try await zk.set(root, data: bytes("v2"), version: 0) }
        let data = try await zk.get(root).data
        XCTAssertEqual(data, bytes("v1"))
        await assertThrows(.badVersion(root)) { try await zk.delete(root, version: 7) }

        try await zk.create(root + "/child", data: nil)
        await assertThrows(.notEmpty(root)) { try await zk.delete(root) }

        // invalid paths are refused by the client
        do {
            try await zk.create("no-slash", data: nil)
            XCTFail("expected an error")
        } catch ZooKeeperError.other(let code, _) {
            XCTAssertEqual(code, -8)
        }
        try await zk.deleteRecursive(root)
        await zk.close()
    }

    func testSequentialAndEphemeral() async throws {
        let zk = try await connect()
        let observer = try await connect()
        let root = uniqueRoot()
        try await zk.create(root, data: nil)

        let first = try await zk.create(root + "/seq-", data: nil, mode: .persistentSequential)
        let second = try await zk.create(root + "/seq-", data: nil, mode: .persistentSequential)
        XCTAssertEqual(first, root + "/seq-0000000000")
        XCTAssertEqual(second, root + "/seq-0000000001")

        let eph = try await zk.create(root + "/eph", data: bytes("me"), mode: .ephemeral)
        XCTAssertEqual(eph, root + "/eph")
        let ephStat = try await observer.exists(eph)
        XCTAssertEqual(ephStat?.ephemeralOwner, zk.sessionId)
        XCTAssertNotEqual(zk.sessionId, 0)

        let ephSeq = try await zk.create(root + "/es-", data: nil, mode: .ephemeralSequential)
        XCTAssertTrue(ephSeq.hasPrefix(root + "/es-"))
        XCTAssertEqual(ephSeq.count, (root + "/es-").count + 10)

        // ephemeral nodes cannot have children
        do {
            try await zk.create(eph + "/child", data: nil)
            XCTFail("expected an error")
        } catch ZooKeeperError.other(let code, _) {
            XCTAssertEqual(code, -108)
        }

        let timeout = zk.sessionTimeoutMs
        XCTAssertEqual(timeout, 6000)

        await zk.close()
        let kids = try await observer.children(root)
        XCTAssertEqual(Set(kids), ["seq-0000000000", "seq-0000000001"])
        try await observer.deleteRecursive(root)
        await observer.close()
    }

    func testRecursiveHelpers() async throws {
        let zk = try await connect()
        let root = uniqueRoot()
        try await zk.createRecursive(root + "/a/b/c", data: bytes("leaf"))
        let leaf = try await zk.get(root + "/a/b/c").data
        XCTAssertEqual(leaf, bytes("leaf"))
        let parentData = try await zk.get(root + "/a/b").data
        XCTAssertNil(parentData, "implicit parents have null data")
        await assertThrows(.nodeExists(root + "/a/b/c")) {
            try await zk.createRecursive(root + "/a/b/c", data: nil)
        }
        try await zk.createRecursive(root + "/a/x", data: nil, mode: .ephemeral)

        try await zk.ensurePath(root + "/a/b")
        try await zk.ensurePath(root + "/p/q/r")
        try await zk.ensurePath(root + "/p/q/r")
        let r = try await zk.exists(root + "/p/q/r")
        XCTAssertNotNil(r)

        try await zk.deleteRecursive(root)
        let gone = try await zk.exists(root)
        XCTAssertNil(gone)
        try await zk.deleteRecursive(root)   // missing is fine
        await zk.close()
    }

    func testChroot() async throws {
        let server = try await SharedZooKeeper.get()
        let root = uniqueRoot()
        let chrooted = server.connectString + root + "/kafka"

        // Without the chroot node every operation fails.
        let early = try await ZooKeeperClient.connect(chrooted)
        await assertThrows(.noNode("/brokers")) { try await early.create("/brokers", data: nil) }
        await early.close()

        try await ZooKeeperClient.ensureChroot(chrooted)
        try await ZooKeeperClient.ensureChroot(chrooted)   // idempotent
        let zk = try await ZooKeeperClient.connect(chrooted)
        let plain = try await connect()

        try await zk.createRecursive("/brokers/ids/0", data: bytes("b0"), mode: .ephemeral)
        let top = try await zk.children("/")
        XCTAssertEqual(top, ["brokers"])
        let seen = try await plain.get(root + "/kafka/brokers/ids/0").data
        XCTAssertEqual(seen, bytes("b0"))

        // The counter is the parent's cversion: /brokers already had one child created.
        let seq = try await zk.create("/brokers/s-", data: nil, mode: .persistentSequential)
        XCTAssertEqual(seq, "/brokers/s-0000000001", "created paths are relative to the chroot")

        let recorder = EventRecorder(zk.events())
        _ = try await zk.children("/brokers/ids", watch: true)
        try await plain.create(root + "/kafka/brokers/ids/1", data: nil)
        let childEvent = await recorder.waitFor(.nodeChildrenChanged("/brokers/ids"))
        XCTAssertTrue(childEvent, "events: \(recorder.events)")

        XCTAssertEqual(ZooKeeperClient.splitChroot("h1:1,h2:2/kafka/x").hosts, "h1:1,h2:2")
        XCTAssertEqual(ZooKeeperClient.splitChroot("h1:1,h2:2/kafka/x").chroot, "/kafka/x")
        XCTAssertNil(ZooKeeperClient.splitChroot("h1:1").chroot)
        XCTAssertNil(ZooKeeperClient.splitChroot("h1:1/").chroot)

        await zk.close()
        try await plain.deleteRecursive(root)
        await plain.close()
    }

    func testMultipleHostsWithADeadOne() async throws {
        let server = try await SharedZooKeeper.get()
        let dead = try FreePort.allocate()
        for connectString in ["127.0.0.1:\(dead),\(server.connectString)", "\(server.connectString),127.0.0.1:\(dead)"] {
            for _ in 0..<2 {
                let zk = try await ZooKeeperClient.connect(connectString, connectionTimeoutMs: 10_000)
                let stat = try await zk.exists("/")
                XCTAssertNotNil(stat)
                await zk.close()
            }
        }
    }

    func testConnectTimeout() async throws {
        let dead = try FreePort.allocate()
        let start = Date()
        await assertThrows(.connectTimeout("127.0.0.1:\(dead)")) {
            try await ZooKeeperClient.connect("127.0.0.1:\(dead)", connectionTimeoutMs: 500)
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
    }

    func testWatchesAreDeliveredOnce() async throws {
        let zk = try await connect()
        let other = try await connect()
        let root = uniqueRoot()
        let recorder = EventRecorder(zk.events())
        let second = EventRecorder(zk.events())   // broadcast: every subscriber gets everything

        // exists-watch on a missing node fires on creation
        let none = try await zk.exists(root, watch: true)
        XCTAssertNil(none)
        try await other.create(root, data: bytes("1"))
        let createdSeen = await recorder.waitFor(.nodeCreated(root))
        XCTAssertTrue(createdSeen)

        // data watch
        _ = try await zk.get(root, watch: true)
        try await other.set(root, data: bytes("2"))
        let changedSeen = await recorder.waitFor(.nodeDataChanged(root))
        XCTAssertTrue(changedSeen)

        // one-shot: a second change without re-arming is not reported
        try await other.set(root, data: bytes("3"))

        // children watch
        _ = try await zk.children(root, watch: true)
        try await other.create(root + "/c", data: nil)
        let childSeen = await recorder.waitFor(.nodeChildrenChanged(root))
        XCTAssertTrue(childSeen)

        // deletion (data watch on the child)
        _ = try await zk.get(root + "/c", watch: true)
        try await other.delete(root + "/c")
        let deletedSeen = await recorder.waitFor(.nodeDeleted(root + "/c"))
        XCTAssertTrue(deletedSeen)

        try await Task.sleep(nanoseconds: 300_000_000)
        let changes = recorder.events.filter { $0 == .nodeDataChanged(root) }.count
        XCTAssertEqual(changes, 1, "watches are one-shot: \(recorder.events)")
        let secondGotAll = await second.waitUntil { $0.filter { if case .session = $0 { return false } else { return true } }.count == 4 }
        XCTAssertTrue(secondGotAll, "second subscriber: \(second.events)")
        XCTAssertEqual(recorder.events.filter { if case .session = $0 { return false } else { return true } },
                       [.nodeCreated(root), .nodeDataChanged(root), .nodeChildrenChanged(root), .nodeDeleted(root + "/c")])

        try await other.deleteRecursive(root)
        await zk.close()
        await other.close()
    }

    /// Expires a session for real: the client reaches the server through a proxy that is cut for
    /// longer than the session timeout, so the server expires the session; after healing, the client
    /// learns it expired and must open a new one.
    func testSessionExpiryOpensANewSession() async throws {
        let server = try await SharedZooKeeper.get()
        let proxy = try TCPProxy.start(to: server.port)
        defer { proxy.stop() }
        let zk = try await ZooKeeperClient.connect(proxy.connectString, sessionTimeoutMs: 1000)
        let observer = try await connect()
        let root = uniqueRoot()
        try await observer.create(root, data: nil)
        let recorder = EventRecorder(zk.events())

        try await zk.create(root + "/eph", data: bytes("old"), mode: .ephemeral)
        _ = try await zk.get(root, watch: true)
        let oldSession = zk.sessionId
        XCTAssertEqual(zk.sessionTimeoutMs, 1000)

        proxy.cut()
        let disconnected = await recorder.waitFor(.session(.disconnected), timeout: 5)
        XCTAssertTrue(disconnected, "events: \(recorder.events)")

        // Calls made while cut off fail instead of hanging.
        let start = Date()
        do {
            _ = try await zk.get(root)
            XCTFail("expected a failure while disconnected")
        } catch let error as ZooKeeperError {
            XCTAssertTrue([.connectionLoss, .sessionExpired, .operationTimeout].contains(error), "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)

        // The server expires the session: its ephemeral node goes away.
        var gone = false
        for _ in 0..<100 {
            if try await observer.exists(root + "/eph") == nil { gone = true; break }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        XCTAssertTrue(gone, "the ephemeral node of the expired session is deleted")
        XCTAssertFalse(recorder.events.contains(.session(.expired)), "nothing can tell the client yet")

        proxy.heal()
        let expired = await recorder.waitFor(.session(.expired), timeout: 15)
        XCTAssertTrue(expired, "events: \(recorder.events)")
        let reconnected = await recorder.waitUntil(timeout: 15) { events in
            guard let e = events.firstIndex(of: .session(.expired)) else { return false }
            return events[e...].contains(.session(.connected))
        }
        XCTAssertTrue(reconnected, "events: \(recorder.events)")
        XCTAssertNotEqual(zk.sessionId, oldSession)
        XCTAssertNotEqual(zk.sessionId, 0)
        XCTAssertEqual(recorder.events, [.session(.disconnected), .session(.expired), .session(.connected)])

        // New operations work on the new session; ephemeral nodes can be re-created.
        try await zk.create(root + "/eph", data: bytes("new"), mode: .ephemeral)
        let stat = try await observer.exists(root + "/eph")
        XCTAssertEqual(stat?.ephemeralOwner, zk.sessionId)

        // The old watch died with the session: a change is not reported.
        try await observer.set(root, data: bytes("x"))
        try await Task.sleep(nanoseconds: 300_000_000)
        XCTAssertFalse(recorder.events.contains(.nodeDataChanged(root)), "events: \(recorder.events)")

        // Closing the new session removes its ephemeral node at once.
        await zk.close()
        let afterClose = try await observer.exists(root + "/eph")
        XCTAssertNil(afterClose)
        try await observer.deleteRecursive(root)
        await observer.close()
    }

    /// A short disconnection (shorter than the session timeout) keeps the session and its ephemeral nodes.
    func testShortDisconnectionKeepsTheSession() async throws {
        let server = try await SharedZooKeeper.get()
        let proxy = try TCPProxy.start(to: server.port)
        defer { proxy.stop() }
        let zk = try await ZooKeeperClient.connect(proxy.connectString, sessionTimeoutMs: 6000)
        let recorder = EventRecorder(zk.events())
        let root = uniqueRoot()
        try await zk.create(root, data: nil, mode: .ephemeral)
        let session = zk.sessionId

        proxy.cut()
        let disconnected = await recorder.waitFor(.session(.disconnected), timeout: 10)
        XCTAssertTrue(disconnected, "events: \(recorder.events)")
        proxy.heal()
        let connected = await recorder.waitFor(.session(.connected), timeout: 10)
        XCTAssertTrue(connected, "events: \(recorder.events)")
        XCTAssertEqual(zk.sessionId, session)
        let stat = try await zk.exists(root)
        XCTAssertEqual(stat?.ephemeralOwner, session)
        XCTAssertFalse(recorder.events.contains(.session(.expired)))
        await zk.close()
    }

    /// Attaching a second handle to a session (id + password) works.
    func testResumingASession() async throws {
        let zk = try await connect()
        let session = try XCTUnwrap(zk.session)
        XCTAssertEqual(session.password.count, 16)
        let server = try await SharedZooKeeper.get()
        let second = try await ZooKeeperClient.connect(server.connectString, resumingSession: session)
        XCTAssertEqual(second.sessionId, session.id)
        await second.close()
        await zk.close()
    }

    func testCloseIsIdempotentAndLaterCallsThrowClosed() async throws {
        let zk = try await connect()
        let stream = zk.events()
        await zk.close()
        await zk.close()
        await assertThrows(.closed) { try await zk.get("/") }
        await assertThrows(.closed) { try await zk.create("/x", data: nil) }
        // event streams finish on close
        var count = 0
        for await _ in stream { count += 1 }
        XCTAssertLessThanOrEqual(count, 1)
        var late = 0
        for await _ in zk.events() { late += 1 }
        XCTAssertEqual(late, 0)
        XCTAssertEqual(zk.sessionId, 0)
    }

    func testManyConcurrentOperations() async throws {
        let zk = try await connect()
        let root = uniqueRoot()
        try await zk.create(root, data: nil)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask {
                    try await zk.create("\(root)/n\(i)", data: bytes("\(i)"))
                    let d = try await zk.get("\(root)/n\(i)").data
                    XCTAssertEqual(d, bytes("\(i)"))
                }
            }
            try await group.waitForAll()
        }
        let kids = try await zk.children(root)
        XCTAssertEqual(kids.count, 200)
        try await zk.deleteRecursive(root)
        await zk.close()
    }
}
