import NIOCore

// Kafka 0.9's broker-side group membership (keys 11-14, v0), beyond 0.8.2: served so that
// clients whose group consumer needs it (librdkafka's `-G`/subscribe, kafka-python's group_id)
// work. Offsets committed by such groups still go to ZooKeeper through OffsetCommit (key 8).
// Layouts: apache/kafka JoinGroupRequest.json, SyncGroupRequest.json, HeartbeatRequest.json,
// LeaveGroupRequest.json and their responses, version 0.

/// Error codes of the group APIs (Kafka's `Errors`), beyond 0.8.2's `ErrorCode`.
public enum GroupErrorCode {
    public static let none: Int16 = 0
    public static let coordinatorNotAvailable: Int16 = 15
    public static let notCoordinator: Int16 = 16
    public static let illegalGeneration: Int16 = 22
    public static let inconsistentGroupProtocol: Int16 = 23
    public static let invalidGroupId: Int16 = 24
    public static let unknownMemberId: Int16 = 25
    public static let invalidSessionTimeout: Int16 = 26
    public static let rebalanceInProgress: Int16 = 27
}

/// JoinGroup (key 11) v0.
public struct JoinGroupRequest: KafkaRequest, Equatable {
    public static let apiKey = APIKey.joinGroup
    public struct GroupProtocol: Sendable, Equatable {
        public var name: String
        public var metadata: [UInt8]
        public init(name: String, metadata: [UInt8]) {
            self.name = name
            self.metadata = metadata
        }
    }
    public var groupId: String
    public var sessionTimeoutMs: Int32
    public var memberId: String
    public var protocolType: String
    public var protocols: [GroupProtocol]

    public init(groupId: String, sessionTimeoutMs: Int32, memberId: String, protocolType: String, protocols: [GroupProtocol]) {
        self.groupId = groupId
        self.sessionTimeoutMs = sessionTimeoutMs
        self.memberId = memberId
        self.protocolType = protocolType
        self.protocols = protocols
    }

    public static func decode(from buf: inout ByteBuffer) throws -> JoinGroupRequest {
        let group = try buf.readKafkaNonNullString()
        let timeout = try buf.readKafkaInt32()
        let member = try buf.readKafkaNonNullString()
        let type = try buf.readKafkaNonNullString()
        let protocols = try buf.readKafkaArray(minElementSize: 6) { b in
            GroupProtocol(name: try b.readKafkaNonNullString(), metadata: try b.readKafkaBytes().map { Array($0.readableBytesView) } ?? [])
        }
        return JoinGroupRequest(groupId: group, sessionTimeoutMs: timeout, memberId: member, protocolType: type, protocols: protocols)
    }

    public func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaString(groupId)
        buf.writeKafkaInt32(sessionTimeoutMs)
        buf.writeKafkaString(memberId)
        buf.writeKafkaString(protocolType)
        buf.writeKafkaArray(protocols) { b, p in
            b.writeKafkaString(p.name)
            b.writeKafkaBytes(p.metadata)
        }
    }
}

public struct JoinGroupResponse: KafkaResponse, Equatable {
    public struct Member: Sendable, Equatable {
        public var memberId: String
        public var metadata: [UInt8]
        public init(memberId: String, metadata: [UInt8]) {
            self.memberId = memberId
            self.metadata = metadata
        }
    }
    public var error: Int16
    public var generationId: Int32
    public var protocolName: String
    public var leaderId: String
    public var memberId: String
    /// Filled only in the leader's response.
    public var members: [Member]

    public init(error: Int16, generationId: Int32 = -1, protocolName: String = "", leaderId: String = "", memberId: String = "", members: [Member] = []) {
        self.error = error
        self.generationId = generationId
        self.protocolName = protocolName
        self.leaderId = leaderId
        self.memberId = memberId
        self.members = members
    }

    public func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaInt16(error)
        buf.writeKafkaInt32(generationId)
        buf.writeKafkaString(protocolName)
        buf.writeKafkaString(leaderId)
        buf.writeKafkaString(memberId)
        buf.writeKafkaArray(members) { b, m in
            b.writeKafkaString(m.memberId)
            b.writeKafkaBytes(m.metadata)
        }
    }

    public static func decode(from buf: inout ByteBuffer) throws -> JoinGroupResponse {
        let error = try buf.readKafkaInt16()
        let gen = try buf.readKafkaInt32()
        let proto = try buf.readKafkaNonNullString()
        let leader = try buf.readKafkaNonNullString()
        let member = try buf.readKafkaNonNullString()
        let members = try buf.readKafkaArray(minElementSize: 6) { b in
            Member(memberId: try b.readKafkaNonNullString(), metadata: try b.readKafkaBytes().map { Array($0.readableBytesView) } ?? [])
        }
        return JoinGroupResponse(error: error, generationId: gen, protocolName: proto, leaderId: leader, memberId: member, members: members)
    }
}

