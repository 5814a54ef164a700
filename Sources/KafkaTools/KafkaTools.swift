import ArgumentParser
import Foundation

/// `kafka-tools <command> [options]`: the bin/ scripts call these commands.
public enum KafkaToolsMain {
    static let commands: [String: any AsyncParsableCommand.Type] = [
        "topics": TopicCommand.self,
        "simple-consumer-shell": SimpleConsumerShellCommand.self,
        "preferred-replica-election": PreferredReplicaElectionCommand.self,
        "reassign-partitions": ReassignPartitionsCommand.self,
        "replica-verification": ReplicaVerificationCommand.self,
        "mirror-maker": MirrorMakerCommand.self,
        "console-producer": ConsoleProducerCommand.self,
        "console-consumer": ConsoleConsumerCommand.self,
        "consumer-offset-checker": ConsumerOffsetCheckerCommand.self,
        "producer-perf-test": ProducerPerfCommand.self,
        "consumer-perf-test": ConsumerPerfCommand.self,
        "dump-log": DumpLogCommand.self,
        "log-perf-test": LogPerfCommand.self,
        "end-to-end-latency": EndToEndLatencyCommand.self,
        "fault-campaign": FaultCampaignCommand.self,
    ]

    public static func main() async -> Never {
        ToolLogging.bootstrap()
        signal(SIGPIPE, SIG_IGN)
        var args = Array(CommandLine.arguments.dropFirst())
        guard let name = args.first, let command = commands[name] else {
            Console.err("USAGE: kafka-tools <command> [options]\ncommands: \(commands.keys.sorted().joined(separator: ", "))")
            exit(1)
        }
        args.removeFirst()
        if args.isEmpty {
            // Kafka's tools print their help when run without arguments.
            Console.err(command.helpMessage())
            exit(1)
        }
        do {
            var cmd = try command.parseAsRoot(args)
            if var asyncCmd = cmd as? any AsyncParsableCommand {
                try await asyncCmd.run()
            } else {
                try cmd.run()
            }
            exit(0)
        } catch let e as ToolError {
            Console.err(e.description)
            exit(1)
        } catch {
            let code = command.exitCode(for: error)
            if code == .success {
                Console.out(command.fullMessage(for: error))
                exit(0)
            }
            Console.err(command.fullMessage(for: error))
            if error is ValidationError { Console.err(command.helpMessage()) }
            exit(1)   // Kafka's tools exit 1 on any usage error
        }
    }
}
