import Foundation
import XCTest

/// kafka-reassign-partitions.sh against 3 real brokers: the controller moves replicas while
/// acks=-1 producers keep writing; nothing acknowledged is lost (issue 10 item 4).
final class ReassignPartitionsTests: IntegrationTestCase {
    func write(_ text: String, _ name: String, in c: TestCluster) throws -> String {
        let path = "\(c.directory)/\(name)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Issue 10's acceptance case: an RF 2 topic's 6 partitions on brokers {1,2} move to {2,3}
    /// while one acks=-1 producer per partition keeps writing. --verify reports every partition
    /// completed, --describe shows the new replicas, and consuming the topic from the beginning
    /// finds every acknowledged message (each also on both new replicas at its acknowledged offset).
    func testReassignSixPartitionsFromBrokers12To23UnderAcksAllLoad() async throws {
        let c = try await startCluster(brokerIds: [1, 2, 3])
        let topic = "moving"
        let partitions = 0..<6
        // Leaders alternate between 1 and 2: 1:2,2:1,1:2,...
        let created = try Project.run("kafka-topics.sh", ["--zookeeper", c.zkConnect, "--create", "--topic", topic, "--replica-assignment",
                                                          partitions.map { $0 % 2 == 0 ? "1:2" : "2:1" }.joined(separator: ",")])
        XCTAssertEqual(created.exitCode, 0, created.summary)
        try c.waitForLeaders(topic: topic, partitions: partitions.count)
        let zk = try await ZkInspector.connect(c.zkConnect)
        defer { Task { await zk.close() } }
        for p in partitions { try await zk.waitForState(topic, p, timeout: 30, "ISR 1,2") { Set($0.isr) == [1, 2] } }
        let currentJSON = "{\"version\":1,\"partitions\":[" + partitions.map {
            "{\"topic\":\"\(topic)\",\"partition\":\($0),\"replicas\":\($0 % 2 == 0 ? "[1,2]" : "[2,1]")}"
        }.joined(separator: ",") + "]}"

        // --generate proposes a placement on {2,3} and changes nothing.
        let topicsFile = try write("{\"topics\":\n\t[{\"topic\": \"\(topic)\"}],\n\"version\":1\n}", "topics.json", in: c)
        let gen = try Project.run("kafka-reassign-partitions.sh", ["--zookeeper", c.zkConnect, "--generate", "--topics-to-move-json-file", topicsFile, "--broker-list", "2,3"])
        XCTAssertEqual(gen.exitCode, 0, gen.summary)
        XCTAssertTrue(gen.stdout.hasPrefix("Current partition replica assignment\n\n\(currentJSON)\nProposed partition reassignment configuration\n\n{\"version\":1,\"partitions\":["), gen.summary)
        let proposedLine = gen.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let proposed = try JSONSerialization.jsonObject(with: Data(proposedLine.utf8)) as? [String: Any]
        let proposedReplicas = (proposed?["partitions"] as? [[String: Any]])?.map { ($0["replicas"] as? [Int]).map(Set.init) }
        XCTAssertEqual(proposedReplicas, Array(repeating: [2, 3], count: partitions.count), gen.summary)
        let unchanged = try Project.run("kafka-topics.sh", ["--zookeeper", c.zkConnect, "--describe", "--topic", topic])
        XCTAssertEqual(DescribedPartition.parse(unchanged.stdout, topic: topic).map(\.replicas), partitions.map { $0 % 2 == 0 ? [1, 2] : [2, 1] }, unchanged.summary)

        // One acks=-1 producer per partition, writing until told to stop.
        let ports = c.brokers.map(\.port)
        let producers = partitions.map { p in FailoverProducer(topic: topic, partition: Int32(p), acks: -1, candidatePorts: { ports }) }
        let work = producers.enumerated().map { (p, producer) in
            BackgroundWork { w in
                var i = 0
                while !w.shouldStop {
                    producer.send("p\(p)-m\(i)", timeout: 30)
                    i += 1
                }
            }
        }
        defer { for w in work { w.stopAndWait(timeout: 60) } }
        try await pollAsync(timeout: 30, "messages acknowledged before the move") { producers.allSatisfy { $0.acked.count >= 50 } ? true : nil }

        // All six to {2,3}: even partitions [2,3] (their leader 1 leaves), odd ones [3,2] (leader 2 stays).
        let newReplicas: [[Int32]] = partitions.map { $0 % 2 == 0 ? [2, 3] : [3, 2] }
        let plan = "{\"version\":1,\"partitions\":[" + partitions.map {
            "{\"topic\":\"\(topic)\",\"partition\":\($0),\"replicas\":[\(newReplicas[$0].map(String.init).joined(separator: ","))]}"
        }.joined(separator: ",") + "]}"
        let planFile = try write(plan, "plan.json", in: c)
        let exec = try Project.run("kafka-reassign-partitions.sh", ["--zookeeper", c.zkConnect, "--execute", "--reassignment-json-file", planFile])
        XCTAssertEqual(exec.exitCode, 0, exec.summary)
        XCTAssertEqual(exec.stdout, """
            Current partition replica assignment

            \(currentJSON)

            Save this to use as the --reassignment-json-file option during rollback
            Successfully started reassignment of partitions \(plan)

            """, exec.summary)

        // --verify until every partition is done.
        let verified = try await pollAsync(timeout: 120, "--verify to report all 6 partitions completed") { () -> String? in
            let v = try Project.run("kafka-reassign-partitions.sh", ["--zookeeper", c.zkConnect, "--verify", "--reassignment-json-file", planFile])
            XCTAssertEqual(v.exitCode, 0, v.summary)
            return v.stdout.components(separatedBy: "completed successfully").count == partitions.count + 1 ? v.stdout : nil
        }
        XCTAssertEqual(verified, "Status of partition reassignment:\n" + partitions.map { "Reassignment of partition [\(topic),\($0)] completed successfully\n" }.joined())
        let adminNode = try await zk.zk.exists("/admin/reassign_partitions")
        XCTAssertNil(adminNode, "the controller deletes the admin node once every partition is done")

        // Keep writing a little on the new replicas, then stop.
        let before = producers.map { $0.acked.count }
        try await pollAsync(timeout: 30, "messages acknowledged after the move") {
            zip(producers, before).allSatisfy { $0.acked.count >= $1 + 20 } ? true : nil
        }
        for w in work { XCTAssertTrue(w.stopAndWait(timeout: 60)) }

        // --describe: Replicas 2,3 / 3,2 and both in the ISR.
        let described = try await pollAsync(timeout: 30, "--describe to show the new replicas, both in the ISR") { () -> [DescribedPartition]? in
            let d = try Project.run("kafka-topics.sh", ["--zookeeper", c.zkConnect, "--describe", "--topic", topic])
            let parts = DescribedPartition.parse(d.stdout, topic: topic)
            return parts.map(\.replicas) == newReplicas && parts.allSatisfy({ Set($0.isr) == [2, 3] }) ? parts : nil
        }
        XCTAssertTrue(described.allSatisfy { [2, 3].contains($0.leader) }, "\(described)")
        let describe = try Project.run("kafka-topics.sh", ["--zookeeper", c.zkConnect, "--describe", "--topic", topic])
        for p in partitions {
            XCTAssertTrue(describe.stdout.contains("\tTopic: \(topic)\tPartition: \(p)\tLeader: \(described[p].leader ?? -1)\tReplicas: \(p % 2 == 0 ? "2,3" : "3,2")\tIsr: "), describe.summary)
        }

        // Consume everything from the beginning: every acknowledged message is there.
        var total: Int64 = 0
        for p in partitions {
            let conn = try c.brokers.first { $0.id == Int(described[p].leader ?? -1) }!.connect()
            let latest = try conn.offsets(topic: topic, partition: Int32(p), time: -1)
            XCTAssertEqual(latest.error, 0)
            total += latest.offsets.first ?? 0
        }
        let acked = producers.map(\.acked)
        let ackedCount = acked.map(\.count).reduce(0, +)
        XCTAssertGreaterThanOrEqual(total, Int64(ackedCount))
        let consumed = try Project.run("kafka-console-consumer.sh", ["--zookeeper", c.zkConnect, "--topic", topic, "--from-beginning",
                                                                     "--max-messages", "\(total)", "--consumer-timeout-ms", "15000"], timeout: 90)
        XCTAssertEqual(consumed.exitCode, 0, consumed.summary)
        let lines = consumed.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, Int(total), "the console consumer reads every message up to the log end")
        let seen = Set(lines)
        let missing = acked.joined().filter { !seen.contains($0.value) }
        XCTAssertEqual(missing.map(\.value), [], "acknowledged messages missing from the consumed topic")
        print("reassignment under load: \(ackedCount) messages acknowledged over 6 partitions, \(total) in the log, \(producers.map(\.failures.count).reduce(0, +)) failed attempts retried")

        // Each new replica holds every acknowledged message at its acknowledged offset.
        for p in partitions {
            XCTAssertGreaterThan(acked[p].count, 70)
            for b in newReplicas[p] {
                let broker = c.brokers.first { $0.id == Int(b) }!
                try await pollAsync(timeout: 30, "broker \(b) to hold every acknowledged message of partition \(p)") { () -> Bool? in
                    let all = try broker.connect().debugFetchAll(topic: topic, partition: Int32(p))
                    let byOffset = Dictionary(all.messages.map { ($0.offset, $0.value ?? "") }, uniquingKeysWith: { a, _ in a })
                    return acked[p].allSatisfy { byOffset[$0.offset] == $0.value } ? true : nil
                }
            }
        }

        // Broker 1 no longer holds any replica: its partition directories are deleted.
        let b1 = c.brokers.first { $0.id == 1 }!
        try await pollAsync(timeout: 30, "broker 1's old replica directories deleted") { () -> Bool? in
            let on1 = (try? FileManager.default.contentsOfDirectory(atPath: b1.logDir)) ?? []
            return on1.contains(where: { $0.hasPrefix("\(topic)-") }) ? nil : true
        }
    }

