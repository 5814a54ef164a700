import Foundation
import KafkaClient
import KafkaCluster
import KafkaLog
import KafkaProtocol
import Logging
import NIOCore
import Synchronization

/// One broker process (Kafka 0.8.2 `KafkaServer`): start-up in Kafka's order, clean shutdown.
public final class KafkaBroker: @unchecked Sendable {
    public let config: BrokerConfig
    let logger: Logger
    private var zk: KafkaZooKeeper!
    private var logManager: LogManager!
    public private(set) var replicaManager: ReplicaManager!
    let metadataCache = MetadataCache()
    private var apis: KafkaApis!
    private var socketServer: SocketServer!
    private var controller: KafkaController!
    private var topicConfigs: TopicConfigManager!
    private var tasks: [Task<Void, Never>] = []
    private let isShutDown = Mutex(false)
    private var isRegistered: Bool { registered.withLock { $0 } }
    private let registered = Mutex(false)
    /// `metrics.port`: the broker's metrics (nil when off) and their HTTP endpoint.
    let metrics: BrokerMetrics?
    private var metricsServer: MetricsHTTPServer?

    public init(config: BrokerConfig, logger: Logger = Logger(label: "kafka.server.KafkaServer")) {
        self.config = config
        self.logger = logger
        self.metrics = config.metricsPort == nil ? nil : BrokerMetrics()
    }

    public var boundPort: Int { socketServer?.localPort ?? -1 }
    /// The port `/metrics` is served on; -1 without `metrics.port`.
    public var metricsPort: Int { metricsServer?.localPort ?? -1 }

