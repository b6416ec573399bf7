import Foundation
import StorefrontContracts
import StorefrontCore
@testable import StorefrontSQLite
import Synchronization
import Testing

/// Two app servers' relays on one outbox (a SQLite file here; the lease's SQL is the MariaDB store's too, whose
/// contract test runs on MariaDB): one publishes, the other stands by; a released or lapsed lease is taken over.
@Suite("Outbox relay leadership")
struct RelayLeadershipTests {
    /// Delivers every record and remembers which it saw.
    final class Recorder: EventPublisher {
        let seen = Mutex<[Int64]>([])
        func publish(_ records: [OutboxRecord]) async -> PublishOutcome {
            seen.withLock { $0 += records.map(\.id) }
            return PublishOutcome(delivered: records.count, error: nil)
        }
        var count: Int { seen.withLock { $0.count } }
    }

    func writeEvent(_ db: SQLiteDatabase, _ productId: Int64) async throws {
        _ = try await db.sagas().begin(NewSaga(idempotencyKey: nil, productId: productId, qty: 1, amountMinor: 100, currency: "USD",
                                               mode: .atomic, owner: "app-a", lease: .seconds(30)), now: Date())
    }

    @Test func oneRelayPublishesTheOtherStandsByAndTakesOver() async throws {
        let db = try temporarySQLite()
        let product = try await db.products.create(ProductStoreContract.mug("relay-lease", stock: 100), now: Date())
        let (toA, toB) = (Recorder(), Recorder())
        let lease = Duration.milliseconds(1500)
        let a = OutboxRelay(outbox: db.sagas(), publisher: toA, leadership: .init(owner: "app-a", lease: lease, standbyPause: .milliseconds(50)))
        let b = OutboxRelay(outbox: db.sagas(), publisher: toB, leadership: .init(owner: "app-b", lease: lease, standbyPause: .milliseconds(50)))
        let idle = Duration.milliseconds(10)

        try await writeEvent(db, product.id)
        #expect(await a.step(idle: idle) == .zero && toA.count == 1 && a.isLeading)
        #expect(await b.step(idle: idle) == .milliseconds(50), "standing by: its pause, nothing published")
        #expect(toB.count == 0 && !b.isLeading)
        #expect(try await b.relayOnce() == 0, "the outbox was emptied by the holder")

        // released at shutdown: taken over at the standby's next try, not after the lease's length
        await a.resign()
        #expect(!a.isLeading)
        try await writeEvent(db, product.id)
        #expect(await b.step(idle: idle) == .zero && toB.count == 1 && b.isLeading)
        #expect(await a.step(idle: idle) == .milliseconds(50) && toA.count == 1)

        // the holder stops renewing (dead, paused): its lease lapses and the other takes over
        try await writeEvent(db, product.id)
        let lapsed = ContinuousClock.now + lease + .seconds(1)
        var pauses: [Duration] = []
        while ContinuousClock.now < lapsed, toA.count == 1 {
            pauses.append(await a.step(idle: idle))
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(toA.count == 2, "taken over within the lease's length")
        #expect(pauses.count >= 3 && pauses.dropLast().allSatisfy { $0 == .milliseconds(50) }, "stood by until the lease lapsed")
        #expect(a.isLeading)
        // the old holder, back: a third of its lease has passed, so it asks before publishing — and stands by
        try await writeEvent(db, product.id)
        #expect(await b.step(idle: idle) == .milliseconds(50) && toB.count == 1 && !b.isLeading)
        #expect(await a.step(idle: idle) == .zero && toA.count == 3)
    }
}
