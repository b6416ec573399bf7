import Foundation
import Kafka
import StorefrontCore

/// `storefront kafka-dev`: librdkafka's mock cluster as a local Kafka of `brokers` brokers, with the event
/// topic — for development and tests, never production.
public final class DevKafka: Sendable {
    private let cluster: KafkaMockCluster

    public init(brokers: Int, topic: String, partitions: Int32) throws {
        cluster = try KafkaMockCluster(brokers: brokers)
        try cluster.createTopic(topic, partitions: partitions, replicationFactor: Int32(min(brokers, 2)))
    }

    public var bootstrapServers: String { cluster.bootstrapServers }
    public var brokersUp: [Int32] { cluster.brokersUp }

    /// Takes broker `id` (1-based) down or brings it back; leadership and group coordination move.
    public func setBroker(_ id: Int32, up: Bool) throws {
        if up { try cluster.setBrokerUp(id) } else { try cluster.setBrokerDown(id) }
    }
}
