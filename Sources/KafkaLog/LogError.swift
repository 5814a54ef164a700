import KafkaProtocol

/// Errors of the log layer. `errorCode` is what the broker answers with.
public enum LogError: Error, Sendable, CustomStringConvertible {
    /// Fetch offset above the log end or below the log start (code 1).
    case offsetOutOfRange(requested: Int64, start: Int64, end: Int64)
    /// The produced set failed validation (its own code: 2, 10, 18 or -1).
    case invalidMessageSet(MessageSetError)
    /// A file system failure (code -1).
    case io(String)
    /// The log was closed or deleted (code -1).
    case closed(String)
    /// A caller error such as a negative truncation offset (code -1).
    case invalidArgument(String)

    public var errorCode: ErrorCode {
        switch self {
        case .offsetOutOfRange: return .offsetOutOfRange
        case let .invalidMessageSet(e): return e.errorCode
        case .io, .closed, .invalidArgument: return .unknown
        }
    }

    public var description: String {
        switch self {
        case let .offsetOutOfRange(r, s, e):
            return "Request for offset \(r) but we only have log segments in the range \(s) to \(e)."
        case let .invalidMessageSet(e): return e.description
        case let .io(s): return s
        case let .closed(s): return s
        case let .invalidArgument(s): return s
        }
    }
}
