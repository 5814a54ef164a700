import KafkaProtocol

/// `partition.assignment.strategy`: `roundrobin`, or `range` for any other value (as 0.8.2 does).
public enum PartitionAssignmentStrategy: String, Sendable, Equatable {
    case range
    case roundrobin

    public init(config: String) {
        self = config == "roundrobin" ? .roundrobin : .range
    }
}

/// Everything one rebalance decision depends on, as read from ZooKeeper: every registration in
/// the group, the topic list (for wildcard subscriptions) and the partitions of each topic.
/// Kafka 0.8.2's AssignmentContext, as a value.
public struct AssignmentContext: Sendable, Equatable {
    /// Our own consumer id (must be one of `members`).
    public var consumerId: String
    /// consumer id → its registration (`/consumers/<g>/ids/*`), ours included.
    public var members: [String: ConsumerRegistration]
    /// Children of `/brokers/topics`: wildcard subscriptions are evaluated against them.
    public var topics: [String]
    /// topic → partition ids (`/brokers/topics/<t>`); a topic missing here has no partitions.
    public var partitions: [String: [Int32]]
    public var excludeInternalTopics: Bool

    public init(consumerId: String, members: [String: ConsumerRegistration], topics: [String]? = nil,
                partitions: [String: [Int32]], excludeInternalTopics: Bool = true) {
        self.consumerId = consumerId
        self.members = members
        self.topics = topics ?? partitions.keys.sorted()
        self.partitions = partitions
        self.excludeInternalTopics = excludeInternalTopics
    }

    /// A consumer's topic → thread ids.
    public func threadIds(of consumer: String) -> [String: [ConsumerThreadId]] {
        members[consumer]?.threadIdsPerTopic(consumerId: consumer, allTopics: topics, excludeInternalTopics: excludeInternalTopics) ?? [:]
    }

    /// Our topic → our thread ids.
    public var myTopicThreadIds: [String: [ConsumerThreadId]] { threadIds(of: consumerId) }

    /// topic → the thread ids of every member subscribed to it, sorted as strings.
    public var consumersForTopic: [String: [ConsumerThreadId]] {
        var out: [String: [ConsumerThreadId]] = [:]
        for c in members.keys {
            for (t, ids) in threadIds(of: c) { out[t, default: []] += ids }
        }
        return out.mapValues { $0.sorted() }
    }

    /// Our topics → their partitions, ascending.
    public var partitionsForTopic: [String: [Int32]] {
        var out: [String: [Int32]] = [:]
        for t in myTopicThreadIds.keys { out[t] = (partitions[t] ?? []).sorted() }
        return out
    }
}

/// The outcome of a rebalance for one consumer: which of its threads owns which partitions.
/// A pure function of an `AssignmentContext` and the strategy (Kafka's RangeAssignor and
/// RoundRobinAssignor); the consumer only carries it out (owner znodes, offsets, fetchers).
public struct RebalanceDecision: Sendable, Equatable {
    public var consumerId: String
    public var strategy: PartitionAssignmentStrategy
    /// partition → our thread that owns it.
    public var ownership: [TopicPartition: ConsumerThreadId]

    public init(consumerId: String, strategy: PartitionAssignmentStrategy, ownership: [TopicPartition: ConsumerThreadId]) {
        self.consumerId = consumerId
        self.strategy = strategy
        self.ownership = ownership
    }

    /// Our thread → its partitions (sorted); threads that got nothing are absent.
    public var partitionsByThread: [ConsumerThreadId: [TopicPartition]] {
        var out: [ConsumerThreadId: [TopicPartition]] = [:]
        for (tp, t) in ownership { out[t, default: []].append(tp) }
        return out.mapValues { $0.sorted() }
    }

    public var partitions: [TopicPartition] { ownership.keys.sorted() }

