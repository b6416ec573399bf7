import Foundation
import Logging
import Metrics
import Synchronization

/// Moves the transactional outbox to the event stream: reads unpublished records in id order, publishes them,
/// and marks them published only after the broker acknowledged them. At-least-once: a crash between
/// delivery and marking re-sends those records (consumers dedupe by `eventId`); nothing is dropped, and a
/// failed batch is retried from its first unacknowledged record, with back-off while the brokers are away.
///
/// With a `Leadership` (app servers sharing one outbox) the relay publishes only while it holds the outbox's
/// relay lease: it renews the lease every third of its length, and one that cannot (another server holds it)
/// stands by, trying again every `standbyPause`, and takes over within the lease's length after the holder
/// died or stopped renewing. Two relays overlap only when a holder's round outlasts two thirds of the lease
/// (a stalled broker, a paused process): its records are then sent twice, as after a crash — never lost.
public final class OutboxRelay: Sendable {
    /// This server's name on the lease and the lease's length.
    public struct Leadership: Sendable {
        public var owner: String
        public var lease: Duration
        public var standbyPause: Duration

        public init(owner: String, lease: Duration = .seconds(6), standbyPause: Duration = .seconds(1)) {
            self.owner = owner
            self.lease = lease
            self.standbyPause = standbyPause
        }
    }

    private struct LeaseState {
        var leading = false
        /// Until when this relay may publish without asking the database again (a third of the lease after it
        /// asked): nil when not holding it.
        var renewAt: ContinuousClock.Instant?
    }

    private let outbox: any OutboxStore
    private let publisher: any EventPublisher
    private let batchSize: Int
    private let clock: WallClock
    private let logger: Logger
    private let published = Counter(label: "storefront_outbox_published_total")
    /// Failed rounds in a row (the relay service's back-off).
    private let consecutiveFailures = Mutex(0)
    private let leadership: Leadership?
    private let lease = Mutex(LeaseState())
    private let leadingGauge = Gauge(label: "storefront_outbox_relay_leading")

    public init(outbox: any OutboxStore, publisher: any EventPublisher, batchSize: Int = 500, clock: WallClock = .system,
                leadership: Leadership? = nil, logger: Logger = Logger(label: "storefront.outbox-relay")) {
        self.outbox = outbox
        self.publisher = publisher
        self.batchSize = batchSize
        self.clock = clock
        self.leadership = leadership
        self.logger = logger
    }

    /// True while this relay publishes: it holds the lease, or runs without one (alone on its outbox).
    public var isLeading: Bool {
        leadership == nil || lease.withLock { $0.leading }
    }

    /// Whether this relay may publish now: without a database call while a third of the lease has not passed
    /// since it last took or renewed it; otherwise claims it. A claim that fails (the database is away) counts
    /// as not holding it — the lease may lapse meanwhile — and is logged, not counted as a failed publish.
    func holdsLease() async -> LeaseAnswer {
        guard let leadership else { return .held }
        let asked = ContinuousClock.now
        if let renewAt = lease.withLock({ $0.renewAt }), asked < renewAt { return .held }
        let held: Bool
        var failure: (any Error)?
        do {
            held = try await outbox.claimRelay(owner: leadership.owner, lease: leadership.lease)
        } catch {
            held = false
            failure = error
        }
        let was = lease.withLock { state in
            defer { state = LeaseState(leading: held, renewAt: held ? asked + leadership.lease / 3 : nil) }
            return state.leading
        }
        leadingGauge.record(held ? 1 : 0)
        if let failure {
            if was { logger.warning("outbox relay: cannot renew the relay lease; standing by", metadata: ["error": "\(failure)"]) }
        } else if held != was {
            if held {
                logger.notice("outbox relay: this server relays (holds the relay lease)", metadata: ["owner": "\(leadership.owner)"])
            } else {
                logger.notice("outbox relay: another server relays; standing by", metadata: ["owner": "\(leadership.owner)"])
            }
        }
        return held ? .held : failure == nil ? .heldByAnother : .unknown
    }

    enum LeaseAnswer {
        case held, heldByAnother
        /// The claim failed (the database is away).
        case unknown
    }

    /// Gives the lease up (graceful shutdown, after the last drain) so that a standing-by server takes over at
    /// its next try instead of after the lease's length.
    public func resign() async {
        guard let leadership, lease.withLock({ $0.leading }) else { return }
        lease.withLock { $0 = LeaseState() }
        leadingGauge.record(0)
        do {
            try await outbox.releaseRelay(owner: leadership.owner)
            logger.info("outbox relay: lease released", metadata: ["owner": "\(leadership.owner)"])
        } catch {
            logger.warning("outbox relay: could not release the lease; another server takes over when it lapses",
                           metadata: ["error": "\(error)"])
        }
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

    /// Relays until the outbox is empty (tests).
    public func drain(maxBatches: Int = 10_000) async throws {
        for _ in 0..<maxBatches where try await relayOnce() > 0 {}
    }

    /// At graceful shutdown: publishes what is left — batch by batch while it holds the lease (a standby whose
    /// holder stopped first takes it over; one that does not get it leaves the rest to the holder) — unless the
    /// brokers are failing (waiting for an absent broker would outlast the stop timeout: the next relay
    /// publishes it), then releases the lease.
    public func finish(maxBatches: Int = 100) async {
        if isFailing {
            logger.notice("outbox relay: brokers unreachable at shutdown; the next relay publishes what is left")
        } else {
            do {
                for _ in 0..<maxBatches {
                    guard await holdsLease() == .held, try await relayOnce() > 0 else { break }
                }
            } catch {
                logger.warning("outbox relay: the last drain at shutdown failed; the next relay publishes what is left",
                               metadata: ["error": "\(error)"])
            }
        }
        await resign()
    }

    /// One round of the app server's relay service: publishes a batch and returns the pause before the next —
    /// none while records keep coming, `idle` once the outbox is empty, the standby pause while another server
    /// holds the lease, and a back-off doubling up to 5 s while publishing fails.
    public func step(idle: Duration = .milliseconds(100)) async -> Duration {
        do {
            let answer = await holdsLease()
            guard answer == .held else {
                // Another server relays: this one's publishing has not failed (nor is it trying). A failed claim:
                // whether the brokers are away is not known either, so the failure count stands.
                if answer == .heldByAnother { consecutiveFailures.withLock { $0 = 0 } }
                return leadership?.standbyPause ?? idle
            }
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
