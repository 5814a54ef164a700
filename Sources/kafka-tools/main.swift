print("kafka-tools")