    /// Decides our partitions. Throws when our registration is missing, or (roundrobin) when the
    /// members do not all subscribe to the same topics with the same stream counts.
    public static func decide(_ ctx: AssignmentContext, strategy: PartitionAssignmentStrategy) throws -> RebalanceDecision {
        guard ctx.members[ctx.consumerId] != nil else {
            throw ConsumerGroupError("consumer \(ctx.consumerId) is not registered in the group")
        }
        switch strategy {
        case .range: return RebalanceDecision(consumerId: ctx.consumerId, strategy: strategy, ownership: range(ctx))
        case .roundrobin: return RebalanceDecision(consumerId: ctx.consumerId, strategy: strategy, ownership: try roundRobin(ctx))
        }
    }

    /// Every member's decision merged: partition → owning thread (for checks and tools).
    public static func decideAll(_ ctx: AssignmentContext, strategy: PartitionAssignmentStrategy) throws -> [TopicPartition: ConsumerThreadId] {
        var out: [TopicPartition: ConsumerThreadId] = [:]
        for c in ctx.members.keys {
            var mine = ctx
            mine.consumerId = c
            out.merge(try decide(mine, strategy: strategy).ownership) { a, _ in a }
        }
        return out
    }

    /// Per topic: thread i of the sorted thread ids gets ⌊P/C⌋ partitions, plus one if
    /// i < P mod C, starting at ⌊P/C⌋·i + min(i, P mod C).
    static func range(_ ctx: AssignmentContext) -> [TopicPartition: ConsumerThreadId] {
        var out: [TopicPartition: ConsumerThreadId] = [:]
        let consumersForTopic = ctx.consumersForTopic
        let partitionsForTopic = ctx.partitionsForTopic
        for (topic, mine) in ctx.myTopicThreadIds {
            let threads = consumersForTopic[topic] ?? []
            let parts = partitionsForTopic[topic] ?? []
            guard !threads.isEmpty else { continue }
            let per = parts.count / threads.count
            let extra = parts.count % threads.count
            for thread in mine {
                guard let i = threads.firstIndex(of: thread) else { continue }
                let start = per * i + min(i, extra)
                let n = per + (i + 1 > extra ? 0 : 1)
                for j in start..<(start + n) { out[TopicPartition(topic, parts[j])] = thread }
            }
        }
        return out
    }

    /// All topics must have the same thread-id set; the sorted thread ids are cycled over our
    /// topics' partitions sorted (stably) by the hash of `"[topic,partition]"`.
    static func roundRobin(_ ctx: AssignmentContext) throws -> [TopicPartition: ConsumerThreadId] {
        let consumersForTopic = ctx.consumersForTopic
        guard let head = consumersForTopic.min(by: { JavaString.less($0.key, $1.key) }) else { return [:] }
        let headSet = Set(head.value)
        for (topic, ids) in consumersForTopic.sorted(by: { JavaString.less($0.key, $1.key) }) where Set(ids) != headSet {
            throw ConsumerGroupError("""
                Round-robin assignment is allowed only if all consumers in the group subscribe to the same topics, \
                AND if the stream counts across topics are identical for a given consumer instance.
                Topic \(topic) has the following available consumer streams: \(ids.map(\.description).joined(separator: ", "))
                Topic \(head.key) has the following available consumer streams: \(head.value.map(\.description).joined(separator: ", "))
                """)
        }
        let threads = headSet.sorted()
        guard !threads.isEmpty else { return [:] }
        var all: [TopicPartition] = []
        for (topic, parts) in ctx.partitionsForTopic.sorted(by: { JavaString.less($0.key, $1.key) }) {
            all += parts.map { TopicPartition(topic, $0) }
        }
        let ordered = all.enumerated().sorted { a, b in
            let ha = JavaString.hashCode(a.element.description), hb = JavaString.hashCode(b.element.description)
            return ha != hb ? ha < hb : a.offset < b.offset
        }.map(\.element)
        var out: [TopicPartition: ConsumerThreadId] = [:]
        for (k, tp) in ordered.enumerated() {
            let thread = threads[k % threads.count]
            if thread.consumer == ctx.consumerId { out[tp] = thread }
        }
        return out
    }
}
