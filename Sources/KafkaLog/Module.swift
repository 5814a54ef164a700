// KafkaLog module
