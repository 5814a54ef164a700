import Foundation
import KafkaServer
import Logging

// kafka-server <server.properties>: runs one broker until SIGTERM/SIGINT.
KafkaLogHandler.bootstrap()
let args = CommandLine.arguments
guard args.count == 2, args[1] != "-h", args[1] != "--help" else {
    FileHandle.standardError.write("USAGE: kafka-server server.properties\n".data(using: .utf8)!)
    exit(1)
}
let config: BrokerConfig
do {
    config = try BrokerConfig.load(path: args[1])
} catch {
    FileHandle.standardError.write("FATAL: \(error)\n".data(using: .utf8)!)
    exit(1)
}
await BrokerMain.run(config)
