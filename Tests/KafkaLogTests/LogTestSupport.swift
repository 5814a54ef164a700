import Foundation
import Logging
import XCTest
import KafkaLog
import KafkaProtocol

/// A fresh temporary directory per test, removed afterwards.
class LogTestCase: XCTestCase {
    var tmp: String = ""
    let logger = Logger(label: "test.kafka.log")

    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "kafkalog-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: tmp)
    }

    func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    func set(_ values: [String], keys: [String?]? = nil, codec: CompressionCodec = .none) -> [UInt8] {
        let msgs: [(key: [UInt8]?, value: [UInt8]?)] = values.enumerated().map { i, v in
            (keys?[i].map { Array($0.utf8) }, Array(v.utf8))
        }
        return try! MessageSetBuilder.build(msgs, codec: codec)
    }

    func values(_ b: [UInt8]) throws -> [String] {
        try MessageSetDecoder.decode(b).map { String(decoding: $0.value ?? [], as: UTF8.self) }
    }

    func offsets(_ b: [UInt8]) throws -> [Int64] { try MessageSetDecoder.decode(b).map(\.offset) }

    /// Reads every message from `from` to the log end, following the fetch protocol.
    func readAll(_ log: Log, from: Int64? = nil, maxBytes: Int = 4096) throws -> [DecodedMessage] {
        var next = from ?? log.logStartOffset
        var out: [DecodedMessage] = []
        while next < log.logEndOffset {
            let b = try log.readBytes(startOffset: next, maxBytes: maxBytes)
            let d = try MessageSetDecoder.decode(b).filter { $0.offset >= next }
            guard let last = d.last else { XCTFail("no progress at \(next)"); break }
            out += d
            next = last.offset + 1
        }
        return out
    }

    func files(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    func config(_ f: (inout LogConfig) -> Void) -> LogConfig {
        var c = LogConfig()
        f(&c)
        return c
    }
}
