import Foundation
import Logging

/// Process entry: start the broker, wait for SIGTERM/SIGINT, shut down cleanly.
public enum BrokerMain {
    public static func run(_ config: BrokerConfig) async -> Never {
        AllocatorTuning.apply()
        let logger = Logger(label: "kafka.Kafka")
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        signal(SIGPIPE, SIG_IGN)
        let broker = KafkaBroker(config: config)
        let stop = AsyncStream<Int32> { cont in
            for sig in [SIGTERM, SIGINT] {
                let src = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                src.setEventHandler { cont.yield(sig) }
                src.resume()
                SignalSources.keep(src)
            }
        }
        let starter = Task {
            do {
                try await broker.startup()
            } catch {
                logger.critical("Fatal error during KafkaServer startup. Prepare to shutdown: \(error)")
                await broker.shutdown()
                exit(1)
            }
        }
        for await sig in stop {
            logger.info("Received signal \(sig), shutting down")
            starter.cancel()
            await broker.shutdown()
            exit(0)
        }
        exit(0)
    }
}

enum SignalSources {
    nonisolated(unsafe) static var sources: [DispatchSourceSignal] = []
    static func keep(_ s: DispatchSourceSignal) { sources.append(s) }
}
