import Foundation
import KafkaProtocol
import XCTest

/// `PropertiesFile`, the one java.util.Properties-style reader of server.properties,
/// consumer.config and producer.config.
final class PropertiesFileTests: XCTestCase {
    private func pairs(_ text: String) -> [String] {
        PropertiesFile.parse(text).map { "\($0.key)=\($0.value)" }
    }

    func testSyntax() {
        let p = PropertiesFile.parse("a=1\n! bang comment\nb : 2\nc 3\nlong=x\\\n  y\nesc=tab\\there")
        XCTAssertEqual(p.map(\.key), ["a", "b", "c", "long", "esc"])
        XCTAssertEqual(p.map(\.value), ["1", "2", "3", "xy", "tab\there"])
    }

    func testCommentsAndBlankLines() {
        XCTAssertEqual(pairs("# a comment\n   # indented comment\n\t! bang\n\n   \nk=v\n"), ["k=v"])
        // A comment line ending in a backslash does not continue.
        XCTAssertEqual(pairs("# comment \\\nk=v"), ["k=v"])
        // '#' inside a value is text.
        XCTAssertEqual(pairs("k=v#not-a-comment"), ["k=v#not-a-comment"])
    }

    func testSeparators() {
        XCTAssertEqual(pairs("a=1\nb:2\nc 3\nd\t4\ne = 5\nf : 6\ng   =   7\nh=\ni\nj==x\nk:=y"),
                       ["a=1", "b=2", "c=3", "d=4", "e=5", "f=6", "g=7", "h=", "i=", "j==x", "k==y"])
        // Only the first separator splits; later '=' and ':' belong to the value.
        XCTAssertEqual(pairs("zookeeper.connect=h1:2181,h2:2181/kafka"), ["zookeeper.connect=h1:2181,h2:2181/kafka"])
    }

    func testContinuations() {
        XCTAssertEqual(pairs("list=a,\\\n    b,\\\n\tc\nnext=1"), ["list=a,b,c", "next=1"])
        // An even number of trailing backslashes is an escaped backslash, not a continuation.
        XCTAssertEqual(pairs("dir=C:\\\\\nnext=1"), ["dir=C:\\", "next=1"])
        // A continuation on the last line ends the pair.
        XCTAssertEqual(pairs("k=v\\"), ["k=v"])
        // A continued line may look like a comment: it is text.
        XCTAssertEqual(pairs("k=a\\\n#b"), ["k=a#b"])
    }

    func testEscapes() {
        XCTAssertEqual(pairs("key\\ with\\ blanks=v"), ["key with blanks=v"])
        XCTAssertEqual(pairs("a\\=b=c"), ["a=b=c"])
        XCTAssertEqual(pairs("a\\:b:c"), ["a:b=c"])
        XCTAssertEqual(PropertiesFile.parse("k=line1\\nline2\\rx\\fy")[0].value, "line1\nline2\rx\u{0C}y")
        XCTAssertEqual(PropertiesFile.parse("k=caf\\u00e9 \\u20AC")[0].value, "café €")
        XCTAssertEqual(PropertiesFile.parse("k=\\q\\\\")[0].value, "q\\")
    }

    func testLineEndings() {
        XCTAssertEqual(pairs("a=1\r\nb=2\rc=3\nd=4"), ["a=1", "b=2", "c=3", "d=4"])
        XCTAssertEqual(pairs("long=x\\\r\n  y\r\n"), ["long=xy"])
    }

    func testDictionaryLaterKeyWinsAndTrailingBlanksGo() {
        let d = PropertiesFile.dictionary(PropertiesFile.parse("a=1\na=2  \t\nb= x "))
        XCTAssertEqual(d, ["a": "2", "b": "x"])
    }

    func testLoadNamesTheFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("props-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("x.properties").path
        try "# server\nbroker.id = 7\nlog.dirs=/a,\\\n  /b\n".write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertEqual(try PropertiesFile.load(path: file).map { "\($0.key)=\($0.value)" }, ["broker.id=7", "log.dirs=/a,/b"])

        let missing = dir.appendingPathComponent("missing.properties").path
        XCTAssertThrowsError(try PropertiesFile.load(path: missing, what: "--consumer.config file")) { e in
            XCTAssertEqual("\(e)", "--consumer.config file \(missing) does not exist")
        }
        XCTAssertThrowsError(try PropertiesFile.load(path: dir.path)) { e in
            XCTAssertEqual("\(e)", "config file \(dir.path) is a directory")
        }
    }
}
