import Foundation
import Logging
import Metrics
import Synchronization

/// Moves the transactional outbox to the event stream: reads unpublished records in id order, publishes them,
/// and marks them published only after the broker acknowledged them. At-least-once: a crash between
/// delivery and marking re-sends those records (consumers dedupe by `eventId`); nothing is dropped, and a
/// failed batch is retried from its first unacknowledged record, with back-off while the brokers are away.
public final class OutboxRelay: Sendable {
    private let outbox: any OutboxStore
    private let publisher: any EventPublisher
    private let batchSize: Int
    private let clock: WallClock
    private let logger: Logger
    private let published = Counter(label: "storefront_outbox_published_total")
    /// Failed rounds in a row (the relay service's back-off).
    private let consecutiveFailures = Mutex(0)

    public init(outbox: any OutboxStore, publisher: any EventPublisher, batchSize: Int = 500, clock: WallClock = .system,
                logger: Logger = Logger(label: "storefront.outbox-relay")) {
        self.outbox = outbox
        self.publisher = publisher
        self.batchSize = batchSize
        self.clock = clock
        self.logger = logger
    }

    /// Publishes one batch; returns how many records were published. Throws when the batch failed (after
    /// marking the acknowledged prefix).
    @discardableResult
    public func relayOnce() async throws -> Int {
        let batch = try await outbox.unpublished(limit: batchSize)
        guard !batch.isEmpty else { return 0 }
        let outcome = await publisher.publish(batch)
        if outcome.delivered > 0 {
            try await outbox.markPublished(ids: batch.prefix(outcome.delivered).map(\.id), at: clock.now())
            published.increment(by: outcome.delivered)
        }
        if let error = outcome.error { throw error }
        return outcome.delivered
    }

    /// True after a failed round and until a round succeeds (the brokers are away).
    public var isFailing: Bool { consecutiveFailures.withLock { $0 > 0 } }

    /// Relays until the outbox is empty (tests, `storefront` shutdown).
    public func drain(maxBatches: Int = 10_000) async throws {
        for _ in 0..<maxBatches where try await relayOnce() > 0 {}
    }

    /// One round of the app server's relay service: publishes a batch and returns the pause before the next —
    /// none while records keep coming, `idle` once the outbox is empty, and a back-off doubling up to 5 s while
    /// publishing fails.
    public func step(idle: Duration = .milliseconds(100)) async -> Duration {
        do {
            let published = try await relayOnce()
            let failures = consecutiveFailures.withLock { f in defer { f = 0 }; return f }
            if failures > 0 { logger.info("outbox relay resumed", metadata: ["published": "\(published)"]) }
            return published == 0 ? idle : .zero
        } catch {
            let failures = consecutiveFailures.withLock { f in f += 1; return f }
            if failures == 1 || failures % 20 == 0 {
                logger.warning("outbox relay cannot publish; retrying", metadata: ["error": "\(error)", "attempt": "\(failures)"])
            }
            return min(Duration.milliseconds(100) * (1 << min(failures - 1, 6)), .seconds(5))
        }
    }
}

/// The relay in `/health/ready` and the console: `degraded` while its rounds fail (the brokers are away and
/// events wait in the outbox — nothing is lost, purchases go on), never `down`.
extension OutboxRelay: HealthCheckable {
    public var healthName: String { "kafka_relay" }
    public var healthIsCritical: Bool { false }

    public func checkHealth() async throws {
        let failures = consecutiveFailures.withLock { $0 }
        if failures > 0 {
            throw StorefrontError.unavailable("the outbox relay cannot publish to Kafka (\(failures) failed rounds in a row); events wait in the outbox",
                                              retryAfterSeconds: 5)
        }
    }
}
