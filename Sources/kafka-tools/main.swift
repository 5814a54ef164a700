import KafkaTools
await KafkaToolsMain.main()
