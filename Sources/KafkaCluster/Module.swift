// KafkaCluster module
