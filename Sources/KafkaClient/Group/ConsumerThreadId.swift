/// Java's `String` semantics that the 0.8 high-level consumer depends on: thread ids sort with
/// `String.compareTo` (UTF-16 code units), and round-robin deals partitions in `String.hashCode` order.
public enum JavaString {
    /// `String.hashCode()`: s[0]·31^(n-1) + … + s[n-1] over UTF-16 code units, wrapping in 32 bits.
    public static func hashCode(_ s: String) -> Int32 {
        var h: Int32 = 0
        for u in s.utf16 { h = h &* 31 &+ Int32(u) }
        return h
    }

    /// `a.compareTo(b) < 0`: lexicographic over UTF-16 code units, a proper prefix first.
    public static func less(_ a: String, _ b: String) -> Bool {
        var ia = a.utf16.makeIterator()
        var ib = b.utf16.makeIterator()
        while true {
            switch (ia.next(), ib.next()) {
            case (nil, nil): return false
            case (nil, _): return true
            case (_, nil): return false
            case let (x?, y?): if x != y { return x < y }
            }
        }
    }
}

/// A consumer stream's identity, `<consumerId>-<n>` (n counts from 0 per topic). Kafka orders
/// thread ids by this string, so `g_c-10` sorts before `g_c-2`.
public struct ConsumerThreadId: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var consumer: String
    public var thread: Int

    public init(_ consumer: String, _ thread: Int) {
        self.consumer = consumer
        self.thread = thread
    }

    public var description: String { "\(consumer)-\(thread)" }

    public static func < (a: ConsumerThreadId, b: ConsumerThreadId) -> Bool {
        JavaString.less(a.description, b.description)
    }
}
