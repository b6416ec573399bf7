import Kafka
import StorefrontCore

/// The Kafka engine's settings (`STOREFRONT_KAFKA_*`). No brokers = events stay in the outbox table.
public struct KafkaEngineConfig: Sendable, Equatable {
    public var brokers: String?

    public init() {}

    public static var keys: [ConfigKey<Self>] {
        [.text("STOREFRONT_KAFKA_BROKERS", "host:port,… for the Kafka relay; empty = events stay in the outbox table", \.brokers)]
    }

    /// The producer configuration (nil without brokers).
    public func producerConfiguration(clientID: String) -> KafkaProducerConfiguration? {
        guard let brokers else { return nil }
        var config = KafkaProducerConfiguration(bootstrapServers: brokers)
        config.clientID = clientID
        return config
    }
}
