import Foundation
import KafkaProtocol
import NIOCore

// libFuzzer target over the broker's request decoders and the message-set validator.
//
// Built for fuzzing by bin/fuzz.sh (`-sanitize=fuzzer`, compile condition KAFKA_FUZZ), it exports
// `LLVMFuzzerTestOneInput`. Built normally (`swift build`), it is a replay tool: it runs each file
// (or every file of each directory) given on the command line through the same code once, so a
// crash input found by the fuzzer can be replayed and debugged without the fuzzer.
//
// An input is a byte stream as a client writes it to the broker: size-prefixed request frames
// (the golden vectors in ../shared/vectors are such frames, and seed the corpus). Each frame is
// cut as the broker cuts it (size 1...socket.request.max.bytes, else the stream ends), its header
// decoded, its body decoded by the request type the header names; Produce message sets then go
// through the leader and follower validation the log applies before an append, and a client's
// deep decoding. Fetch requests are merged as the broker merges them. Decoded requests are
// re-encoded and decoded again, which must give the same request.

/// What the broker accepts by default (socket.request.max.bytes, message.max.bytes).
let maxRequestSize = 104_857_600
let maxMessageBytes = 1_000_012

enum FuzzFailure: Error { case mismatch(String) }

func check(_ ok: Bool, _ what: @autoclosure () -> String) {
    if !ok { fatalError("fuzz invariant violated: \(what())") }
}

func validateMessageSet(_ set: ByteBuffer) {
    // Magic-1 sets are converted before validation, as the produce handler does.
    let bytes = Array(MessageSetDowngrade.downgradeIfNeeded(set).readableBytesView)
    if let info = try? MessageSetValidator.analyze(bytes, maxMessageBytes: maxMessageBytes) {
        check(info.validBytes <= bytes.count, "validBytes beyond the set")
        if let v = try? MessageSetValidator.validateAndAssignOffsets(bytes, firstOffset: 1_000, maxMessageBytes: maxMessageBytes) {
            check(v.lastOffset - v.firstOffset + 1 == Int64(v.messageCount), "offsets do not cover the messages")
            // What the leader appends must pass the follower's validation unchanged.
            if let f = try? MessageSetValidator.validateKeepingOffsets(v.bytes, maxMessageBytes: Int.max) {
                check(f.bytes == v.bytes, "follower validation changed the leader's bytes")
            } else {
                check(v.bytes.isEmpty, "leader output refused by follower validation")
            }
        }
        _ = try? MessageSetValidator.validateAndAssignOffsets(bytes, firstOffset: 0, maxMessageBytes: maxMessageBytes, requireKeys: true)
    }
    _ = try? MessageSetValidator.validateKeepingOffsets(bytes, maxMessageBytes: maxMessageBytes, nextOffset: 0)
    _ = try? MessageSetDecoder.decode(bytes, deep: true)
    _ = try? MessageSetDecoder.shallowEntries(bytes)
    bytes.withUnsafeBytes { _ = MessageSetDecoder.completePrefix($0) }
}

func roundTrip<R: KafkaRequest & Equatable>(_ r: R, _ decode: (inout ByteBuffer) throws -> R) {
    var b = ByteBuffer()
    r.encode(into: &b)
    guard let again = try? decode(&b) else { fatalError("re-encoded \(R.self) does not decode") }
    check(again == r, "\(R.self) round trip differs")
}

/// Whether decoded strings can be written back (names longer than an int16 after U+FFFD
/// replacement cannot).
func roundTrippable(_ strings: [String]) -> Bool { strings.allSatisfy { $0.utf8.count <= Int(Int16.max) } }

