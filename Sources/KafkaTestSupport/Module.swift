// KafkaTestSupport module
