import Foundation
import KafkaTestSupport
import XCTest

/// A test class whose tests share one ZooKeeper and one broker (id 0): started by the first test's
/// set-up, stopped in the class tear-down; each test uses its own topics. A failed test prints the
/// cluster's diagnostics. Subclasses may give the broker settings (`clusterOverrides`).
class SharedClusterTestCase: XCTestCase {
    /// Broker settings of the subclass's cluster.
    class var clusterOverrides: [String: String] { [:] }

    /// One cluster per subclass; XCTest runs a class's tests one after another, on one thread at a time.
    nonisolated(unsafe) private static var clusters: [ObjectIdentifier: TestCluster] = [:]

    var cluster: TestCluster { Self.clusters[ObjectIdentifier(Self.self)]! }

    override func setUp() async throws {
        try await super.setUp()
        let key = ObjectIdentifier(Self.self)
        if Self.clusters[key] == nil {
            Self.clusters[key] = try await TestCluster.start(brokerIds: [0], overrides: Self.clusterOverrides)
        }
    }

    override func tearDown() async throws {
        if let c = Self.clusters[ObjectIdentifier(Self.self)],
           (testRun?.failureCount ?? 0) + (testRun?.unexpectedExceptionCount ?? 0) > 0 {
            print("\(name) failed; cluster diagnostics:\n\(c.diagnostics())")
        }
        try await super.tearDown()
    }

    override class func tearDown() {
        clusters.removeValue(forKey: ObjectIdentifier(self))?.stop()
        super.tearDown()
    }
}
