import Foundation
import KafkaClient
import KafkaCluster
import KafkaLog
import KafkaProtocol
import Logging
import NIOCore
import Synchronization

/// One broker process (Kafka 0.8.2 `KafkaServer`): start-up in Kafka's order, clean shutdown.
public final class KafkaBroker: Sendable {
    public let config: BrokerConfig
    let logger: Logger
    /// `metrics.port`: the broker's metrics (nil when off).
    let metrics: BrokerMetrics?

    private struct State {
        /// Set once start-up has built every part; nil before and after a failed start-up.
        var running: RunningBroker?
        var isShutDown = false
        var isRegistered = false
    }
    private let state = Mutex(State())

    public init(config: BrokerConfig, logger: Logger = Logger(label: "kafka.server.KafkaServer")) {
        self.config = config
        self.logger = logger
        self.metrics = config.metricsPort == nil ? nil : BrokerMetrics()
    }

    private var running: RunningBroker? { state.withLock { $0.running } }

    public var boundPort: Int { running?.socketServer.localPort ?? -1 }
    /// The port `/metrics` is served on; -1 without `metrics.port`.
    public var metricsPort: Int { running?.metricsServer?.localPort ?? -1 }
    public var replicaManager: ReplicaManager? { running?.replicaManager }

    public func startup() async throws {
        logger.info("[Kafka Server \(config.brokerId)], starting")
        for key in config.unknownKeys { logger.warning("Property \(key) is not valid") }
        for key in config.ignoredKeys { logger.warning("Property \(key) is accepted for Kafka 0.8.2 compatibility but has no effect in this broker") }
        if let metrics { LogFlushStats.setObserver { metrics.logFlush.recordNanoseconds($0) } }

        let parts = try await RunningBroker.start(config: config, metrics: metrics, logger: logger)
        let stopping = state.withLock { st -> Bool in
            if st.isShutDown { return true }
            st.running = parts
            return false
        }
        if stopping {
            // Shut down while starting: undo what start-up built.
            await parts.stop()
            throw CancellationError()
        }
        parts.startBackgroundTasks(broker: self)
        let electTask = Task { await parts.controller.elect() }

        // Last: announce this broker.
        // The log dirs are locked by now: a node with this id, host and port is a dead process's.
        try await parts.zk.registerBroker(parts.registration, sessionTimeoutMs: config.zookeeperSessionTimeoutMs, logger: logger,
                                          replaceStaleOwnNode: true)
        state.withLock { $0.isRegistered = true }
        await electTask.value
        logger.info("[Kafka Server \(config.brokerId)], started")
    }

    var isShuttingDown: Bool { state.withLock { $0.isShutDown } }

    /// Clean shutdown: stop serving, flush and checkpoint logs (marking a clean shutdown),
    /// then close ZooKeeper, which removes this broker's ephemeral node.
    public func shutdown() async {
        let (first, parts, registered) = state.withLock { st -> (Bool, RunningBroker?, Bool) in
            if st.isShutDown { return (false, nil, false) }
            st.isShutDown = true
            return (true, st.running, st.isRegistered)
        }
        guard first else { return }
        logger.info("[Kafka Server \(config.brokerId)], shutting down")
        if let parts {
            // Only a broker that registered itself may ask for a controlled shutdown: a broker
            // that failed to start (e.g. a duplicate broker.id) must not move the live broker's
            // leaderships.
            await parts.stop(controlledShutdown: config.controlledShutdownEnable && registered)
        }
        if metrics != nil { LogFlushStats.setObserver(nil) }
        logger.info("[Kafka Server \(config.brokerId)], shut down completed")
    }
}

/// Everything a started broker runs, built by `start` in Kafka 0.8.2's order; a failed start-up
/// undoes its own steps.
final class RunningBroker: Sendable {
    let config: BrokerConfig
    let logger: Logger
    let zk: KafkaZooKeeper
    let topicConfigs: TopicConfigManager
    let logManager: LogManager
    let io: LogDirIO
    let replicaManager: ReplicaManager
    let metadataCache: MetadataCache
    let controller: KafkaController
    let socketServer: SocketServer
    let metricsServer: MetricsHTTPServer?
    private let tasks = Mutex<[Task<Void, Never>]>([])
    /// The task that recovers from the last session expiry (a newer expiry replaces it).
    private let sessionRecoveryTask = Mutex<Task<Void, Never>?>(nil)
    private let stopping = Mutex(false)