func handleFrame(_ frame: ByteBuffer) {
    var buf = frame
    guard let header = try? RequestHeader.decode(from: &buf) else { return }
    guard let key = APIKey(rawValue: header.apiKey) else { return }
    var body = buf
    switch key {
    case .produce:
        guard let req = try? ProduceRequest.decode(from: &body) else { return }
        for t in req.topics { for p in t.partitions { validateMessageSet(p.messageSet) } }
    case .fetch:
        guard let req = try? FetchRequest.decode(from: &body) else { return }
        let merged = req.mergingDuplicates()
        var seen = Set<TopicPartition>()
        for t in merged.topics { for p in t.partitions { check(seen.insert(TopicPartition(t.topic, p.partition)).inserted, "duplicate after merge") } }
        // (Names longer than an int16 after U+FFFD replacement cannot be written back.)
        if req.topics.allSatisfy({ $0.topic.utf8.count <= Int(Int16.max) }) { roundTrip(req, FetchRequest.decode) }
    case .offsets:
        _ = try? OffsetsRequest.decode(from: &body)
    case .metadata:
        if let req = try? MetadataRequest.decode(from: &body, version: header.apiVersion), roundTrippable(req.topics) {
            roundTrip(req) { try MetadataRequest.decode(from: &$0, version: header.apiVersion) }
        }
    case .leaderAndIsr:
        _ = try? LeaderAndIsrRequest.decode(from: &body)
    case .stopReplica:
        _ = try? StopReplicaRequest.decode(from: &body)
    case .updateMetadata:
        _ = try? UpdateMetadataRequest.decode(from: &body)
    case .controlledShutdown:
        _ = try? ControlledShutdownRequest.decode(from: &body)
    case .offsetCommit:
        _ = try? OffsetCommitRequest.decode(from: &body, version: header.apiVersion)
    case .offsetFetch:
        _ = try? OffsetFetchRequest.decode(from: &body, version: header.apiVersion)
    case .consumerMetadata:
        _ = try? ConsumerMetadataRequest.decode(from: &body)
    case .joinGroup:
        if let req = try? JoinGroupRequest.decode(from: &body), roundTrippable([req.groupId, req.memberId, req.protocolType] + req.protocols.map(\.name)) {
            roundTrip(req, JoinGroupRequest.decode)
        }
    case .syncGroup:
        if let req = try? SyncGroupRequest.decode(from: &body), roundTrippable([req.groupId, req.memberId] + req.assignments.map(\.memberId)) {
            roundTrip(req, SyncGroupRequest.decode)
        }
    case .heartbeat:
        if let req = try? HeartbeatRequest.decode(from: &body), roundTrippable([req.groupId, req.memberId]) {
            roundTrip(req, HeartbeatRequest.decode)
        }
    case .leaveGroup:
        if let req = try? LeaveGroupRequest.decode(from: &body), roundTrippable([req.groupId, req.memberId]) {
            roundTrip(req, LeaveGroupRequest.decode)
        }
    case .apiVersions:
        if let req = try? ApiVersionsRequest.decode(from: &body, version: header.apiVersion),
           roundTrippable([req.clientSoftwareName, req.clientSoftwareVersion]) {
            roundTrip(req) { try ApiVersionsRequest.decode(from: &$0, version: header.apiVersion) }
        }
    }
}

/// Cuts frames as the broker does; a bad size ends the stream (the broker closes the connection).
func fuzzOne(_ data: UnsafeRawBufferPointer) {
    var stream = ByteBuffer(bytes: data)
    var frames = 0
    while let size = stream.getInteger(at: stream.readerIndex, endianness: .big, as: Int32.self) {
        guard size > 0, Int(size) <= maxRequestSize, stream.readableBytes >= 4 + Int(size) else { break }
        stream.moveReaderIndex(forwardBy: 4)
        handleFrame(stream.readSlice(length: Int(size))!)
        frames += 1
    }
    // Inputs that are not a frame at all also go through the message-set code directly.
    if frames == 0 { validateMessageSet(ByteBuffer(bytes: data)) }
}

#if KAFKA_FUZZ
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzOne(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
    return 0
}

public typealias CArgv = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<CArgv>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

/// SwiftPM links an executable's entry point under `<module>_main`; it hands over to libFuzzer.
@_cdecl("kafka_request_fuzzer_main")
public func fuzzerMain(_ argc: Int32, _ argv: CArgv) -> Int32 {
    var c = argc
    var v = argv
    return LLVMFuzzerRunDriver(&c, &v, LLVMFuzzerTestOneInput)
}
#else
@main
struct ReplayInputs {
    static func main() {
        var files: [String] = []
        for arg in CommandLine.arguments.dropFirst() {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: arg, isDirectory: &isDir) else {
                FileHandle.standardError.write("no such file: \(arg)\n".data(using: .utf8)!)
                exit(2)
            }
            if isDir.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: arg)) ?? []
                files += names.sorted().map { "\(arg)/\($0)" }
            } else {
                files.append(arg)
            }
        }
        if files.isEmpty {
            print("usage: kafka-request-fuzzer FILE|DIR ...   (replays inputs; bin/fuzz.sh builds the libFuzzer binary)")
            exit(2)
        }
        for f in files {
            guard let d = FileManager.default.contents(atPath: f) else { continue }
            d.withUnsafeBytes { fuzzOne($0) }
        }
        print("replayed \(files.count) inputs without a crash")
    }
}
#endif
