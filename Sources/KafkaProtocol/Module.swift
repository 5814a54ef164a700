// KafkaProtocol module
