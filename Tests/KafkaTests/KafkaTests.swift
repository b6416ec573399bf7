import Foundation
import Kafka
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// Messages read by a background task.
final class Collected: Sendable {
    private let messages = Mutex<[KafkaMessage]>([])
    func withLock<R>(_ body: (inout [KafkaMessage]) -> R) -> R { messages.withLock { body(&$0) } }
}

/// Keeps every log record (a swift-log handler for tests; no global bootstrap).
final class CapturedLogs: Sendable {
    let records = Mutex<[(level: Logger.Level, message: String, source: String)]>([])

    var logger: Logger {
        var logger = Logger(label: "test") { _ in Handler(sink: self) }
        logger.logLevel = .debug
        return logger
    }

    struct Handler: LogHandler {
        let sink: CapturedLogs
        var logLevel: Logger.Level = .debug
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
            sink.records.withLock { $0.append((level, message.description, source)) }
        }
    }
}

/// Against librdkafka's mock cluster with 2 brokers (the dev broker).
@Suite("Kafka wrapper (mock cluster, 2 brokers)")
struct KafkaTests {
    func cluster(topic: String) throws -> KafkaMockCluster {
        let cluster = try KafkaMockCluster(brokers: 2)
        try cluster.createTopic(topic, partitions: 3, replicationFactor: 2)
        return cluster
    }

    func consume(_ consumer: KafkaConsumer, count: Int, timeout: Duration = .seconds(20)) async throws -> [KafkaMessage] {
        var messages: [KafkaMessage] = []
        let deadline = ContinuousClock.now + timeout
        while messages.count < count, ContinuousClock.now < deadline {
            if let m = try await consumer.next(timeout: .milliseconds(200)) { messages.append(m) }
        }
        return messages
    }