    private init(config: BrokerConfig, logger: Logger, zk: KafkaZooKeeper, topicConfigs: TopicConfigManager, logManager: LogManager,
                 io: LogDirIO, replicaManager: ReplicaManager, metadataCache: MetadataCache, controller: KafkaController,
                 socketServer: SocketServer, metricsServer: MetricsHTTPServer?) {
        self.config = config
        self.logger = logger
        self.zk = zk
        self.topicConfigs = topicConfigs
        self.logManager = logManager
        self.io = io
        self.replicaManager = replicaManager
        self.metadataCache = metadataCache
        self.controller = controller
        self.socketServer = socketServer
        self.metricsServer = metricsServer
    }

    static func start(config: BrokerConfig, metrics: BrokerMetrics?, logger: Logger) async throws -> RunningBroker {
        // Steps taken so far, undone in reverse when a later one fails.
        var undo: [@Sendable () async -> Void] = []
        do {
            // 1. ZooKeeper (creating the chroot first when the connect string has one).
            logger.info("Connecting to zookeeper on \(config.zookeeperConnect)")
            let zk = try await KafkaZooKeeper.connect(config.zookeeperConnect, sessionTimeoutMs: config.zookeeperSessionTimeoutMs,
                                                      connectionTimeoutMs: config.zookeeperConnectionTimeoutMs,
                                                      createChroot: config.zookeeperConnect.contains("/"),
                                                      logger: Logger(label: "org.I0Itec.zkclient.ZkClient"))
            undo.append { await zk.close() }
            try await zk.ensurePersistentPaths()

            // 2. Logs (recovery happens here), with per-topic overrides from ZooKeeper.
            let topicConfigs = TopicConfigManager(zk: zk, logger: Logger(label: "kafka.server.TopicConfigManager"))
            try await topicConfigs.loadAll()
            var settings = LogManagerSettings()
            settings.flushCheckIntervalMs = config.logFlushSchedulerIntervalMs
            settings.recoveryPointCheckpointIntervalMs = config.logFlushOffsetCheckpointIntervalMs
            settings.retentionCheckIntervalMs = config.logRetentionCheckIntervalMs
            settings.cleanerEnabled = config.logCleanerEnable
            settings.cleanerBackoffMs = config.logCleanerBackoffMs
            // The I/O pools first: recovery and the log manager's background work run on them.
            let io = LogDirIO(logDirs: config.logDirs, threadsPerDir: config.numIoThreads)
            undo.append { await io.shutdown() }
            let logManager = try await LogManager.open(logDirs: config.logDirs, defaultConfig: config.log,
                                                       topicOverrides: { topicConfigs.overrides(for: $0) },
                                                       logger: Logger(label: "kafka.log.LogManager"), settings: settings,
                                                       onIOFailure: { tp, error in
                                                           Halt.now("unrecoverable I/O error on the log of \(tp): \(error)", logger: logger)
                                                       },
                                                       executor: io)
            undo.append { logManager.shutdown() }
            topicConfigs.onChange = { logManager.refreshConfig(topic: $0) }
            logManager.startBackgroundTasks()

            // 3. Replica manager, controller, request handling, socket server.
            var fetcherSettings = ReplicaFetcher.Settings()
            fetcherSettings.maxBytes = Int32(config.replicaFetchMaxBytes)
            fetcherSettings.maxWaitMs = Int32(config.replicaFetchWaitMaxMs)
            fetcherSettings.minBytes = Int32(config.replicaFetchMinBytes)
            fetcherSettings.socketTimeoutMs = config.replicaSocketTimeoutMs
            let isrLogger = Logger(label: "kafka.cluster.Partition")
            let isrWriter: ReplicaManager.IsrWriter = { tp, state, version, before in
                do {
                    let written = try await zk.updatePartitionState(tp, state, expectedVersion: version)
                    if let metrics, written != nil {
                        if state.isr.count < before { metrics.isrShrinks.increment() } else if state.isr.count > before { metrics.isrExpands.increment() }
                    }
                    return written
                } catch {
                    isrLogger.warning("Cannot write ISR of \(tp): \(error)")
                    return nil
                }
            }
            let replicaManager = ReplicaManager(brokerId: config.brokerId, logManager: logManager, logDirs: config.logDirs,
                                                logger: Logger(label: "kafka.server.ReplicaManager"),
                                                fetcherSettings: fetcherSettings, isrWriter: isrWriter, blocking: io)
            undo.append { replicaManager.shutdown() }
            let metadataCache = MetadataCache()
            let applier = ControllerRequestApplier(replicaManager: replicaManager, metadataCache: metadataCache,
                                                   topicConfigs: topicConfigs, io: io)
            let channels = BrokerChannels(localId: config.brokerId,
                                          controllerDescription: "id_\(config.brokerId)-host_\(config.hostName ?? "null")-port_\(config.port)",
                                          logger: Logger(label: "kafka.controller.ControllerChannelManager")) { request in
                switch request {
                case .leaderAndIsr(let r): _ = await applier.leaderAndIsr(r)
                case .updateMetadata(let r): _ = applier.updateMetadata(r)
                case .stopReplica(let r): _ = await applier.stopReplica(r)
                }
            }
            channels.socketTimeoutMs = config.controllerSocketTimeoutMs
            let controller = KafkaController(brokerId: config.brokerId, zk: zk, channel: channels,
                                             uncleanLeaderElection: config.uncleanLeaderElectionEnable,
                                             deleteTopicEnable: config.deleteTopicEnable,
                                             replaceStaleOwnNode: true,   // the log dirs are locked by now
                                             logger: Logger(label: "kafka.controller.KafkaController"))
            undo.append { await controller.shutdown() }

            let autoCreator = TopicAutoCreator(config: config, metadataCache: metadataCache, zk: zk,
                                               logger: Logger(label: "kafka.server.KafkaApis"))
            let reader = FetchReader(replicaManager: replicaManager, metrics: metrics)
            let groups = GroupCoordinator(brokerId: config.brokerId, metadataCache: metadataCache)
            let apis = KafkaApis([
                ProduceHandler(replicaManager: replicaManager, metadataCache: metadataCache, autoCreator: autoCreator, io: io, metrics: metrics),
                FetchHandler(reader: reader, io: io),
                OffsetsHandler(replicaManager: replicaManager),
                MetadataHandler(metadataCache: metadataCache, autoCreator: autoCreator),
                LeaderAndIsrHandler(applier: applier),
                StopReplicaHandler(applier: applier),
                UpdateMetadataHandler(applier: applier),
                ControlledShutdownHandler(controller: controller),
                OffsetCommitHandler(metadataCache: metadataCache, zk: zk, groups: groups),
                OffsetFetchHandler(zk: zk),
                ConsumerMetadataHandler(coordinator: BrokerEndpoint(id: config.brokerId, host: config.advertisedHost,
                                                                    port: Int32(config.advertisedPortValue)), groups: groups),
                JoinGroupHandler(groups: groups),
                HeartbeatHandler(groups: groups),
                LeaveGroupHandler(groups: groups),
                SyncGroupHandler(groups: groups),
            ])
            var socketLimits = SocketServerLimits()
            socketLimits.queuedMaxRequests = config.queuedMaxRequests
            socketLimits.maxConnectionsPerIp = config.maxConnectionsPerIp
            socketLimits.maxConnectionsPerIpOverrides = config.maxConnectionsPerIpOverrides
            socketLimits.connectionsMaxIdleMs = config.connectionsMaxIdleMs
            let socketServer = try await SocketServer.start(
                host: config.hostName, port: config.port, maxRequestSize: config.socketRequestMaxBytes,
                sendBuffer: config.socketSendBufferBytes, receiveBuffer: config.socketReceiveBufferBytes,
                threads: max(1, min(config.numNetworkThreads, System.coreCount)),
                processor: metrics.map { InstrumentedRequestProcessor(inner: apis, metrics: $0) } ?? apis,
                logger: Logger(label: "kafka.network.SocketServer"), limits: socketLimits)
            undo.append { await socketServer.shutdown() }
            logger.info("[Socket Server on Broker \(config.brokerId)], Started on port \(socketServer.localPort)")

            var metricsServer: MetricsHTTPServer?
            if let metrics, let port = config.metricsPort {
                metricsServer = try await startMetricsServer(metrics, port: port, config: config, socketServer: socketServer,
                                                             replicaManager: replicaManager, controller: controller, zk: zk, logger: logger)
            }
            return RunningBroker(config: config, logger: logger, zk: zk, topicConfigs: topicConfigs, logManager: logManager, io: io,
                                 replicaManager: replicaManager, metadataCache: metadataCache, controller: controller,
                                 socketServer: socketServer, metricsServer: metricsServer)
        } catch {
            for step in undo.reversed() { await step() }
            throw error
        }
    }

