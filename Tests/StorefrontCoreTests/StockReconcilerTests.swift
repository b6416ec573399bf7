import Foundation
import StorefrontContracts
import StorefrontCore
import Testing

@Suite("Stock counter reconciliation sweep")
struct StockReconcilerTests {
    func setup(_ mode: PurchaseMode) async throws -> (InMemoryStore, InProcessStockCounter, InProcessProductLock, StockReconciler, Product) {
        let store = InMemoryStore()
        let counter = InProcessStockCounter()
        let lock = InProcessProductLock()
        let reconciler = StockReconciler(products: store, counter: counter, lock: lock, mode: mode)
        let p = try await store.create(NewProduct(sku: "r", name: "R", description: "", priceMinor: 1, currency: "USD", stock: 10), now: Date())
        return (store, counter, lock, reconciler, p)
    }

    @Test func lockModeCorrectsUnderTheLock() async throws {
        let (_, counter, lock, reconciler, p) = try await setup(.lock)
        try await counter.set(productId: p.id, value: 3)  // drifted
        reconciler.note(p.id)
        // A purchase holds the lock: the sweep must not touch the counter now.
        #expect(try await lock.acquire(productId: p.id, token: "buyer", ttl: .seconds(30)))
        #expect(await reconciler.sweep() == .init(checked: 1, corrected: 0, deferred: 1))
        #expect(try await counter.get(productId: p.id) == 3)
        #expect(reconciler.pending == [p.id], "kept for the next sweep")
        try await lock.release(productId: p.id, token: "buyer")
        #expect(await reconciler.sweep().corrected == 1)
        #expect(try await counter.get(productId: p.id) == 10)
        #expect(try await lock.acquire(productId: p.id, token: "next", ttl: .seconds(1)), "the sweep released its lock")
        #expect(reconciler.pending.isEmpty)
        #expect(await reconciler.sweep() == .init(), "nothing left to check")
    }

    @Test func atomicModeCorrectsOnlyAStableDiscrepancy() async throws {
        let (store, counter, _, reconciler, p) = try await setup(.atomic)
        try await counter.set(productId: p.id, value: 4)
        reconciler.note(p.id)
        #expect(await reconciler.sweep().corrected == 0, "might be a purchase in flight")
        #expect(try await counter.get(productId: p.id) == 4)
        // Stock moved in between: still not trusted.
        _ = try await store.restock(id: p.id, qty: 5, now: Date())
        #expect(await reconciler.sweep().corrected == 0)
        // Nothing moved since the last sweep: the discrepancy is real.
        #expect(await reconciler.sweep().corrected == 1)
        #expect(try await counter.get(productId: p.id) == 15)
        #expect(reconciler.pending.isEmpty)
    }

    @Test func consistentOrMissingCountersAreLeftAlone() async throws {
        let (_, counter, _, reconciler, p) = try await setup(.atomic)
        reconciler.note(p.id)
        #expect(await reconciler.sweep() == .init(checked: 1, corrected: 0, deferred: 0), "a missing key is rebuilt by the next purchase")
        #expect(try await counter.get(productId: p.id) == nil)
        try await counter.set(productId: p.id, value: 10)
        reconciler.note(p.id)
        #expect(await reconciler.sweep().corrected == 0)
        #expect(reconciler.pending.isEmpty)
    }
}
