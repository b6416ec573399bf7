/// What publishing a batch of outbox records achieved: the first `delivered` records were acknowledged, in
/// order; `error` says why the rest were not (nil when all were).
public struct PublishOutcome: Sendable {
    public var delivered: Int
    public var error: (any Error)?
    public init(delivered: Int, error: (any Error)?) {
        self.delivered = delivered
        self.error = error
    }
}

/// Publishes outbox records to the event stream (Kafka), keyed by saga id, in the order given.
public protocol EventPublisher: Sendable {
    func publish(_ records: [OutboxRecord]) async -> PublishOutcome
}