    /// `metrics.port`: `/metrics` on the socket server's event loops (README "Metrics").
    private static func startMetricsServer(_ metrics: BrokerMetrics, port: Int, config: BrokerConfig, socketServer: SocketServer,
                                           replicaManager: ReplicaManager, controller: KafkaController, zk: KafkaZooKeeper,
                                           logger: Logger) async throws -> MetricsHTTPServer {
        let gauges = BrokerStateGauges(metrics: metrics, replicaManager: replicaManager, controller: controller, zk: zk,
                                       logger: Logger(label: "kafka.metrics"))
        let host = config.metricsHost ?? config.hostName ?? "0.0.0.0"
        let server: MetricsHTTPServer
        do {
            server = try await MetricsHTTPServer.start(group: socketServer.group, host: host, port: port,
                                                       logger: Logger(label: "kafka.metrics")) {
                await gauges.update()
                return metrics.render()
            }
        } catch {
            throw ConfigError("Cannot serve metrics on \(host):\(port) (metrics.port=\(port)\(config.metricsHost == nil ? "" : ", metrics.host=\(host)")): \(error)")
        }
        logger.info("[Kafka Server \(config.brokerId)], metrics at http://\(host):\(server.localPort)/metrics")
        return server
    }

    var registration: BrokerRegistration {
        BrokerRegistration(id: config.brokerId, host: config.advertisedHost, port: Int32(socketServer.localPort == config.port || config.advertisedPort != nil ? config.advertisedPortValue : socketServer.localPort))
    }

