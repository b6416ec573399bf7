import Foundation
import StorefrontContracts
import StorefrontCore
import Synchronization
import Testing

/// The near cache's rules, over an in-memory shared cache: it serves copies only while subscribed, never keeps a
/// value whose invalidation overtook it, and announces every invalidation after the shared delete.
@Suite("Near product cache")
struct NearProductCacheTests {
    final class Broadcasts: InvalidationBroadcast {
        let sent = Mutex<[Int64]>([])
        let failing = Atomic<Bool>(false)
        /// Runs at each publish, before it is recorded: lets a test see the shared cache at that moment.
        let onPublish = Mutex<(@Sendable (Int64) async -> Void)?>(nil)
        func publish(productId: Int64) async throws {
            if let hook = onPublish.withLock({ $0 }) { await hook(productId) }
            if failing.load(ordering: .relaxed) { throw CancellationError() }
            sent.withLock { $0.append(productId) }
        }
    }

    /// A shared cache whose lookups can be held at a gate (a reply still on its way).
    final class GatedCache: ProductCache {
        let inner = InProcessProductCache()
        let gate = Mutex<FaultGate?>(nil)
        func get(id: Int64) async throws -> CacheLookup {
            let lookup = try await inner.get(id: id)
            if let gate = gate.withLock({ $0 }) { await gate.pass() }
            return lookup
        }
        func put(_ product: Product, ttl: Duration) async throws { try await inner.put(product, ttl: ttl) }
        func putAbsent(id: Int64, ttl: Duration) async throws { try await inner.putAbsent(id: id, ttl: ttl) }
        func invalidate(id: Int64) async throws { try await inner.invalidate(id: id) }
    }

    static func product(_ id: Int64, stock: Int64) -> Product {
        Product(id: id, sku: "sku-\(id)", name: "n", description: "", priceMinor: 100, currency: "USD", stock: stock, version: stock,
                updatedAt: Date(timeIntervalSince1970: 0))
    }

    @Test func servesCopiesOnlyWhileSubscribed() async throws {
        let shared = InProcessProductCache()
        let near = NearProductCache(shared: shared, broadcast: Broadcasts(), settings: .init(ttl: .seconds(60)))
        try await shared.put(Self.product(1, stock: 5), ttl: .seconds(60))
        #expect(try await near.get(id: 1) == .hit(Self.product(1, stock: 5)))
        try await shared.put(Self.product(1, stock: 4), ttl: .seconds(60))
        #expect(try await near.get(id: 1) == .hit(Self.product(1, stock: 4)), "not subscribed: every lookup reads the shared cache")
        #expect(near.count == 0)

        near.subscribed()
        #expect(try await near.get(id: 1) == .hit(Self.product(1, stock: 4)))
        try await shared.put(Self.product(1, stock: 3), ttl: .seconds(60))  // a change whose message has not arrived yet
        #expect(try await near.get(id: 1) == .hit(Self.product(1, stock: 4)), "the copy is served until its invalidation arrives")
        near.invalidated(1)
        #expect(try await near.get(id: 1) == .hit(Self.product(1, stock: 3)))

        try await shared.put(Self.product(1, stock: 2), ttl: .seconds(60))
        near.unsubscribed()
        #expect(near.count == 0, "a lost subscription drops every copy")
        #expect(try await near.get(id: 1) == .hit(Self.product(1, stock: 2)))
        #expect(near.count == 0, "and keeps none until subscribed again")
    }

    @Test func absentIsKeptAndMissIsNot() async throws {
        let shared = InProcessProductCache()
        let near = NearProductCache(shared: shared, broadcast: Broadcasts(), settings: .init(ttl: .seconds(60)))
        near.subscribed()
        #expect(try await near.get(id: 7) == .miss)
        #expect(near.count == 0)
        try await shared.putAbsent(id: 7, ttl: .seconds(60))
        #expect(try await near.get(id: 7) == .absent)
        try await shared.put(Self.product(7, stock: 1), ttl: .seconds(60))
        #expect(try await near.get(id: 7) == .absent)
        near.invalidated(7)
        #expect(try await near.get(id: 7) == .hit(Self.product(7, stock: 1)))
    }

