import Foundation

/// Loads the recorded client request frames from `<repo>/Tests/Vectors` (copied from the shared vectors).
enum Fixtures {
    static let vectorsDirectory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Vectors")

    static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
    static func string(_ b: [UInt8]?) -> String? { b.map { String(decoding: $0, as: UTF8.self) } }

    static func frame(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: vectorsDirectory.appendingPathComponent(name)))
    }

    /// The bytes a string of hex digit pairs spells ("00ff" -> [0, 255]).
    static func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    /// The fixtures listed in index.json.
    static func index() throws -> [[String: Any]] {
        let data = try Data(contentsOf: vectorsDirectory.appendingPathComponent("index.json"))
        let root = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        return root["fixtures"] as! [[String: Any]]
    }

    struct ExpectedMessage {
        var offset: Int64
        var codec: String
        var key: String?
        var value: String?
        var inner: [ExpectedMessage]
        var snappyFraming: String?
    }

    struct ProduceFixture {
        var file: String
        var client: String
        var messageSet: [UInt8]
        var expected: [ExpectedMessage]
        var codec: String { expected.first?.codec ?? "none" }
    }

    /// Every Produce fixture, with its message set cut out of the frame and the decoded expectation from index.json.
    static func produceFixtures() throws -> [ProduceFixture] {
        let fixtures = try index()
        var out: [ProduceFixture] = []
        for f in fixtures where (f["api"] as? String) == "Produce" {
            let file = f["file"] as! String
            let req = f["request"] as! [String: Any]
            let part = ((req["topics"] as! [[String: Any]])[0]["partitions"] as! [[String: Any]])[0]
            let msgs = (part["messages"] as! [[String: Any]]).map(expected)
            out.append(ProduceFixture(file: file, client: f["client"] as! String,
                                      messageSet: try produceMessageSet(frame(file)), expected: msgs))
        }
        return out
    }

    private static func expected(_ m: [String: Any]) -> ExpectedMessage {
        let comp = m["compression"] as? [String: Any]
        return ExpectedMessage(offset: (m["offset"] as! NSNumber).int64Value, codec: m["codec"] as! String,
                               key: m["key"] as? String, value: m["value"] as? String,
                               inner: (m["inner_messages"] as? [[String: Any]] ?? []).map(expected),
                               snappyFraming: comp?["snappy_framing"] as? String)
    }

    /// Cuts the (single) message set out of a Produce v0 request frame.
    static func produceMessageSet(_ frame: [UInt8]) throws -> [UInt8] {
        var r = Reader(bytes: frame)
        _ = r.i32()                 // size
        _ = r.i16(); _ = r.i16()    // api key, version
        _ = r.i32()                 // correlation id
        r.skip(Int(r.i16()))        // client id
        _ = r.i16(); _ = r.i32()    // acks, timeout
        precondition(r.i32() == 1)  // topics
        r.skip(Int(r.i16()))
        precondition(r.i32() == 1)  // partitions
        _ = r.i32()
        let n = Int(r.i32())
        return Array(frame[r.pos..<(r.pos + n)])
    }

    struct Reader {
        let bytes: [UInt8]
        var pos = 0
        mutating func i16() -> Int16 { defer { pos += 2 }; return Int16(bytes[pos]) << 8 | Int16(bytes[pos + 1]) }
        mutating func i32() -> Int32 {
            defer { pos += 4 }
            return Int32(bytes[pos]) << 24 | Int32(bytes[pos + 1]) << 16 | Int32(bytes[pos + 2]) << 8 | Int32(bytes[pos + 3])
        }
        mutating func skip(_ n: Int) { pos += max(0, n) }
    }
}