    @Test func produceConsumeCommitAndResume() async throws {
        let topic = "t-\(UUID().uuidString.prefix(8))"
        let cluster = try cluster(topic: topic)
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: cluster.bootstrapServers))
        try await producer.whileRunning {
        var reports: [DeliveryReport] = []
        for n in 0..<60 {
            reports.append(try await producer.send(topic: topic, key: "saga-\(n % 6)", value: "{\"n\":\(n)}"))
        }
        #expect(reports.allSatisfy { (0..<3).contains($0.partition) && $0.offset >= 0 })
        // Same key → same partition.
        let byKey = Dictionary(grouping: zip(0..<60, reports), by: { $0.0 % 6 }).mapValues { Set($0.map(\.1.partition)) }
        #expect(byKey.values.allSatisfy { $0.count == 1 })

        let group = "g-\(UUID().uuidString.prefix(8))"
        var config = KafkaConsumerConfiguration(bootstrapServers: cluster.bootstrapServers, groupID: group, topics: [topic])
        config.extra = ["session.timeout.ms": "6000", "heartbeat.interval.ms": "500"]
        let first = try KafkaConsumer(configuration: config)
        let got = try await consume(first, count: 60)
        #expect(got.count == 60)
        #expect(Set(got.map(\.value)).count == 60)
        // Per key, messages arrive in the order they were sent.
        for k in 0..<6 {
            let ns = got.filter { $0.key == "saga-\(k)" }.compactMap { Int($0.value.dropFirst(5).dropLast()) }
            #expect(ns == ns.sorted())
        }
        for m in got { try await first.commit(m) }
        await first.close()

        for n in 60..<70 { _ = try await producer.send(topic: topic, key: "saga-\(n % 6)", value: "{\"n\":\(n)}") }
        let second = try KafkaConsumer(configuration: config)
        let resumed = try await consume(second, count: 10, timeout: .seconds(30))
        #expect(resumed.count == 10)
        #expect(Set(resumed.map(\.value)) == Set((60..<70).map { "{\"n\":\($0)}" }), "resumed after the committed offsets")
        await second.close()
        }
        #expect(cluster.brokersUp == [1, 2])  // (keeps the cluster alive until here)
    }

    @Test func oneBrokerDownThePartitionsMoveAndDeliveryContinues() async throws {
        let topic = "t-\(UUID().uuidString.prefix(8))"
        let cluster = try cluster(topic: topic)
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: cluster.bootstrapServers))
        try await producer.whileRunning {
        for n in 0..<20 { _ = try await producer.send(topic: topic, key: "k\(n)", value: "before-\(n)") }
        try cluster.setBrokerDown(1)
        #expect(cluster.brokersUp == [2])
        for n in 0..<20 { _ = try await producer.send(topic: topic, key: "k\(n)", value: "after-\(n)") }
        try cluster.setBrokerUp(1)
        let group = "g-\(UUID().uuidString.prefix(8))"
        try cluster.setGroupCoordinator(group)
        let consumer = try KafkaConsumer(configuration: .init(bootstrapServers: cluster.bootstrapServers, groupID: group, topics: [topic]))
        let got = try await consume(consumer, count: 40)
        #expect(Set(got.map(\.value)).count == 40, "nothing lost while a broker was down")
        await consumer.close()
        }
    }

    /// Reads `consumer.messages` in a task, committing each; the messages land in `sink`.
    func reading(_ consumer: KafkaConsumer, into sink: Collected) -> Task<Void, any Error> {
        Task {
            for try await message in consumer.messages {
                try await consumer.commit(message)
                sink.withLock { $0.append(message) }
            }
        }
    }

    func eventually(_ what: String, timeout: Duration = .seconds(40), _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else { Issue.record("timed out waiting until \(what)"); return }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// A second member joins: the partitions are split between the two and every message is read once;
    /// it leaves: the first owns all of them again and reads what follows.
    @Test func consumerGroupRebalancesWhenMembersJoinAndLeave() async throws {
        let topic = "t-\(UUID().uuidString.prefix(8))"
        let cluster = try KafkaMockCluster(brokers: 2)
        try cluster.createTopic(topic, partitions: 4, replicationFactor: 2)
        let group = "g-\(UUID().uuidString.prefix(8))"
        try cluster.setGroupCoordinator(group)
        var config = KafkaConsumerConfiguration(bootstrapServers: cluster.bootstrapServers, groupID: group, topics: [topic])
        config.extra = ["session.timeout.ms": "6000", "heartbeat.interval.ms": "300"]
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: cluster.bootstrapServers))
        try await producer.whileRunning {
            let a = try KafkaConsumer(configuration: config)
            let gotA = Collected()
            let readerA = reading(a, into: gotA)
            try await eventually("the first member owns every partition") { a.assignment.count == 4 }

            let b = try KafkaConsumer(configuration: config)
            let gotB = Collected()
            let readerB = reading(b, into: gotB)
            try await eventually("the partitions are split") {
                !a.assignment.isEmpty && !b.assignment.isEmpty && a.assignment.union(b.assignment).count == 4
                    && a.assignment.intersection(b.assignment).isEmpty
            }
            for n in 0..<100 { _ = try await producer.send(topic: topic, key: "k\(n)", value: "m\(n)") }
            try await eventually("every message was read") {
                Set(gotA.withLock { $0.map(\.value) }).union(gotB.withLock { $0.map(\.value) }).count == 100
            }
            let (fromA, fromB) = (gotA.withLock { $0.count }, gotB.withLock { $0.count })
            #expect(fromA > 0 && fromB > 0, "both members read their partitions (a \(fromA), b \(fromB))")
            #expect(fromA + fromB == 100, "no message read twice")

            await b.close()
            try await readerB.value
            try await eventually("the first member owns every partition again") { a.assignment.count == 4 }
            for n in 100..<120 { _ = try await producer.send(topic: topic, key: "k\(n)", value: "m\(n)") }
            try await eventually("the first member read what followed") {
                Set(gotA.withLock { $0.map(\.value) }).isSuperset(of: (100..<120).map { "m\($0)" })
            }
            #expect(a.rebalanceEvents >= 3, "assigned, revoked/assigned on join, again on leave (\(a.rebalanceEvents))")
            await a.close()
            try await readerA.value
        }
        #expect(cluster.brokersUp == [1, 2])  // (keeps the cluster alive until here)
    }

    /// librdkafka's log lines reach swift-log; statistics reach `statistics` (and swift-metrics).
    @Test func logsAndStatisticsAreForwarded() async throws {
        let logs = CapturedLogs()
        var unreachable = KafkaProducerConfiguration(bootstrapServers: "127.0.0.1:1")
        unreachable.extra = ["reconnect.backoff.ms": "50"]
        let lonely = try KafkaProducer(configuration: unreachable, logger: logs.logger)
        try await lonely.whileRunning {
            try await eventually("librdkafka logged the refused connection", timeout: .seconds(10)) {
                logs.records.withLock { $0.contains { $0.source == "librdkafka" && $0.level >= .warning } }
            }
        }

        let topic = "t-\(UUID().uuidString.prefix(8))"
        let cluster = try cluster(topic: topic)
        var config = KafkaProducerConfiguration(bootstrapServers: cluster.bootstrapServers)
        config.statisticsIntervalMilliseconds = 100
        let producer = try KafkaProducer(configuration: config)
        try await producer.whileRunning {
            #expect(producer.statistics == KafkaStatistics.zero)
            for n in 0..<30 { _ = try await producer.send(topic: topic, key: "k\(n)", value: "m\(n)") }
            try await eventually("statistics counted the messages, none left queued", timeout: .seconds(10)) {
                let stats = producer.statistics
                return stats.messagesSent >= 30 && stats.brokersUp >= 1 && stats.queuedMessages == 0
            }
        }
        #expect(cluster.brokersUp == [1, 2])  // (keeps the cluster alive until here)
    }

    /// In a ServiceGroup, graceful shutdown stops the poll loop after the queued messages were delivered.
    @Test func producerRunsAsAServiceAndStopsGracefully() async throws {
        let topic = "t-\(UUID().uuidString.prefix(8))"
        let cluster = try cluster(topic: topic)
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: cluster.bootstrapServers))
        let services = ServiceGroup(configuration: .init(services: [producer], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await services.run() }
            let report = try await producer.send(topic: topic, key: "k", value: "first")
            #expect(report.offset >= 0)
            // Queued, then shutdown: the loop flushes before it returns, so this send completes.
            async let late = producer.send(topic: topic, key: "k", value: "second")
            try await Task.sleep(for: .milliseconds(5))
            await services.triggerGracefulShutdown()
            try await group.waitForAll()
            #expect(try await late.offset == report.offset + 1)
        }
        #expect(cluster.brokersUp == [1, 2])  // (keeps the cluster alive until here)
        await producer.close()
        await #expect(throws: KafkaError.self) { try await producer.send(topic: topic, key: "k", value: "after close") }
    }
}