    /// The race the sequence guards: a lookup reads the old value, another server deletes it and its message
    /// arrives before the lookup's reply. The old value is answered (it was true when read) but not kept.
    @Test func aValueOvertakenByItsInvalidationIsNotKept() async throws {
        let shared = GatedCache()
        let near = NearProductCache(shared: shared, broadcast: Broadcasts(), settings: .init(ttl: .seconds(60)))
        near.subscribed()
        try await shared.put(Self.product(1, stock: 5), ttl: .seconds(60))
        let gate = FaultGate()
        shared.gate.withLock { $0 = gate }
        let lookup = Task { try await near.get(id: 1) }
        await gate.reached()
        try await shared.inner.put(Self.product(1, stock: 4), ttl: .seconds(60))
        near.invalidated(1)
        near.invalidated(2)  // another product's message after it changes nothing
        gate.open()
        #expect(try await lookup.value == .hit(Self.product(1, stock: 5)))
        shared.gate.withLock { $0 = nil }
        #expect(near.count == 0)
        #expect(try await near.get(id: 1) == .hit(Self.product(1, stock: 4)))
        #expect(near.count == 1)
    }

    /// A lookup that began before the subscription was lost and came back keeps nothing: messages sent while it
    /// was down are gone.
    @Test func aLookupAcrossAResubscriptionIsNotKept() async throws {
        let shared = GatedCache()
        let near = NearProductCache(shared: shared, broadcast: Broadcasts(), settings: .init(ttl: .seconds(60)))
        near.subscribed()
        try await shared.put(Self.product(1, stock: 5), ttl: .seconds(60))
        let gate = FaultGate()
        shared.gate.withLock { $0 = gate }
        let lookup = Task { try await near.get(id: 1) }
        await gate.reached()
        near.unsubscribed()
        near.subscribed()
        gate.open()
        _ = try await lookup.value
        #expect(near.count == 0)
    }

    /// More invalidations than it remembers, during one lookup: it cannot tell whether this product was among
    /// them, so it keeps nothing.
    @Test func forgottenInvalidationsKeepNothing() async throws {
        let shared = GatedCache()
        let near = NearProductCache(shared: shared, broadcast: Broadcasts(), settings: .init(ttl: .seconds(60)))
        near.subscribed()
        try await shared.put(Self.product(1, stock: 5), ttl: .seconds(60))
        let gate = FaultGate()
        shared.gate.withLock { $0 = gate }
        let lookup = Task { try await near.get(id: 1) }
        await gate.reached()
        near.invalidated(1)
        for id in Int64(1000)..<Int64(6000) { near.invalidated(id) }
        gate.open()
        _ = try await lookup.value
        #expect(near.count == 0)
    }

    /// `invalidate` deletes the shared entry before it broadcasts (a server that dropped its copy and read
    /// again must not find the old value), drops the local copy, and reports a failed broadcast.
    @Test func invalidateDeletesThenBroadcasts() async throws {
        let shared = InProcessProductCache()
        let broadcasts = Broadcasts()
        let near = NearProductCache(shared: shared, broadcast: broadcasts, settings: .init(ttl: .seconds(60)))
        near.subscribed()
        try await shared.put(Self.product(1, stock: 5), ttl: .seconds(60))
        _ = try await near.get(id: 1)
        let seenAtPublish = Mutex<CacheLookup?>(nil)
        broadcasts.onPublish.withLock {
            $0 = { id in
                let now = try? await shared.get(id: id)
                seenAtPublish.withLock { $0 = now }
            }
        }
        try await near.invalidate(id: 1)
        #expect(broadcasts.sent.withLock { $0 } == [1])
        #expect(seenAtPublish.withLock { $0 } == .miss, "the shared entry was gone when the message went out")
        #expect(try await near.get(id: 1) == .miss, "the local copy is gone too")

        broadcasts.failing.store(true, ordering: .relaxed)
        try await shared.put(Self.product(1, stock: 4), ttl: .seconds(60))
        _ = try await near.get(id: 1)
        await #expect(throws: CancellationError.self) { try await near.invalidate(id: 1) }
        #expect(try await shared.get(id: 1) == .miss, "the delete happened although the broadcast failed")
        #expect(near.count == 0)
    }

