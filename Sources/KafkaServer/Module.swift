// KafkaServer module
