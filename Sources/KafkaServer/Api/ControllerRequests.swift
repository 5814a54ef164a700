import KafkaProtocol

/// Carries out the controller's requests to this broker, whether they come over the network
/// (the handlers below) or from the controller in this process (`BrokerChannels`).
struct ControllerRequestApplier: Sendable {
    let replicaManager: ReplicaManager
    let metadataCache: MetadataCache
    let topicConfigs: TopicConfigManager
    let io: LogDirIO

    /// Loads the topics' config overrides (ZooKeeper) so logs are created with them, then applies
    /// the decisions on an I/O pool (log creation and truncation block).
    func leaderAndIsr(_ req: LeaderAndIsrRequest) async -> PartitionErrorsResponse {
        for t in Set(req.partitionStates.map(\.topic)) { await topicConfigs.ensureLoaded(t) }
        let rm = replicaManager
        do { return try await io.runAny { rm.becomeLeaderOrFollower(req) } } catch {
            return PartitionErrorsResponse(error: .unknown, partitions: [])   // pools stopped: shutting down
        }
    }

    /// Stops replicas (and deletes their logs) on an I/O pool.
    func stopReplica(_ req: StopReplicaRequest) async -> PartitionErrorsResponse {
        let rm = replicaManager
        do { return try await io.runAny { rm.stopReplicas(req) } } catch {
            return PartitionErrorsResponse(error: .unknown, partitions: [])
        }
    }

    func updateMetadata(_ req: UpdateMetadataRequest) -> UpdateMetadataResponse {
        UpdateMetadataResponse(error: metadataCache.update(req) ? .none : .staleControllerEpoch)
    }
}