    /// A broadcast that hangs (its channel node paused) holds `invalidate` — and so a purchase, and in lock mode
    /// its product's lock — for `publishWait` at most; the message still goes out when the node answers.
    @Test func aHangingBroadcastHoldsInvalidateForPublishWaitAtMost() async throws {
        let shared = InProcessProductCache()
        let broadcasts = Broadcasts()
        let near = NearProductCache(shared: shared, broadcast: broadcasts, settings: .init(ttl: .seconds(60), publishWait: .milliseconds(100)))
        near.subscribed()
        let node = FaultGate()
        broadcasts.onPublish.withLock { $0 = { _ in await node.pass() } }
        try await shared.put(Self.product(1, stock: 5), ttl: .seconds(60))
        _ = try await near.get(id: 1)
        // The node answers only once `invalidate` has returned (or, so that a broken bound fails instead of
        // hanging, after 60 s — and then `openedEarly` is true). No wall-clock upper bound: a loaded
        // machine can stretch 100 ms, but it cannot make the call return while the node still hangs unless the
        // bound works.
        let returned = Atomic<Bool>(false)
        let openedByTimer = Atomic<Bool>(false)
        let fallback = Task {
            try? await Task.sleep(for: .seconds(60))
            if !returned.load(ordering: .acquiring) { openedByTimer.store(true, ordering: .releasing); node.open() }
        }
        let started = ContinuousClock.now
        try await near.invalidate(id: 1)
        let waited = ContinuousClock.now - started
        returned.store(true, ordering: .releasing)
        let openedEarly = openedByTimer.load(ordering: .acquiring)
        #expect(!openedEarly, "invalidate returned only when the node answered")
        #expect(waited >= .milliseconds(100), "waited \(waited), less than publishWait")
        #expect(try await shared.get(id: 1) == .miss && near.count == 0, "the delete and the local drop did not wait")
        #expect(broadcasts.sent.withLock { $0 }.isEmpty)
        node.open()
        fallback.cancel()
        for _ in 0..<200 where broadcasts.sent.withLock({ $0 }).isEmpty { try await Task.sleep(for: .milliseconds(10)) }
        #expect(broadcasts.sent.withLock { $0 } == [1], "the broadcast went out once the node answered")
    }

    @Test func copiesExpireAndStayBounded() async throws {
        let shared = InProcessProductCache()
        let near = NearProductCache(shared: shared, broadcast: Broadcasts(), settings: .init(ttl: .milliseconds(30), capacity: 50))
        near.subscribed()
        try await shared.put(Self.product(1, stock: 5), ttl: .seconds(60))
        _ = try await near.get(id: 1)
        try await shared.put(Self.product(1, stock: 4), ttl: .seconds(60))
        #expect(try await near.get(id: 1) == .hit(Self.product(1, stock: 5)))
        try await Task.sleep(for: .milliseconds(60))
        #expect(try await near.get(id: 1) == .hit(Self.product(1, stock: 4)), "an expired copy is read again")

        let big = NearProductCache(shared: shared, broadcast: Broadcasts(), settings: .init(ttl: .seconds(60), capacity: 50))
        big.subscribed()
        for id in Int64(1)...500 {
            try await shared.putAbsent(id: id + 100, ttl: .seconds(60))
            _ = try await big.get(id: id + 100)
        }
        #expect(big.count <= 50)
        #expect(big.count > 0)
    }
}
