import Foundation
import XCTest

/// The issue 10 tools against Kafka 0.8.2.2's option definitions (ReassignPartitionsCommand,
/// MirrorMaker, ReplicaVerificationTool, ProducerPerformance, ConsumerPerformance, PerfConfig):
/// `--help` lists every 0.8.2 option with its value name and description, a run without
/// arguments prints 0.8.2's one-line purpose and exits 1, and a flag 0.8.2 does not have (or a
/// bad value) exits non-zero with a message naming the flag. No cluster: nothing here connects.
final class NewToolOptionsTests: XCTestCase {
    /// One 0.8.2 option: its name, its `describedAs` value name (nil for a flag or none) and the
    /// start of its description.
    struct Opt {
        var name: String
        var value: String?
        var text: String
        init(_ name: String, _ value: String?, _ text: String) { self.name = name; self.value = value; self.text = text }
    }

    /// Whitespace runs as one space, so text wrapped over several help lines still matches.
    func flat(_ s: String) -> String {
        s.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).joined(separator: " ")
    }

    func checkHelp(_ script: String, _ options: [Opt], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try Project.run(script, ["--help"], timeout: 30)
        XCTAssertEqual(r.exitCode, 0, r.summary, file: file, line: line)
        let help = flat(r.stdout)
        for o in options {
            let shown = o.value.map { "--\(o.name) <\($0)>" } ?? "--\(o.name)"
            XCTAssertTrue(help.contains(shown + " "), "\(script) --help does not show \(shown):\n\(r.stdout)", file: file, line: line)
            if o.text.isEmpty { continue }
            XCTAssertTrue(help.contains(flat(o.text)), "\(script) --help lacks 0.8.2's description of --\(o.name) (\(o.text)):\n\(r.stdout)", file: file, line: line)
        }
    }

    func checkNoArguments(_ script: String, _ purpose: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try Project.run(script, [], timeout: 30)
        XCTAssertEqual(r.exitCode, 1, r.summary, file: file, line: line)
        XCTAssertTrue(r.stderr.contains(purpose), "expected \(purpose) in \(r.summary)", file: file, line: line)
    }

    /// Each argument list is misuse: exit status 1 and stderr naming `flag`.
    func checkMisuse(_ script: String, _ cases: [([String], String)], file: StaticString = #filePath, line: UInt = #line) throws {
        for (args, flag) in cases {
            let r = try Project.run(script, args, timeout: 30)
            XCTAssertEqual(r.exitCode, 1, "\(script) \(args): \(r.summary)", file: file, line: line)
            XCTAssertTrue(r.stderr.contains(flag), "\(script) \(args): the message does not name \(flag): \(r.summary)", file: file, line: line)
        }
    }

    func testReassignPartitions() throws {
        let script = "kafka-reassign-partitions.sh"
        try checkHelp(script, [
            Opt("zookeeper", "urls", "REQUIRED: The connection string for the zookeeper connection in the form host:port. Multiple URLS can be given to allow fail-over."),
            Opt("generate", nil, "Generate a candidate partition reassignment configuration. Note that this only generates a candidate assignment, it does not execute it."),
            Opt("execute", nil, "Kick off the reassignment as specified by the --reassignment-json-file option."),
            Opt("verify", nil, "Verify if the reassignment completed as specified by the --reassignment-json-file option."),
            Opt("reassignment-json-file", "manual assignment json file path", "The JSON file with the partition reassignment configuration"),
            Opt("topics-to-move-json-file", "topics to reassign json file path", "Generate a reassignment configuration to move the partitions of the specified topics to the list of brokers specified by the --broker-list option."),
            Opt("broker-list", "brokerlist", "The list of brokers to which the partitions need to be reassigned in the form \"0,1,2\". This is required if --topics-to-move-json-file is used to generate reassignment configuration"),
        ])
        try checkNoArguments(script, "This command moves topic partitions between replicas.")
        try checkMisuse(script, [
            (["--zookeeper", "127.0.0.1:1", "--verify", "--reassignment-json-file", "plan.json", "--no-such-flag"], "--no-such-flag"),
            (["--zookeeper", "127.0.0.1:1", "--generate", "--topics-to-move-json-file", "t.json", "--broker-list"], "--broker-list"),
            (["--zookeeper", "127.0.0.1:1", "--throttle", "100", "--execute", "--reassignment-json-file", "plan.json"], "--throttle"),
        ])
    }

    func testMirrorMaker() throws {
        let script = "kafka-mirror-maker.sh"
        try checkHelp(script, [
            Opt("consumer.config", "config file", "Consumer config to consume from a source cluster. You may specify multiple of these."),
            Opt("producer.config", "config file", "Embedded producer config."),
            Opt("new.producer", nil, "Use the new producer implementation."),
            Opt("num.producers", "Number of producers", "Number of producer instances"),
            Opt("num.streams", "Number of threads", "Number of consumption streams."),
            Opt("queue.size", "Queue size in terms of number of messages", "Number of messages that are buffered between the consumer and producer"),
            Opt("whitelist", "Java regex (String)", "Whitelist of topics to mirror."),
            Opt("blacklist", "Java regex (String)", "Blacklist of topics to mirror."),
            Opt("help", nil, ""),
        ])
        try checkNoArguments(script, "Continuously copy data between two Kafka clusters.")
        try checkMisuse(script, [
            (["--consumer.config", "c.properties", "--producer.config", "p.properties", "--whitelist", "t", "--no-such-flag"], "--no-such-flag"),
            (["--consumer.config", "c.properties", "--producer.config", "p.properties", "--whitelist", "t", "--num.streams", "two"], "--num.streams"),
            (["--consumer.config", "c.properties", "--producer.config", "p.properties", "--whitelist", "t", "--offset.commit.interval.ms", "1000"], "--offset.commit.interval.ms"),
        ])
    }

    func testReplicaVerification() throws {
        let script = "kafka-replica-verification.sh"
        try checkHelp(script, [
            Opt("broker-list", "hostname:port,...,hostname:port", "REQUIRED: The list of hostname and port of the server to connect to."),
            Opt("fetch-size", "bytes", "The fetch size of each request."),
            Opt("max-wait-ms", "ms", "The max amount of time each fetch request waits."),
            Opt("topic-white-list", "Java regex (String)", "White list of topics to verify replica consistency. Defaults to all topics."),
            Opt("time", "timestamp/-1(latest)/-2(earliest)", "Timestamp for getting the initial offsets."),
            Opt("report-interval-ms", "ms", "The reporting interval."),
        ])
        try checkNoArguments(script, "Validate that all replicas for a set of topics have the same data.")
        try checkMisuse(script, [
            (["--broker-list", "127.0.0.1:1", "--no-such-flag"], "--no-such-flag"),
            (["--broker-list", "127.0.0.1:1", "--fetch-size", "big"], "--fetch-size"),
            (["--broker-list", "127.0.0.1:1", "--report-interval-ms"], "--report-interval-ms"),
        ])
    }

    /// PerfConfig's options, which both perf tools have.
    let perfConfig = [
        Opt("messages", "count", "The number of messages to send or consume"),
        Opt("reporting-interval", "size", "Interval at which to print progress info"),
        Opt("date-format", "date format", "The date format to use for formatting the time field. See java.text.SimpleDateFormat for options."),
        Opt("show-detailed-stats", nil, "If set, stats are reported for each reporting interval as configured by reporting-interval"),
        Opt("hide-header", nil, "If set, skips printing the header for the stats"),
        Opt("message-size", "size", "The size of each message"),
        Opt("batch-size", "size", "Number of messages to write in a single batch"),
        Opt("compression-codec", "supported codec", "If set, messages are sent compressed"),
        Opt("help", nil, ""),
    ]

    func testProducerPerformance() throws {
        let script = "kafka-producer-perf-test.sh"
        try checkHelp(script, perfConfig + [
            Opt("broker-list", "hostname:port,..,hostname:port", "REQUIRED: broker info (the list of broker host and port for bootstrap."),
            Opt("topics", "topic1,topic2..", "REQUIRED: The comma separated list of topics to produce to"),
            Opt("request-timeout-ms", nil, "The produce request timeout in ms"),
            Opt("producer-num-retries", nil, "The producer retries number"),
            Opt("producer-retry-backoff-ms", nil, "The producer retry backoff time in milliseconds"),
            Opt("request-num-acks", nil, "Number of acks required for producer request to complete"),
            Opt("vary-message-size", nil, "If set, message size will vary up to the given maximum."),
            Opt("sync", nil, "If set, messages are sent synchronously"),
            Opt("threads", "number of threads", "Number of sending threads"),
            Opt("initial-message-id", "initial message id", "The is used for generating test data, If set, messages will be tagged with an ID and sent by producer starting from this ID sequentially. Message content will be String type and in the form of 'Message:000...1:xxx...'"),
            Opt("message-send-gap-ms", "message send time gap", "If set, the send thread will wait for specified time between two sends"),
            Opt("csv-reporter-enabled", nil, "If set, the CSV metrics reporter will be enabled"),
            Opt("metrics-dir", "metrics directory", "If csv-reporter-enable is set, and this parameter is"),
            Opt("new-producer", nil, "Use the new producer implementation."),
        ])
        try checkMisuse(script, [
            (["--broker-list", "127.0.0.1:1", "--topics", "t", "--messages", "1", "--no-such-flag"], "--no-such-flag"),
            (["--broker-list", "127.0.0.1:1", "--topics", "t", "--messages", "1", "--threads", "x"], "--threads"),
        ])
    }

    func testConsumerPerformance() throws {
        let script = "kafka-consumer-perf-test.sh"
        try checkHelp(script, perfConfig + [
            Opt("zookeeper", "urls", "REQUIRED: The connection string for the zookeeper connection in the form host:port. Multiple URLS can be given to allow fail-over."),
            Opt("topic", "topic", "REQUIRED: The topic to consume from."),
            Opt("group", "gid", "The group id to consume on"),
            Opt("fetch-size", "size", "The amount of data to fetch in a single request."),
            Opt("from-latest", nil, "If the consumer does not already have an established offset to consume from, start with the latest message present in the log rather than the earliest message."),
            Opt("socket-buffer-size", "size", "The size of the tcp RECV size."),
            Opt("threads", "count", "Number of processing threads"),
            Opt("num-fetch-threads", "count", "Number of fetcher threads"),
        ])
        try checkMisuse(script, [
            (["--zookeeper", "127.0.0.1:1", "--topic", "t", "--no-such-flag"], "--no-such-flag"),
            (["--zookeeper", "127.0.0.1:1", "--topic", "t", "--fetch-size", "1MB"], "--fetch-size"),
        ])
    }

    /// 0.8.2's zookeeper-shell.sh takes no flags: without its one argument it prints
    /// `USAGE: <script> zookeeper_host:port[/path] [args...]` and exits 1.
    func testZooKeeperShellUsage() throws {
        let r = try Project.run("zookeeper-shell.sh", [], timeout: 30)
        XCTAssertEqual(r.exitCode, 1, r.summary)
        XCTAssertTrue(r.stderr.contains("zookeeper-shell.sh zookeeper_host:port[/path] [args...]"), r.summary)
    }
}
