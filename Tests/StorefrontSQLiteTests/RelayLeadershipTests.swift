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

    /// An outbox whose lease claims fail while `down` (the database away).
    final class Flaky: OutboxStore {
        let inner: any OutboxStore
        let down = Mutex(false)
        struct Away: Error {}
        init(_ inner: any OutboxStore) { self.inner = inner }
        func unpublished(limit: Int) async throws -> [OutboxRecord] { try await inner.unpublished(limit: limit) }
        func records(after: Int64, limit: Int, sagaId: UUID?) async throws -> [OutboxRecord] {
            try await inner.records(after: after, limit: limit, sagaId: sagaId)
        }
        func markPublished(ids: [Int64], at: Date) async throws { try await inner.markPublished(ids: ids, at: at) }
        func backlog(cap: Int) async throws -> OutboxBacklog { try await inner.backlog(cap: cap) }
        func claimRelay(owner: String, lease: Duration) async throws -> Bool {
            if down.withLock({ $0 }) { throw Away() }
            return try await inner.claimRelay(owner: owner, lease: lease)
        }
        func releaseRelay(owner: String) async throws { try await inner.releaseRelay(owner: owner) }
    }

    /// Shutdown: a standby publishes nothing while the holder holds the lease; the holder publishes what is left
    /// and releases it; a standby stopping after its holder takes the lease over, publishes and releases it.
    /// A claim that fails stands the relay by without counting as a failed publish.
    @Test func atShutdownTheHolderPublishesWhatIsLeftAndReleases() async throws {
        let db = try temporarySQLite()
        let product = try await db.products.create(ProductStoreContract.mug("relay-finish", stock: 100), now: Date())
        let (toA, toB) = (Recorder(), Recorder())
        let flaky = Flaky(db.sagas())
        let a = OutboxRelay(outbox: flaky, publisher: toA, batchSize: 2, leadership: .init(owner: "app-a", lease: .seconds(30)))
        let b = OutboxRelay(outbox: db.sagas(), publisher: toB, batchSize: 2, leadership: .init(owner: "app-b", lease: .seconds(30)))
        #expect(await a.step() == .milliseconds(100), "an empty outbox: the idle pause")
        for _ in 0..<5 { try await writeEvent(db, product.id) }
        await b.finish()
        #expect(toB.count == 0 && !b.isLeading, "a standby leaves the rest to the holder")
        #expect(try await db.sagas().claimRelay(owner: "app-b", lease: .seconds(30)) == false, "and the holder still holds the lease")
        await a.finish()
        #expect(toA.count == 5, "the holder published everything left, in batches")
        #expect(!a.isLeading)
        for _ in 0..<3 { try await writeEvent(db, product.id) }
        await b.finish()
        #expect(toB.count == 3, "released: the standby stopping after it took the lease over and published")
        #expect(try await db.sagas().claimRelay(owner: "app-a", lease: .seconds(30)), "and released it in turn")

        // a holds it again; the database goes away: its next claim fails → stands by, healthy, gauge not leading
        flaky.down.withLock { $0 = true }
        let c = OutboxRelay(outbox: flaky, publisher: toA, leadership: .init(owner: "app-a", lease: .milliseconds(30), standbyPause: .milliseconds(20)))
        #expect(await c.step() == .milliseconds(20))
        #expect(!c.isLeading && !c.isFailing)
        await #expect(throws: Never.self) { try await c.checkHealth() }
        flaky.down.withLock { $0 = false }
        #expect(await c.step() == .milliseconds(100) && c.isLeading, "the database back: the holder's own lease is renewed")
    }
}