    public func startup() async throws {
        logger.info("[Kafka Server \(config.brokerId)], starting")
        for key in config.unknownKeys { logger.warning("Property \(key) is not valid") }
        for key in config.ignoredKeys { logger.warning("Property \(key) is accepted for Kafka 0.8.2 compatibility but has no effect in this broker") }

        if let metrics { LogFlushStats.setObserver { metrics.logFlush.recordNanoseconds($0) } }

        // 1. ZooKeeper (creating the chroot first when the connect string has one).
        logger.info("Connecting to zookeeper on \(config.zookeeperConnect)")
        zk = try await KafkaZooKeeper.connect(config.zookeeperConnect, sessionTimeoutMs: config.zookeeperSessionTimeoutMs,
                                              connectionTimeoutMs: config.zookeeperConnectionTimeoutMs,
                                              createChroot: config.zookeeperConnect.contains("/"),
                                              logger: Logger(label: "org.I0Itec.zkclient.ZkClient"))
        try await zk.ensurePersistentPaths()

        // 2. Logs (recovery happens here), with per-topic overrides from ZooKeeper.
        let topicConfigs = TopicConfigManager(zk: zk, logger: Logger(label: "kafka.server.TopicConfigManager"))
        try await topicConfigs.loadAll()
        self.topicConfigs = topicConfigs
        var settings = LogManagerSettings()
        settings.flushCheckIntervalMs = config.logFlushSchedulerIntervalMs
        settings.recoveryPointCheckpointIntervalMs = config.logFlushOffsetCheckpointIntervalMs
        settings.retentionCheckIntervalMs = config.logRetentionCheckIntervalMs
        settings.cleanerEnabled = config.logCleanerEnable
        settings.cleanerBackoffMs = config.logCleanerBackoffMs
        logManager = try LogManager(logDirs: config.logDirs, defaultConfig: config.log,
                                    topicOverrides: { topicConfigs.overrides(for: $0) },
                                    logger: Logger(label: "kafka.log.LogManager"), settings: settings,
                                    onIOFailure: { [logger] tp, error in
                                        Halt.now("unrecoverable I/O error on the log of \(tp): \(error)", logger: logger)
                                    })
        let lm = logManager!
        topicConfigs.onChange = { lm.refreshConfig(topic: $0) }
        logManager.startBackgroundTasks()

        // 3. Replica manager, request handling, socket server.
        var fetcherSettings = ReplicaFetcher.Settings()
        fetcherSettings.maxBytes = Int32(config.replicaFetchMaxBytes)
        fetcherSettings.maxWaitMs = Int32(config.replicaFetchWaitMaxMs)
        fetcherSettings.minBytes = Int32(config.replicaFetchMinBytes)
        fetcherSettings.socketTimeoutMs = config.replicaSocketTimeoutMs
        replicaManager = ReplicaManager(brokerId: config.brokerId, logManager: logManager, logDirs: config.logDirs,
                                        logger: Logger(label: "kafka.server.ReplicaManager"), fetcherSettings: fetcherSettings)
        let isrZk = zk!
        let isrLogger = Logger(label: "kafka.cluster.Partition")
        let rm = replicaManager!
        let isrMetrics = metrics
        replicaManager.isrWriter = { tp, state, version in
            do {
                let written = try await isrZk.updatePartitionState(tp, state, expectedVersion: version)
                if let isrMetrics, written != nil, let before = rm.partition(tp)?.isr.count {
                    if state.isr.count < before { isrMetrics.isrShrinks.increment() } else if state.isr.count > before { isrMetrics.isrExpands.increment() }
                }
                return written
            } catch {
                isrLogger.warning("Cannot write ISR of \(tp): \(error)")
                return nil
            }
        }
        apis = KafkaApis(config: config, replicaManager: replicaManager, metadataCache: metadataCache, zk: zk,
                         logger: Logger(label: "kafka.server.KafkaApis"), metrics: metrics)
        apis.beforeLeaderAndIsr = { req in
            for t in Set(req.partitionStates.map(\.topic)) { await topicConfigs.ensureLoaded(t) }
        }
        var socketLimits = SocketServerLimits()
        socketLimits.queuedMaxRequests = config.queuedMaxRequests
        socketLimits.maxConnectionsPerIp = config.maxConnectionsPerIp
        socketLimits.maxConnectionsPerIpOverrides = config.maxConnectionsPerIpOverrides
        socketLimits.connectionsMaxIdleMs = config.connectionsMaxIdleMs
        socketServer = try SocketServer(host: config.hostName, port: config.port, maxRequestSize: config.socketRequestMaxBytes,
                                        sendBuffer: config.socketSendBufferBytes, receiveBuffer: config.socketReceiveBufferBytes,
                                        threads: max(1, min(config.numNetworkThreads, System.coreCount)),
                                        processor: metrics.map { InstrumentedRequestProcessor(inner: apis, metrics: $0) } ?? apis,
                                        logger: Logger(label: "kafka.network.SocketServer"), limits: socketLimits)
        logger.info("[Socket Server on Broker \(config.brokerId)], Started on port \(socketServer.localPort)")

        // 4. Controller, fed by ZooKeeper watch events.
        let channels = BrokerChannels(localId: config.brokerId,
                                      controllerDescription: "id_\(config.brokerId)-host_\(config.hostName ?? "null")-port_\(config.port)",
                                      logger: Logger(label: "kafka.controller.ControllerChannelManager")) { [weak self] request in
            switch request {
            case .leaderAndIsr(let r): await self?.applyLeaderAndIsr(r)
            case .updateMetadata(let r): self?.applyUpdateMetadata(r)
            case .stopReplica(let r): _ = self?.replicaManager.stopReplicas(r)
            }
        }
        channels.socketTimeoutMs = config.controllerSocketTimeoutMs
        controller = KafkaController(brokerId: config.brokerId, zk: zk, channel: channels,
                                     uncleanLeaderElection: config.uncleanLeaderElectionEnable,
                                     deleteTopicEnable: config.deleteTopicEnable,
                                     logger: Logger(label: "kafka.controller.KafkaController"))
        let ctl = controller!
        apis.onControlledShutdown = { id in await ctl.controlledShutdown(brokerId: id) }
        if let metrics, let port = config.metricsPort { try await startMetricsServer(metrics, port: port) }
        let events = zk.events()
        tasks.append(Task { [weak self] in
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
        tasks.append(Task { [weak self] in
            let interval = UInt64(self?.config.replicaHighWatermarkCheckpointIntervalMs ?? 5000) * 1_000_000
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: interval)
                if Task.isCancelled { return }   // shutdown writes the final checkpoint itself
                self?.replicaManager.checkpointHighWatermarks()
            }
        })
        tasks.append(Task { [weak self] in
            // ISR shrink check, as 0.8.2 schedules it: every replica.lag.time.max.ms.
            let lag = self?.config.replicaLagTimeMaxMs ?? 10000
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(max(lag / 2, 100)) * 1_000_000)
                if Task.isCancelled { return }
                guard let self else { return }
                await self.replicaManager.shrinkIsrs(lagTimeMs: lag, lagMaxMessages: self.config.replicaLagMaxMessages)
            }
        })
        if config.autoLeaderRebalanceEnable {
            tasks.append(Task { [weak self] in
                // First check after 5 s, then every leader.imbalance.check.interval.seconds.
                var wait: UInt64 = 5_000_000_000
                while !Task.isCancelled {
                    try? await Task.sleep(nanoseconds: wait)
                    if Task.isCancelled { return }
                    guard let self else { return }
                    wait = UInt64(self.config.leaderImbalanceCheckIntervalSeconds) * 1_000_000_000
                    await self.controller.checkLeaderImbalance(percentage: self.config.leaderImbalancePerBrokerPercentage)
                }
            })
        }
        let electTask = Task { await self.controller.elect() }

        // 5. Last: announce this broker.
        // The log dirs are locked by now: a node with this id, host and port is a dead process's.
        try await zk.registerBroker(registration, sessionTimeoutMs: config.zookeeperSessionTimeoutMs, logger: logger,
                                    replaceStaleOwnNode: true)
        registered.withLock { $0 = true }
        await electTask.value
        logger.info("[Kafka Server \(config.brokerId)], started")
    }

    /// `metrics.port`: `/metrics` on the socket server's event loops (README "Metrics").
    private func startMetricsServer(_ metrics: BrokerMetrics, port: Int) async throws {
        let gauges = BrokerStateGauges(metrics: metrics, replicaManager: replicaManager, controller: controller, zk: zk,
                                       logger: Logger(label: "kafka.metrics"))
        let host = config.metricsHost ?? config.hostName ?? "0.0.0.0"
        do {
            metricsServer = try await MetricsHTTPServer.start(group: socketServer.group, host: host, port: port,
                                                              logger: Logger(label: "kafka.metrics")) {
                await gauges.update()
                return metrics.render()
            }
        } catch {
            throw ConfigError("Cannot serve metrics on \(host):\(port) (metrics.port=\(port)\(config.metricsHost == nil ? "" : ", metrics.host=\(host)")): \(error)")
        }
        logger.info("[Kafka Server \(config.brokerId)], metrics at http://\(host):\(metricsServer!.localPort)/metrics")
    }

    var registration: BrokerRegistration {
        BrokerRegistration(id: config.brokerId, host: config.advertisedHost, port: Int32(socketServer.localPort == config.port || config.advertisedPort != nil ? config.advertisedPortValue : socketServer.localPort))
    }

    /// The task that recovers from the last session expiry (a newer expiry replaces it).
    private let sessionRecoveryTask = Mutex<Task<Void, Never>?>(nil)

    private func startSessionRecovery() {
        let stopping = isShutDown.withLock { $0 }
        guard !stopping else { return }
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
        let ctl = controller!
        async let elected: Void = ctl.elect()
        var attempt = 0
        while !Task.isCancelled && !isShutDown.withLock({ $0 }) {
            do {
                try await zk.ensurePersistentPaths()
                try await zk.registerBroker(registration, sessionTimeoutMs: config.zookeeperSessionTimeoutMs, logger: logger)
                try await topicConfigs.rewatch()
                logger.info("Broker \(config.brokerId) is registered again on the new session")
                break
            } catch {
                if error is CancellationError || Task.isCancelled || isShutDown.withLock({ $0 }) { break }
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
        guard let zk else { return }
        for attempt in 1...max(1, config.controlledShutdownMaxRetries) {
            do {
                guard let cid = try await zk.controllerId() else { throw KafkaClientError("no controller") }
                let resp: ControlledShutdownResponse
                if cid == config.brokerId {
                    resp = await controller.controlledShutdown(brokerId: config.brokerId)
                } else {
                    guard let reg = try await zk.broker(cid) else { throw KafkaClientError("controller \(cid) is not registered") }
                    let conn = try await BrokerConnection.connect(host: reg.host, port: Int(reg.port), clientId: "")
                    defer { Task { await conn.close() } }
                    var body = try await conn.send(ControlledShutdownRequest(brokerId: config.brokerId))
                    resp = try ControlledShutdownResponse.decode(from: &body)
                }
                if resp.error == .none && resp.partitionsRemaining.isEmpty {
                    logger.info("Controlled shutdown succeeded")
                    return
                }
                logger.info("Remaining partitions to move: \(resp.partitionsRemaining.map(\.description).joined(separator: ",")) (error \(resp.error))")
            } catch {
                logger.warning("Controlled shutdown attempt \(attempt) failed: \(error)")
            }
            if attempt < config.controlledShutdownMaxRetries {
                try? await Task.sleep(nanoseconds: UInt64(config.controlledShutdownRetryBackoffMs) * 1_000_000)
            }
        }
        logger.warning("Proceeding to do an unclean shutdown as all the controlled shutdown attempts failed")
    }

    // Controller requests addressed to this broker.
    func applyLeaderAndIsr(_ req: LeaderAndIsrRequest) async {
        for t in Set(req.partitionStates.map(\.topic)) { await topicConfigs.ensureLoaded(t) }
        _ = replicaManager.becomeLeaderOrFollower(req)
    }

    func applyUpdateMetadata(_ req: UpdateMetadataRequest) {
        _ = metadataCache.update(req)
    }

    /// Clean shutdown: stop serving, flush and checkpoint logs (marking a clean shutdown),
    /// then close ZooKeeper, which removes this broker's ephemeral node.
    public func shutdown() async {
        let first = isShutDown.withLock { down -> Bool in
            if down { return false }
            down = true
            return true
        }
        guard first else { return }
        logger.info("[Kafka Server \(config.brokerId)], shutting down")
        // Only a broker that registered itself may ask: a broker that failed to start (e.g. a
        // duplicate broker.id) must not move the live broker's leaderships.
        // Replication stops first: once leaderships move away, this broker must not fetch as a
        // follower and re-enter the ISRs it is leaving.
        replicaManager?.shutdown()
        if config.controlledShutdownEnable, isRegistered { await controlledShutdown() }
        // Stop reacting to ZooKeeper and give up the controller role first, so this broker's
        // own deregistration is not taken for a failure (leaders stay as they are, as in 0.8.2).
        for t in tasks { t.cancel() }
        sessionRecoveryTask.withLock { $0 }?.cancel()
        await controller?.shutdown()
        // Deregister so clients stop routing here, but only a node of our own session:
        // a broker that failed to start must never remove the live broker's registration.
        if let zk { _ = try? await zk.deregisterBroker(config.brokerId) }
        await metricsServer?.shutdown()
        if metrics != nil { LogFlushStats.setObserver(nil) }
        socketServer?.shutdown()
        replicaManager?.checkpointHighWatermarks()
        logManager?.shutdown()
        await zk?.close()
        logger.info("[Kafka Server \(config.brokerId)], shut down completed")
    }
}