    /// A full move under load: a partition's only replica (its leader) on broker 0 moves to
    /// broker 1, which held nothing, while an acks=-1 producer writes; the new leader holds every
    /// acknowledged message and broker 0's copy is deleted.
    func testFullMoveToANewBrokerUnderLoad() async throws {
        let c = try await startCluster(brokerIds: [0, 1])
        let topic = "relocated"
        let created = try Project.run("kafka-topics.sh", ["--zookeeper", c.zkConnect, "--create", "--topic", topic, "--replica-assignment", "0"])
        XCTAssertEqual(created.exitCode, 0, created.summary)
        try c.waitForLeaders(topic: topic)
        let ports = c.brokers.map(\.port)
        let producer = FailoverProducer(topic: topic, acks: -1, candidatePorts: { ports })
        let work = BackgroundWork { w in
            var i = 0
            while !w.shouldStop { producer.send("m\(i)", timeout: 30); i += 1 }
        }
        defer { work.stopAndWait(timeout: 60) }
        try await pollAsync(timeout: 30, "messages acknowledged before the move") { producer.acked.count >= 50 ? true : nil }

        let planFile = try write("{\"version\":1,\"partitions\":[{\"topic\":\"\(topic)\",\"partition\":0,\"replicas\":[1]}]}", "plan.json", in: c)
        let exec = try Project.run("kafka-reassign-partitions.sh", ["--zookeeper", c.zkConnect, "--execute", "--reassignment-json-file", planFile])
        XCTAssertEqual(exec.exitCode, 0, exec.summary)
        try await pollAsync(timeout: 60, "--verify to report completion") { () -> Bool? in
            let v = try Project.run("kafka-reassign-partitions.sh", ["--zookeeper", c.zkConnect, "--verify", "--reassignment-json-file", planFile])
            return v.stdout.contains("Reassignment of partition [\(topic),0] completed successfully") ? true : nil
        }
        let before = producer.acked.count
        try await pollAsync(timeout: 30, "messages acknowledged by the new leader") { producer.acked.count >= before + 20 ? true : nil }
        XCTAssertTrue(work.stopAndWait(timeout: 60))

        let describe = try Project.run("kafka-topics.sh", ["--zookeeper", c.zkConnect, "--describe", "--topic", topic])
        XCTAssertEqual(DescribedPartition.parse(describe.stdout, topic: topic), [DescribedPartition(partition: 0, leader: 1, replicas: [1], isr: [1])], describe.summary)
        let acked = producer.acked
        let all = try c.brokers[1].connect().fetchAll(topic: topic)
        let byOffset = Dictionary(all.map { ($0.offset, $0.value ?? "") }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(acked.filter { byOffset[$0.offset] != $0.value }.map(\.value), [], "acknowledged messages missing on the new leader")
        try await pollAsync(timeout: 30, "broker 0's replica directory deleted") { () -> Bool? in
            let on0 = (try? FileManager.default.contentsOfDirectory(atPath: c.brokers[0].logDir)) ?? []
            return on0.contains("\(topic)-0") ? nil : true
        }
    }

    /// The controller dies in the middle of a reassignment (new replica held back, so it has not
    /// caught up); the next controller reads `/admin/reassign_partitions` and finishes the move.
    func testNewControllerResumesReassignmentInProgress() async throws {
        let c = try await startCluster(brokerIds: [0, 1, 2], overrides: ["zookeeper.session.timeout.ms": "4000"])
        let zk = try await ZkInspector.connect(c.zkConnect)
        defer { Task { await zk.close() } }
        let ctl = try await pollAsync(timeout: 30, "a controller") { try await zk.controllerId() }
        let others = [0, 1, 2].filter { $0 != Int(ctl) }
        let (a, b) = (others[0], others[1])
        let topic = "resumed"
        let created = try Project.run("kafka-topics.sh", ["--zookeeper", c.zkConnect, "--create", "--topic", topic, "--replica-assignment", "\(ctl):\(a)"])
        XCTAssertEqual(created.exitCode, 0, created.summary)
        try await zk.waitForState(topic, 0, timeout: 30, "ISR \(ctl),\(a)") { Set($0.isr) == [ctl, Int32(a)] }
        let producer = FailoverProducer(topic: topic, acks: -1, candidatePorts: { c.brokers.map(\.port) })
        for i in 0..<50 { XCTAssertNotNil(producer.send("before-\(i)")) }

        // Broker b is frozen: it stays registered but cannot fetch, so the move waits for it.
        let frozen = c.brokers.first { $0.id == b }!
        kill(frozen.pid!, SIGSTOP)
        var resumed = false
        defer { if !resumed { kill(frozen.pid!, SIGCONT) } }
        let plan = "{\"version\":1,\"partitions\":[{\"topic\":\"\(topic)\",\"partition\":0,\"replicas\":[\(a),\(b)]}]}"
        let planFile = try write(plan, "plan.json", in: c)
        let exec = try Project.run("kafka-reassign-partitions.sh", ["--zookeeper", c.zkConnect, "--execute", "--reassignment-json-file", planFile])
        XCTAssertEqual(exec.exitCode, 0, exec.summary)
        // Step 1 done: the assignment holds the new and the old replicas.
        try await pollAsync(timeout: 10, "AR = RAR + OAR in /brokers/topics/\(topic)") { () -> Bool? in
            let (data, _) = try await zk.zk.get("/brokers/topics/\(topic)")
            return String(decoding: data ?? [], as: UTF8.self).contains("\"0\":[\(a),\(b),\(ctl)]") ? true : nil
        }
        let v = try Project.run("kafka-reassign-partitions.sh", ["--zookeeper", c.zkConnect, "--verify", "--reassignment-json-file", planFile])
        XCTAssertTrue(v.stdout.contains("Reassignment of partition [\(topic),0] is still in progress"), v.summary)
        // The controller dies; b thaws.
        c.brokers.first { $0.id == Int(ctl) }!.kill9()
        kill(frozen.pid!, SIGCONT)
        resumed = true

        let done = try await pollAsync(timeout: 60, "--verify to report completion under the new controller") { () -> String? in
            let v = try Project.run("kafka-reassign-partitions.sh", ["--zookeeper", c.zkConnect, "--verify", "--reassignment-json-file", planFile])
            return v.stdout.contains("completed successfully") ? v.stdout : nil
        }
        XCTAssertEqual(done, "Status of partition reassignment:\nReassignment of partition [\(topic),0] completed successfully\n")
        let newController = try await zk.controllerId()
        XCTAssertNotEqual(newController, ctl)
        let state = try await zk.waitForState(topic, 0, timeout: 30, "ISR of the new replicas only") { Set($0.isr) == [Int32(a), Int32(b)] }
        XCTAssertTrue([Int32(a), Int32(b)].contains(state.leader))
        let adminNode = try await zk.zk.exists("/admin/reassign_partitions")
        XCTAssertNil(adminNode)
        for i in 0..<10 { XCTAssertNotNil(producer.send("after-\(i)")) }
        let acked = producer.acked
        for id in [a, b] {
            let broker = c.brokers.first { $0.id == id }!
            try await pollAsync(timeout: 30, "broker \(id) holds every acknowledged message") { () -> Bool? in
                let all = try broker.connect().debugFetchAll(topic: topic).messages
                let byOffset = Dictionary(all.map { ($0.offset, $0.value ?? "") }, uniquingKeysWith: { x, _ in x })
                return acked.allSatisfy { byOffset[$0.offset] == $0.value } ? true : nil
            }
        }
    }

    /// Misuse: each bad flag, file or JSON is an error naming it, exit status 1.
    func testBadInputIsNamed() async throws {
        let c = try await startCluster(brokerIds: [0])
        try c.createTopic("t")
        let bad = try write("{\"partitions\":[{\"topic\":\"t\",\"partition\":0}]}", "bad.json", in: c)
        let dup = try write("{\"partitions\":[{\"topic\":\"t\",\"partition\":0,\"replicas\":[0,0]}]}", "dup.json", in: c)
        let topics = try write("{\"topics\":[{\"topic\":\"t\"}]}", "topics.json", in: c)
        let nowhere = try write("{\"partitions\":[{\"topic\":\"nope\",\"partition\":0,\"replicas\":[0]},{\"topic\":\"t\",\"partition\":9,\"replicas\":[0]}]}", "nowhere.json", in: c)
        let missingTopic = try write("{\"topics\":[{\"topic\":\"nope\"}]}", "missing.json", in: c)
        let cases: [(args: [String], message: String)] = [
            (["--zookeeper", c.zkConnect], "Command must include exactly one action: --generate, --execute or --verify"),
            (["--zookeeper", c.zkConnect, "--execute", "--verify", "--reassignment-json-file", bad], "Command must include exactly one action"),
            (["--execute", "--reassignment-json-file", bad], "Missing required argument \"[zookeeper]\""),
            (["--zookeeper", c.zkConnect, "--execute"], "If --execute option is used, command must include --reassignment-json-file"),
            (["--zookeeper", c.zkConnect, "--generate", "--broker-list", "0"], "If --generate option is used, command must include both --topics-to-move-json-file and --broker-list options"),
            (["--zookeeper", c.zkConnect, "--execute", "--reassignment-json-file", "/nonexistent/plan.json"], "--reassignment-json-file /nonexistent/plan.json does not exist"),
            (["--zookeeper", c.zkConnect, "--execute", "--reassignment-json-file", bad], "--reassignment-json-file \(bad) is not a partition reassignment: entry without a \"replicas\" list of integers"),
            (["--zookeeper", c.zkConnect, "--execute", "--reassignment-json-file", dup], "Partition replica lists may not contain duplicate entries: [t,0] contains multiple entries for 0"),
            (["--zookeeper", c.zkConnect, "--generate", "--topics-to-move-json-file", topics, "--broker-list", "0,x"], "--broker-list \"0,x\" is not a comma-separated list of broker ids"),
            (["--zookeeper", c.zkConnect, "--generate", "--topics-to-move-json-file", topics, "--broker-list", "0,0"], "Broker list contains duplicate entries: 0"),
            (["--zookeeper", c.zkConnect, "--generate", "--topics-to-move-json-file", missingTopic, "--broker-list", "0"], "Topic nope named in --topics-to-move-json-file \(missingTopic) does not exist"),
            (["--zookeeper", c.zkConnect, "--verify", "--reassignment-json-file", bad, "--bogus"], "--bogus"),
            (["--zookeeper", c.zkConnect, "--execute", "--reassignment-json-file", nowhere], "None of the partitions in --reassignment-json-file \(nowhere) exists; nothing to reassign"),
        ]
        for (args, message) in cases {
            let r = try Project.run("kafka-reassign-partitions.sh", args)
            XCTAssertEqual(r.exitCode, 1, "\(args): \(r.summary)")
            XCTAssertTrue(r.stderr.contains(message), "\(args): expected \(message) in \(r.summary)")
        }
        // A partition whose assignment does not match (the controller refused it): failed, exit 1.
        let wrong = try write("{\"partitions\":[{\"topic\":\"t\",\"partition\":0,\"replicas\":[5]}]}", "wrong.json", in: c)
        let v = try Project.run("kafka-reassign-partitions.sh", ["--zookeeper", c.zkConnect, "--verify", "--reassignment-json-file", wrong])
        XCTAssertEqual(v.exitCode, 1, v.summary)
        XCTAssertEqual(v.stdout, "Status of partition reassignment:\nERROR: Assigned replicas (0) don't match the list of replicas for reassignment (5) for partition [t,0]\nReassignment of partition [t,0] failed\n", v.summary)
        // Executing it: the controller refuses a dead broker and clears the admin node.
        let e = try Project.run("kafka-reassign-partitions.sh", ["--zookeeper", c.zkConnect, "--execute", "--reassignment-json-file", wrong])
        XCTAssertEqual(e.exitCode, 0, e.summary)
        let zk = try await ZkInspector.connect(c.zkConnect)
        defer { Task { await zk.close() } }
        try await pollAsync(timeout: 30, "the refused reassignment removed from /admin/reassign_partitions") { () -> Bool? in
            try await zk.zk.exists("/admin/reassign_partitions") == nil ? true : nil
        }
    }
}
