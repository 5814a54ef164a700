/// One-line usages, printed after a usage error (`KafkaToolsMain.usageLine`); the full help comes
/// with `--help` or without arguments.
extension TopicCommand: ToolUsage {
    static let usageLine = "bin/kafka-topics.sh --zookeeper <host:port> --list|--describe|--create|--alter|--delete [--topic <topic>] [--partitions <n>] [--replication-factor <n>]"
}

extension ConsoleProducerCommand: ToolUsage {
    static let usageLine = "bin/kafka-console-producer.sh --broker-list <host:port,...> --topic <topic> [options]"
}

extension ConsoleConsumerCommand: ToolUsage {
    static let usageLine = "bin/kafka-console-consumer.sh --zookeeper <host:port> --topic <topic>|--whitelist <regex>|--blacklist <regex> [--from-beginning] [options]"
}

extension SimpleConsumerShellCommand: ToolUsage {
    static let usageLine = "bin/kafka-simple-consumer-shell.sh --broker-list <host:port,...> --topic <topic> [--partition <n>] [--offset <n>] [options]"
}

extension PreferredReplicaElectionCommand: ToolUsage {
    static let usageLine = "bin/kafka-preferred-replica-election.sh --zookeeper <host:port> [--path-to-json-file <file>]"
}

extension ReassignPartitionsCommand: ToolUsage {
    static let usageLine = "bin/kafka-reassign-partitions.sh --zookeeper <host:port> --generate|--execute|--verify [--topics-to-move-json-file <file> --broker-list <ids>] [--reassignment-json-file <file>]"
}

extension ReplicaVerificationCommand: ToolUsage {
    static let usageLine = "bin/kafka-replica-verification.sh --broker-list <host:port,...> [--topic-white-list <regex>] [--time <-2|-1|ms>] [options]"
}

extension MirrorMakerCommand: ToolUsage {
    static let usageLine = "bin/kafka-mirror-maker.sh --consumer.config <file> [--consumer.config <file> ...] --producer.config <file> --whitelist <regex>|--blacklist <regex> [options]"
}

extension ConsumerOffsetCheckerCommand: ToolUsage {
    static let usageLine = "bin/kafka-consumer-offset-checker.sh --zookeeper <host:port> --group <group> [--topic <t1,t2>] [--broker-info]"
}

extension ProducerPerfCommand: ToolUsage {
    static let usageLine = "bin/kafka-producer-perf-test.sh --broker-list <host:port,...> --topics <topic> --messages <n> [options]"
}

extension ConsumerPerfCommand: ToolUsage {
    static let usageLine = "bin/kafka-consumer-perf-test.sh --zookeeper <host:port> --topic <topic> [--messages <n>] [--threads <n>] [options]"
}

extension DumpLogCommand: ToolUsage {
    static let usageLine = "bin/kafka-dump-log.sh --files <file1,file2,...> [--print-data-log] [--deep-iteration] [--verify-index-only]"
}

extension LogPerfCommand: ToolUsage {
    static let usageLine = "kafka-tools log-perf-test --dir <dir> [--messages <n>] [--message-size <bytes>] [options]"
}

extension EndToEndLatencyCommand: ToolUsage {
    static let usageLine = "kafka-tools end-to-end-latency --broker-list <host:port> --topic <topic> [--rate <msg/s>] [--seconds <n>] [options]"
}

extension FaultCampaignCommand: ToolUsage {
    static let usageLine = "kafka-tools fault-campaign [--seed <n>] [--duration-seconds <n>] [--faults <kind,...>] [options]"
}
