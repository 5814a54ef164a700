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
            Console.err(ToolHelp.render(command))
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
                // --help / -h
                let full = command.fullMessage(for: error)
                Console.out(full == command.helpMessage() ? ToolHelp.render(command) : full)
                exit(0)
            }
            if code == .validationFailure {
                // A usage error (a bad or missing argument): the error (every missing argument at
                // once) and a one-line usage, not the whole help.
                Console.err(command.message(for: error))
                Console.err(usageLine(name, command))
            } else {
                Console.err(command.fullMessage(for: error))
            }
            exit(1)   // Kafka's tools exit 1 on any usage error
        }
    }

    /// The one-line usage printed after a usage error.
    static func usageLine(_ name: String, _ command: any ParsableCommand.Type) -> String {
        let script = command.configuration.commandName.map { $0.hasSuffix(".sh") ? "bin/\($0)" : "kafka-tools \(name)" } ?? "kafka-tools \(name)"
        let line = (command as? any ToolUsage.Type)?.usageLine ?? "\(script) [options]"
        return "USAGE: \(line)  (see --help)"
    }

    /// Every command's help text as `--help` prints it (for tests).
    public static func helpText(_ name: String, columns: Int) -> String? {
        commands[name].map { ToolHelp.render($0, columns: columns) }
    }

    /// The commands' names and their configured discussions (for tests).
    public static var commandDiscussions: [String: String] {
        commands.mapValues { $0.configuration.discussion }
    }
}
