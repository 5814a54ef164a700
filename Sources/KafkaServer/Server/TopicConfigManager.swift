import Foundation
import KafkaCluster
import KafkaLog
import Logging
import Synchronization

/// Per-topic config overrides from `/config/topics/<t>`, kept in memory for the log layer and
/// refreshed through `/config/changes` notifications (Kafka 0.8.2 `TopicConfigManager`).
public final class TopicConfigManager: @unchecked Sendable {
    let zk: KafkaZooKeeper
    let logger: Logger
    private struct State {
        var overrides: [String: [String: String]] = [:]
        var known = Set<String>()
        var lastApplied: Int64 = -1
    }
    private let state = Mutex(State())
    var onChange: (@Sendable (String) -> Void)?

    init(zk: KafkaZooKeeper, logger: Logger) {
        self.zk = zk
        self.logger = logger
    }

    /// What the log layer asks for when it creates or refreshes a topic's logs.
    public func overrides(for topic: String) -> [String: String] { state.withLock { st in st.overrides[topic] ?? [:] } }

    /// Reads every topic's overrides, and the newest notification so old ones are not replayed.
    /// ZooKeeper reads are retried on connection loss while the session lasts; a new session
    /// calls `rewatch()`.
    private func zkCall<T: Sendable>(_ what: @autoclosure () -> String, _ operation: () async throws -> T) async throws -> T {
        try await zk.retrying(what(), scope: .session, logger: logger, operation)
    }

    func loadAll() async throws {
        let topics = try await zkCall("Reading topic configs") { try await zk.topicsWithConfig() }
        for t in topics { try await load(t) }
        // The watch must be set: without it no later --alter --config would reach this broker.
        let changes = try await zkCall("Watching \(ZkPaths.configChanges)") { try await zk.configChanges(watch: true) }
        state.withLock { st in st.lastApplied = changes.compactMap(Self.sequence).max() ?? -1 }
    }

    /// Makes sure a topic's overrides are cached before its logs are created.
    func ensureLoaded(_ topic: String) async {
        if state.withLock({ st in st.known.contains(topic) }) { return }
        try? await load(topic)
    }

    private func load(_ topic: String) async throws {
        let cfg = try await zkCall("Reading the config of topic \(topic)", { try await zk.topicConfig(topic) })
        if let bad = validate(cfg) { logger.error("Ignoring bad config of topic \(topic): \(bad)") }
        state.withLock { st in
            st.overrides[topic] = cfg
            st.known.insert(topic)
        }
    }

    private func validate(_ cfg: [String: String]) -> String? {
        do { _ = try LogConfig().applying(cfg); return nil } catch { return "\(error)" }
    }

    static func sequence(_ child: String) -> Int64? { ConfigChangeNotification.sequence(child) }

    /// Handles a change of `/config/changes`: applies notifications newer than the last one.
    func handleChanges() async {
        do {
            try await processChanges()
        } catch {
            // Only an ended session or a closed client gets here (connection loss is retried):
            // the new session calls rewatch().
            logger.error("Cannot process config changes: \(error)")
        }
    }

    /// After a new ZooKeeper session: sets the `/config/changes` watch again (watches die with
    /// their session) and applies the notifications made meanwhile. Throws when it could not.
    func rewatch() async throws {
        try await processChanges()
    }

    private func processChanges() async throws {
        let children = try await zkCall("Watching \(ZkPaths.configChanges)") { try await zk.configChanges(watch: true) }
        let last = state.withLock { st in st.lastApplied }
        for child in children.sorted() {
            guard let seq = Self.sequence(child), seq > last else { continue }
            // A notification deleted meanwhile (purged) is skipped; a failed read is not.
            guard let topic = try await zkCall("Reading \(ZkPaths.configChanges)/\(child)", { try await zk.configChangeTopic(child) }) else { continue }
            try await load(topic)
            logger.info("Processed topic config change \(child) for topic \(topic), new overrides \(overrides(for: topic))")
            onChange?(topic)
            state.withLock { st in st.lastApplied = max(st.lastApplied, seq) }
        }
    }
}
