import Kafka
import StorefrontCore

/// `EventPublisher` on Kafka: each outbox record becomes one message keyed by saga id (so one saga's events
/// share a partition and keep their order), sent by the idempotent producer.
public struct KafkaEventPublisher: EventPublisher {
    let producer: KafkaProducer

    public init(producer: KafkaProducer) {
        self.producer = producer
    }

    public func publish(_ records: [OutboxRecord]) async -> PublishOutcome {
        let results = await producer.sendBatch(records.map { .init(topic: $0.topic, key: $0.key, value: $0.payload) })
        let delivered = results.prefix { if case .success = $0 { true } else { false } }.count
        let error: (any Error)? = delivered < results.count ? {
            if case .failure(let e) = results[delivered] { return e }
            return nil
        }() : nil
        return PublishOutcome(delivered: delivered, error: error)
    }
}