    private var isStopping: Bool { stopping.withLock { $0 } }

    /// ZooKeeper events, high-watermark checkpoints, ISR shrink checks, leader rebalance.
    func startBackgroundTasks(broker: KafkaBroker) {
        let events = zk.events()
        var started: [Task<Void, Never>] = []
        started.append(Task { [weak self] in
            var expired = false
            for await event in events {
                guard let self else { return }
                switch event {
                case .session(.expired):
                    expired = true
                    self.logger.warning("ZooKeeper session expired; will re-register when a new session is up")
                    await self.controller.resign()
                case .session(.connected):
                    if expired {
                        expired = false
                        // In its own task, so that watch events keep flowing while it retries.
                        self.startSessionRecovery()
                    }
                case .nodeChildrenChanged(ZkPaths.configChanges):
                    await self.topicConfigs.handleChanges()
                default:
                    await self.controller.handle(event)
                }
            }
        })
        let checkpointInterval = UInt64(config.replicaHighWatermarkCheckpointIntervalMs) * 1_000_000
        started.append(Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: checkpointInterval)
                if Task.isCancelled { return }   // shutdown writes the final checkpoint itself
                guard let self else { return }
                // Writes and fsyncs files: on an I/O pool.
                let rm = self.replicaManager
                _ = try? await self.io.runAny { rm.checkpointHighWatermarks() }
            }
        })
        // ISR shrink check, as 0.8.2 schedules it: every replica.lag.time.max.ms / 2.
        let lag = config.replicaLagTimeMaxMs
        let lagMessages = config.replicaLagMaxMessages
        started.append(Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(max(lag / 2, 100)) * 1_000_000)
                if Task.isCancelled { return }
                guard let self else { return }
                await self.replicaManager.shrinkIsrs(lagTimeMs: lag, lagMaxMessages: lagMessages)
            }
        })
        if config.autoLeaderRebalanceEnable {
            let interval = UInt64(config.leaderImbalanceCheckIntervalSeconds) * 1_000_000_000
            let percentage = config.leaderImbalancePerBrokerPercentage
            started.append(Task { [weak self] in
                // First check after 5 s, then every leader.imbalance.check.interval.seconds.
                var wait: UInt64 = 5_000_000_000
                while !Task.isCancelled {
                    try? await Task.sleep(nanoseconds: wait)
                    if Task.isCancelled { return }
                    guard let self else { return }
                    wait = interval
                    await self.controller.checkLeaderImbalance(percentage: percentage)
                }
            })
        }
        tasks.withLock { $0 += started }
    }

    private func startSessionRecovery() {
        guard !isStopping else { return }
        let task = Task { [weak self] () -> Void in await self?.onNewSession() }
        let previous = sessionRecoveryTask.withLock { current -> Task<Void, Never>? in
            defer { current = task }
            return current
        }
        previous?.cancel()
    }

    /// A new ZooKeeper session (the old one expired, and with it this broker's ephemeral node
    /// and every watch): register `/brokers/ids/<id>` again, set the `/config/changes` watch
    /// again, and enter the controller election again (it sets the controller's watches).
    /// Registration is retried with backoff until it succeeds or the broker shuts down.
    private func onNewSession() async {
        logger.info("New ZooKeeper session established; re-registering broker \(config.brokerId)")
        await controller.resign()
        let ctl = controller
        async let elected: Void = ctl.elect()
        var attempt = 0
        while !Task.isCancelled && !isStopping {
            do {
                try await zk.ensurePersistentPaths()
                try await zk.registerBroker(registration, sessionTimeoutMs: config.zookeeperSessionTimeoutMs, logger: logger)
                try await topicConfigs.rewatch()
                logger.info("Broker \(config.brokerId) is registered again on the new session")
                break
            } catch {
                if error is CancellationError || Task.isCancelled || isStopping { break }
                let backoff = 2 * ZkRetryPolicy.backoffMs(attempt: attempt)
                attempt += 1
                logger.error("Re-registration on the new session failed (attempt \(attempt)): \(error); retrying in \(backoff) ms")
                try? await Task.sleep(nanoseconds: UInt64(backoff) * 1_000_000)
            }
        }
        await elected
    }

    /// Asks the controller to move this broker's leaderships away before it stops
    /// (`controlled.shutdown.*`); after the retries it shuts down uncleanly, as 0.8.2 does.
    private func controlledShutdown() async {
        let attempts = max(1, config.controlledShutdownMaxRetries)
        logger.info("Controlled shutdown: asking the controller to move this broker's partition leaderships (up to \(attempts) attempts, \(config.controlledShutdownRetryBackoffMs) ms apart)")
        for attempt in 1...attempts {
            do {
                // Bounded by controller.socket.timeout.ms, as 0.8.2's request to the controller is:
                // when ZooKeeper goes away during the attempt, the controller's ZooKeeper retries
                // would otherwise never end, nor would the stop.
                let (zk, controller, brokerId) = (zk, controller, config.brokerId)
                let resp = try await withTimeout(ms: config.controllerSocketTimeoutMs) { () async throws -> ControlledShutdownResponse in
                    guard let cid = try await zk.controllerId() else { throw KafkaClientError("no controller") }
                    if cid == brokerId { return await controller.controlledShutdown(brokerId: brokerId) }
                    guard let reg = try await zk.broker(cid) else { throw KafkaClientError("controller \(cid) is not registered") }
                    let conn = try await BrokerConnection.connect(host: reg.host, port: Int(reg.port), clientId: "")
                    defer { Task { await conn.close() } }
                    var body = try await conn.send(ControlledShutdownRequest(brokerId: brokerId))
                    return try ControlledShutdownResponse.decode(from: &body)
                }
                if resp.error == .none && resp.partitionsRemaining.isEmpty {
                    logger.info("Controlled shutdown succeeded")
                    return
                }
                logger.info("Remaining partitions to move: \(resp.partitionsRemaining.map(\.description).joined(separator: ",")) (error \(resp.error))")
            } catch {
                let zkDown = !zk.isConnected
                logger.warning("Controlled shutdown attempt \(attempt) of \(attempts) failed: \(error)\(zkDown ? " (ZooKeeper is not connected: the controller cannot be found)" : "")\(attempt < attempts ? "; retrying in \(config.controlledShutdownRetryBackoffMs) ms" : "")")
            }
            if attempt < config.controlledShutdownMaxRetries {
                try? await Task.sleep(nanoseconds: UInt64(config.controlledShutdownRetryBackoffMs) * 1_000_000)
            }
        }
        logger.warning("Proceeding to do an unclean shutdown as all the controlled shutdown attempts failed")
    }

    /// Stops everything in Kafka's order.
    func stop(controlledShutdown askController: Bool = false) async {
        stopping.withLock { $0 = true }
        // Replication stops first: once leaderships move away, this broker must not fetch as a
        // follower and re-enter the ISRs it is leaving.
        replicaManager.shutdown()
        if askController { await controlledShutdown() }
        // Stop reacting to ZooKeeper and give up the controller role first, so this broker's
        // own deregistration is not taken for a failure (leaders stay as they are, as in 0.8.2).
        for t in tasks.withLock({ $0 }) { t.cancel() }
        sessionRecoveryTask.withLock { $0 }?.cancel()
        await controller.shutdown()
        // Deregister so clients stop routing here, but only a node of our own session:
        // a broker that failed to start must never remove the live broker's registration.
        _ = try? await zk.deregisterBroker(config.brokerId)
        await metricsServer?.shutdown()
        await socketServer.shutdown()
        await io.shutdown()
        replicaManager.checkpointHighWatermarks()
        logManager.shutdown()
        await zk.close()
    }
}
