// KafkaClient module
