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

    @Test func atomicModeCorrectsAStableDiscrepancyInOneSweep() async throws {
        let (_, counter, _, reconciler, p) = try await setup(.atomic)
        try await counter.set(productId: p.id, value: 0)  // an earlier deployment's counter: refuses everything
        reconciler.note(p.id)
        #expect(await reconciler.sweep() == .init(checked: 1, corrected: 1, deferred: 0))
        #expect(try await counter.get(productId: p.id) == 10)
        #expect(reconciler.pending.isEmpty)
    }

    /// A purchase in flight has the counter ahead of the database: what moves during the settle window is left
    /// for the next sweep.
    @Test func atomicModeLeavesWhatMovesInTheSettleWindow() async throws {
        let store = InMemoryStore()
        let counter = InProcessStockCounter()
        let p = try await store.create(NewProduct(sku: "r", name: "R", description: "", priceMinor: 1, currency: "USD", stock: 10), now: Date())
        let reconciler = StockReconciler(products: store, counter: counter, lock: InProcessProductLock(), mode: .atomic,
                                         settleWindow: .zero) { _ in
            // A purchase reserves from the counter, then from the database, during the window.
            _ = try await counter.reserve(productId: p.id, qty: 1)
            _ = try await store.restock(id: p.id, qty: 0, now: Date())
        }
        try await counter.set(productId: p.id, value: 4)
        reconciler.note(p.id)
        #expect(await reconciler.sweep() == .init(checked: 1, corrected: 0, deferred: 1))
        #expect(try await counter.get(productId: p.id) == 3, "untouched by the sweep")
        #expect(reconciler.pending == [p.id], "looked at again next sweep")
    }

    /// The correction is a compare-and-set on the value read before the database: a give-back (atomic mode) or a
    /// recovery's `forget` (lock mode) that lands in between wins. (An unconditional SET left the counter low.)
    @Test(arguments: [PurchaseMode.atomic, .lock])
    func aConcurrentWriteWinsOverTheCorrection(mode: PurchaseMode) async throws {
        let store = InMemoryStore()
        let counter = FaultyStockCounter(InProcessStockCounter())
        let p = try await store.create(NewProduct(sku: "r", name: "R", description: "", priceMinor: 1, currency: "USD", stock: 10), now: Date())
        let reconciler = StockReconciler(products: store, counter: counter, lock: InProcessProductLock(), mode: mode, settleWindow: .zero)
        try await counter.set(productId: p.id, value: 6)
        counter.beforeCompareAndSet {
            if mode == .atomic { try await counter.giveBack(productId: p.id, qty: 2) } else { try await counter.forget(productId: p.id) }
        }
        reconciler.note(p.id)
        #expect(await reconciler.sweep().corrected == 0)
        #expect(try await counter.get(productId: p.id) == (mode == .atomic ? 8 : nil), "the concurrent write stands")
        counter.beforeCompareAndSet(nil)
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
