import Foundation
import Kafka
import StorefrontCore

/// `storefront events tail`: reads the event topic and hands each saga event's JSON over once
/// (deduplicated by eventId, as a consumer must: the relay delivers at least once).
public struct EventTail: Sendable {
    public var brokers: String
    public var topic = SagaEvent.defaultTopic
    public var fromBeginning = false
    public var sagaId: UUID?
    public var max: Int?
    /// Stop when no event arrived for this long (before the first event: at least 20 s, joining the group
    /// takes a while).
    public var idleTimeout: Duration?

    public init(brokers: String) {
        self.brokers = brokers
    }

    public func run(_ emit: (String) -> Void) async throws {
        var config = KafkaConsumerConfiguration(bootstrapServers: brokers, groupID: "storefront-events-tail-\(UUID().uuidString)", topics: [topic])
        config.fromBeginning = fromBeginning
        let consumer = try KafkaConsumer(configuration: config)
        var seen = Set<UUID>()
        var printed = 0
        let started = ContinuousClock.now
        var lastEvent: ContinuousClock.Instant?
        while max.map({ printed < $0 }) ?? true {
            if let idleTimeout {
                let idle = lastEvent.map { ContinuousClock.now - $0 > idleTimeout }
                    ?? (ContinuousClock.now - started > Swift.max(idleTimeout, .seconds(20)))
                if idle { break }
            }
            guard let message = try await consumer.next(timeout: .milliseconds(500)) else { continue }
            lastEvent = .now
            guard let event = try? SagaEvent.decode(message.value) else {
                FileHandle.standardError.write(Data("skipping a message that is not a saga event (offset \(message.offset))\n".utf8))
                continue
            }
            guard seen.insert(event.eventId).inserted, sagaId == nil || event.sagaId == sagaId else { continue }
            emit(message.value)
            printed += 1
        }
        await consumer.close()
    }
}
