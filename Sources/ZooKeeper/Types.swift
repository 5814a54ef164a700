import CZooKeeperShim

/// How a znode is created. Sequential nodes get a 10-digit, zero-padded counter appended by the server.
public enum CreateMode: Sendable {
    case persistent, ephemeral, persistentSequential, ephemeralSequential

    var shimMode: zks_create_mode {
        switch self {
        case .persistent: return ZKS_CREATE_PERSISTENT
        case .ephemeral: return ZKS_CREATE_EPHEMERAL
        case .persistentSequential: return ZKS_CREATE_PERSISTENT_SEQUENTIAL
        case .ephemeralSequential: return ZKS_CREATE_EPHEMERAL_SEQUENTIAL
        }
    }
}

/// The metadata ZooKeeper keeps for every znode (a subset of `org.apache.zookeeper.data.Stat`).
public struct ZNodeStat: Sendable, Equatable {
    /// Data version: incremented on every `set`; the `version` argument of `set`/`delete` compares against it.
    public var version: Int32
    /// Children version: incremented whenever a child is created or deleted.
    public var cversion: Int32
    /// Session id of the owner for an ephemeral node, 0 otherwise.
    public var ephemeralOwner: Int64
    /// Creation time, milliseconds since the epoch.
    public var ctime: Int64
    /// Last modification time, milliseconds since the epoch.
    public var mtime: Int64
    public var dataLength: Int32
    public var numChildren: Int32

    public init(version: Int32, cversion: Int32, ephemeralOwner: Int64, ctime: Int64, mtime: Int64,
                dataLength: Int32, numChildren: Int32) {
        self.version = version
        self.cversion = cversion
        self.ephemeralOwner = ephemeralOwner
        self.ctime = ctime
        self.mtime = mtime
        self.dataLength = dataLength
        self.numChildren = numChildren
    }

    init(_ s: zks_stat) {
        self.init(version: s.version, cversion: s.cversion, ephemeralOwner: s.ephemeral_owner,
                  ctime: s.ctime, mtime: s.mtime, dataLength: s.data_length, numChildren: s.num_children)
    }
}

public enum ZooKeeperError: Error, Equatable, Sendable, CustomStringConvertible {
    case noNode(String)
    case nodeExists(String)
    case badVersion(String)
    case notEmpty(String)
    /// The session expired (the client opens a new one by itself; see `ZooKeeperEvent.session`).
    case sessionExpired
    /// The connection to the server was lost before the result arrived; the operation may or may not have happened.
    case connectionLoss
    case operationTimeout
    /// The client was closed.
    case closed
    /// No connection within `connectionTimeoutMs`; carries the connect string.
    case connectTimeout(String)
    /// Any other ZooKeeper error code (see `zookeeper.h`, e.g. -8 bad arguments for an invalid path).
    case other(code: Int32, path: String)

    public var description: String {
        switch self {
        case .noNode(let p): return "ZooKeeper: no node \(p)"
        case .nodeExists(let p): return "ZooKeeper: node already exists \(p)"
        case .badVersion(let p): return "ZooKeeper: bad version for \(p)"
        case .notEmpty(let p): return "ZooKeeper: node has children \(p)"
        case .sessionExpired: return "ZooKeeper: session expired"
        case .connectionLoss: return "ZooKeeper: connection loss"
        case .operationTimeout: return "ZooKeeper: operation timeout"
        case .closed: return "ZooKeeper: client is closed"
        case .connectTimeout(let s): return "ZooKeeper: timed out connecting to \(s)"
        case .other(let code, let p):
            let text = String(cString: zks_error_text(code))
            return "ZooKeeper: error \(code) (\(text)) for \(p)"
        }
    }

    /// Maps a C client result code (non-zero) to an error about `path`.
    static func from(code: Int32, path: String) -> ZooKeeperError {
        switch code {
        case ZKS_NONODE.rawValue: return .noNode(path)
        case ZKS_NODEEXISTS.rawValue: return .nodeExists(path)
        case ZKS_BADVERSION.rawValue: return .badVersion(path)
        case ZKS_NOTEMPTY.rawValue: return .notEmpty(path)
        // INVALIDSTATE: the handle is unrecoverable (expired) but its event has not been processed yet.
        case ZKS_SESSIONEXPIRED.rawValue, ZKS_INVALIDSTATE.rawValue, ZKS_SESSIONMOVED.rawValue:
            return .sessionExpired
        case ZKS_CONNECTIONLOSS.rawValue: return .connectionLoss
        case ZKS_OPERATIONTIMEOUT.rawValue: return .operationTimeout
        case ZKS_CLOSING.rawValue: return .closed
        default: return .other(code: code, path: path)
        }
    }
}

public enum SessionState: Sendable {
    case connected, disconnected, expired
}

/// Session changes and (one-shot) watch notifications. Paths are relative to the chroot.
public enum ZooKeeperEvent: Sendable, Equatable {
    case session(SessionState)
    case nodeCreated(String), nodeDeleted(String), nodeDataChanged(String), nodeChildrenChanged(String)
}

/// Identity of a ZooKeeper session: enough to attach another handle to it
/// (`ZooKeeperClient.connect(..., resumingSession:)`). Tests use it to expire sessions for real.
public struct ZooKeeperSession: Sendable, Equatable {
    public var id: Int64
    public var password: [UInt8]   // 16 bytes

    public init(id: Int64, password: [UInt8]) {
        self.id = id
        self.password = password
    }
}
