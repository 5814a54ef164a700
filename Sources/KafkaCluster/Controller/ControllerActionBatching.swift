import KafkaProtocol

extension ControllerStateMachine {
    /// The actions of several independent per-partition decisions (e.g. the answers to many
    /// lost state-write races, each decided alone) as one batch: every state write first, then
    /// one LeaderAndIsr per broker holding all its partitions. Only for lists made of state
    /// writes (one per partition) and LeaderAndIsr sends; anything else (metadata, stop-replica,
    /// reassignment steps, two writes of one partition) comes back unchanged, in order.
    public static func batched(_ actions: [ControllerAction]) -> [ControllerAction] {
        var writes: [ControllerAction] = []
        var written = Set<TopicPartition>()
        var brokers: [Int32] = []
        var states: [Int32: [PartitionStateInfo]] = [:]
        var leaders: [Int32: [Int32: BrokerEndpoint]] = [:]
        for action in actions {
            switch action {
            case let .createState(tp, _), let .updateState(tp, _, _):
                guard written.insert(tp).inserted else { return actions }
                writes.append(action)
            case let .sendLeaderAndIsr(broker, s, l):
                if states[broker] == nil { brokers.append(broker) }
                states[broker, default: []] += s
                for e in l { leaders[broker, default: [:]][e.id] = e }
            default:
                return actions
            }
        }
        return writes + brokers.sorted().map { b in
            .sendLeaderAndIsr(broker: b, states: states[b]!, leaders: leaders[b, default: [:]].values.sorted { $0.id < $1.id })
        }
    }
}
