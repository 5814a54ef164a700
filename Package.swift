// swift-tools-version: 6.0
import PackageDescription

// Module map (one module per concern, Kafka 0.8's own split):
//   C layer      CZooKeeper / CZlib / CSnappy / CLZ4 / CLZ4XXHash / CISAL (system libraries), CZooKeeperShim,
//                CCompression
//   KafkaProtocol  pure wire codecs, message sets, CRC, compression
//   KafkaLog       segments, index, recovery, checkpoints, retention (file I/O only, no NIO)
//   ZooKeeper      async Swift client over the C shim
//   KafkaCluster   ZooKeeper paths + JSON, assignment, controller / partition state machines
//   KafkaServer    NIO network layer, request handling, replica manager, purgatory
//   KafkaClient    producer, simple consumer, ZooKeeper group consumer
//   KafkaTools     kafka-topics, console producer/consumer, perf tools
//   KafkaTestSupport  starts real ZooKeeper servers and brokers for tests
let package = Package(
    name: "swift-kafka-broker",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "kafka-server", targets: ["kafka-server"]),
        .executable(name: "kafka-tools", targets: ["kafka-tools"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // C system libraries
        .systemLibrary(name: "CZooKeeper", path: "Sources/CZooKeeper"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib"),
        .systemLibrary(name: "CSnappy", path: "Sources/CSnappy", pkgConfig: "snappy"),
        .systemLibrary(name: "CLZ4", path: "Sources/CLZ4", pkgConfig: "liblz4"),
        .systemLibrary(name: "CLZ4XXHash", path: "Sources/CLZ4XXHash", pkgConfig: "libxxhash"),
        // Intel ISA-L: the message CRC32 (IEEE, reflected) with carry-less multiplication.
        .systemLibrary(name: "CISAL", path: "Sources/CISAL", pkgConfig: "libisal"),
        .target(name: "CZooKeeperShim", dependencies: ["CZooKeeper"], path: "Sources/CZooKeeperShim",
                linkerSettings: [.linkedLibrary("zookeeper_mt")]),
        .target(name: "CCompression", dependencies: ["CZlib", "CSnappy", "CLZ4", "CLZ4XXHash", "CISAL"], path: "Sources/CCompression",
                linkerSettings: [.linkedLibrary("z"), .linkedLibrary("snappy"), .linkedLibrary("lz4"), .linkedLibrary("xxhash"),
                                 .linkedLibrary("isal")]),

        // Swift modules
        .target(name: "KafkaProtocol", dependencies: [
            "CCompression",
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .target(name: "KafkaLog", dependencies: [
            "KafkaProtocol",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "ZooKeeper", dependencies: [
            "CZooKeeperShim",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "KafkaCluster", dependencies: [
            "ZooKeeper", "KafkaProtocol",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "KafkaServer", dependencies: [
            "KafkaProtocol", "KafkaLog", "ZooKeeper", "KafkaCluster", "KafkaClient",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Atomics", package: "swift-atomics"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        .target(name: "KafkaClient", dependencies: [
            "KafkaProtocol", "ZooKeeper", "KafkaCluster",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "KafkaTools", dependencies: [
            "KafkaClient", "KafkaCluster", "KafkaLog", "KafkaProtocol", "ZooKeeper", "KafkaTestSupport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "KafkaTestSupport", dependencies: [
            "ZooKeeper", "KafkaClient", "KafkaProtocol", .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Thin executables; bin/*.sh call them.
        .executableTarget(name: "kafka-server", dependencies: ["KafkaServer"]),
        .executableTarget(name: "kafka-tools", dependencies: ["KafkaTools"]),
        // libFuzzer target over the request decoders and the message-set validator (bin/fuzz.sh);
        // a plain build is its replay tool.
        .executableTarget(name: "kafka-request-fuzzer", dependencies: [
            "KafkaProtocol", .product(name: "NIOCore", package: "swift-nio"),
        ], path: "Fuzz/RequestFuzzer"),

        // Tests
        .testTarget(name: "KafkaProtocolTests", dependencies: ["KafkaProtocol", "CLZ4"]),
        .testTarget(name: "KafkaLogTests", dependencies: ["KafkaLog", "KafkaProtocol"]),
        .testTarget(name: "ZooKeeperTests", dependencies: ["ZooKeeper", "KafkaTestSupport"]),
        .testTarget(name: "KafkaClusterTests", dependencies: ["KafkaCluster", "KafkaServer", "KafkaTestSupport"]),
        .testTarget(name: "KafkaServerTests", dependencies: [
            "KafkaServer", "KafkaProtocol", "KafkaLog", "KafkaClient",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Pure tests of the client: the group consumer's state machine and assignors, its config.
        .testTarget(name: "KafkaClientTests", dependencies: ["KafkaClient", "KafkaProtocol"]),
        .testTarget(name: "KafkaToolsTests", dependencies: ["KafkaTools", "KafkaClient", "KafkaProtocol"]),
        .testTarget(name: "IntegrationTests", dependencies: [
            "KafkaTestSupport", "ZooKeeper", "KafkaClient", "KafkaProtocol",
        ]),
    ]
)