/// SyncGroup (key 14) v0.
public struct SyncGroupRequest: KafkaRequest, Equatable {
    public static let apiKey = APIKey.syncGroup
    public struct Assignment: Sendable, Equatable {
        public var memberId: String
        public var assignment: [UInt8]
        public init(memberId: String, assignment: [UInt8]) {
            self.memberId = memberId
            self.assignment = assignment
        }
    }
    public var groupId: String
    public var generationId: Int32
    public var memberId: String
    /// Sent by the leader only.
    public var assignments: [Assignment]

    public init(groupId: String, generationId: Int32, memberId: String, assignments: [Assignment]) {
        self.groupId = groupId
        self.generationId = generationId
        self.memberId = memberId
        self.assignments = assignments
    }

    public static func decode(from buf: inout ByteBuffer) throws -> SyncGroupRequest {
        let group = try buf.readKafkaNonNullString()
        let gen = try buf.readKafkaInt32()
        let member = try buf.readKafkaNonNullString()
        let assignments = try buf.readKafkaArray(minElementSize: 6) { b in
            Assignment(memberId: try b.readKafkaNonNullString(), assignment: try b.readKafkaBytes().map { Array($0.readableBytesView) } ?? [])
        }
        return SyncGroupRequest(groupId: group, generationId: gen, memberId: member, assignments: assignments)
    }

    public func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaString(groupId)
        buf.writeKafkaInt32(generationId)
        buf.writeKafkaString(memberId)
        buf.writeKafkaArray(assignments) { b, a in
            b.writeKafkaString(a.memberId)
            b.writeKafkaBytes(a.assignment)
        }
    }
}

public struct SyncGroupResponse: KafkaResponse, Equatable {
    public var error: Int16
    public var assignment: [UInt8]
    public init(error: Int16, assignment: [UInt8] = []) {
        self.error = error
        self.assignment = assignment
    }
    public func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaInt16(error)
        buf.writeKafkaBytes(assignment)
    }
    public static func decode(from buf: inout ByteBuffer) throws -> SyncGroupResponse {
        SyncGroupResponse(error: try buf.readKafkaInt16(), assignment: try buf.readKafkaBytes().map { Array($0.readableBytesView) } ?? [])
    }
}

/// Heartbeat (key 12) v0.
public struct HeartbeatRequest: KafkaRequest, Equatable {
    public static let apiKey = APIKey.heartbeat
    public var groupId: String
    public var generationId: Int32
    public var memberId: String
    public init(groupId: String, generationId: Int32, memberId: String) {
        self.groupId = groupId
        self.generationId = generationId
        self.memberId = memberId
    }
    public static func decode(from buf: inout ByteBuffer) throws -> HeartbeatRequest {
        HeartbeatRequest(groupId: try buf.readKafkaNonNullString(), generationId: try buf.readKafkaInt32(), memberId: try buf.readKafkaNonNullString())
    }
    public func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaString(groupId)
        buf.writeKafkaInt32(generationId)
        buf.writeKafkaString(memberId)
    }
}

/// LeaveGroup (key 13) v0.
public struct LeaveGroupRequest: KafkaRequest, Equatable {
    public static let apiKey = APIKey.leaveGroup
    public var groupId: String
    public var memberId: String
    public init(groupId: String, memberId: String) {
        self.groupId = groupId
        self.memberId = memberId
    }
    public static func decode(from buf: inout ByteBuffer) throws -> LeaveGroupRequest {
        LeaveGroupRequest(groupId: try buf.readKafkaNonNullString(), memberId: try buf.readKafkaNonNullString())
    }
    public func encode(into buf: inout ByteBuffer) {
        buf.writeKafkaString(groupId)
        buf.writeKafkaString(memberId)
    }
}

/// The response of Heartbeat and LeaveGroup v0: an error code alone.
public struct GroupErrorResponse: KafkaResponse, Equatable {
    public var error: Int16
    public init(error: Int16) { self.error = error }
    public func encode(into buf: inout ByteBuffer) { buf.writeKafkaInt16(error) }
    public static func decode(from buf: inout ByteBuffer) throws -> GroupErrorResponse {
        GroupErrorResponse(error: try buf.readKafkaInt16())
    }
}
