import Foundation
import Kafka
import Testing

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
        await producer.close()
    }

    @Test func oneBrokerDownThePartitionsMoveAndDeliveryContinues() async throws {
        let topic = "t-\(UUID().uuidString.prefix(8))"
        let cluster = try cluster(topic: topic)
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: cluster.bootstrapServers))
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
        await producer.close()
    }
}
