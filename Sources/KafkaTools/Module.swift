// KafkaTools module
