/// Replica placement as Kafka 0.8.2's `AdminUtils.assignReplicasToBrokers` does it: spread
/// leaders round-robin from a random start, followers shifted so replicas of consecutive
/// partitions land on different brokers.
public enum ReplicaAssignment {
    public struct Error: Swift.Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public static func assign(brokers unsorted: [Int32], partitions: Int, replicationFactor: Int,
                              fixedStartIndex: Int? = nil, startPartitionId: Int = 0,
                              random: (Int) -> Int = { Int.random(in: 0..<$0) }) throws -> [Int32: [Int32]] {
        guard partitions > 0 else { throw Error(description: "number of partitions must be larger than 0") }
        guard replicationFactor > 0 else { throw Error(description: "replication factor must be larger than 0") }
        let brokers = unsorted.sorted()
        let n = brokers.count
        guard replicationFactor <= n else {
            throw Error(description: "replication factor: \(replicationFactor) larger than available brokers: \(n)")
        }
        let start = fixedStartIndex ?? random(n)
        var shift = fixedStartIndex ?? random(n)
        var result: [Int32: [Int32]] = [:]
        var p = startPartitionId
        for _ in 0..<partitions {
            if p > 0 && p % n == 0 { shift += 1 }
            let first = (p + start) % n
            var replicas = [brokers[first]]
            for j in 0..<(replicationFactor - 1) {
                let idx = (first + 1 + (shift + j) % (n - 1)) % n
                replicas.append(brokers[idx])
            }
            result[Int32(p)] = replicas
            p += 1
        }
        return result
    }
}
