print("kafka-server")
