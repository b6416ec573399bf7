import Foundation
import StorefrontContracts
import StorefrontCore
import Synchronization

/// Wraps the in-memory store to count (and slow down) product reads.
final class CountingProductStore: ProductStore {
    private let inner = InMemoryStore()
    private let state = Mutex<(reads: Int, primaryReads: Int, delay: Duration, laggingReplica: Bool, primaryDown: Bool, frozen: [Int64: Product]?)>(
        (0, 0, .zero, false, false, nil))
    struct PrimaryDown: Error {}

    var reads: Int { state.withLock { $0.reads } }
    /// Reads at `.primary` consistency (included in `reads`).
    var primaryReads: Int { state.withLock { $0.primaryReads } }
    /// A replica that has not received any product yet: `.replica` reads find nothing.
    var laggingReplica: Bool {
        get { state.withLock { $0.laggingReplica } }
        set { state.withLock { $0.laggingReplica = newValue } }
    }
    /// `.primary` reads fail (the primary does not answer).
    var primaryDown: Bool {
        get { state.withLock { $0.primaryDown } }
        set { state.withLock { $0.primaryDown = newValue } }
    }
    /// A replica that stops applying changes: from now until `thawReplica`, `.replica` reads answer the
    /// products as they are now.
    func freezeReplica() async throws {
        let now = try await inner.products(after: nil, limit: 10_000, consistency: .primary).items
        state.withLock { $0.frozen = Dictionary(uniqueKeysWithValues: now.map { ($0.id, $0) }) }
    }
    func thawReplica() { state.withLock { $0.frozen = nil } }
    var delay: Duration {
        get { state.withLock { $0.delay } }
        set { state.withLock { $0.delay = newValue } }
    }

    func unitsHeld(productId: Int64) async throws -> Int64 { try await inner.unitsHeld(productId: productId) }

    func product(id: Int64, consistency: ReadConsistency) async throws -> Product? {
        let (delay, lagging, primaryDown, frozen) = state.withLock { s in
            s.reads += 1
            if consistency == .primary { s.primaryReads += 1 }
            return (s.delay, s.laggingReplica, s.primaryDown, s.frozen)
        }
        try await Task.sleep(for: delay)
        if consistency == .replica, lagging { return nil }
        if consistency == .replica, let frozen { return frozen[id] }
        if consistency == .primary, primaryDown { throw PrimaryDown() }
        return try await inner.product(id: id, consistency: consistency)
    }

    func products(after: Int64?, limit: Int, consistency: ReadConsistency) async throws -> ProductPage {
        try await inner.products(after: after, limit: limit, consistency: consistency)
    }
    func create(_ product: NewProduct, now: Date) async throws -> Product { try await inner.create(product, now: now) }
    func update(id: Int64, _ update: ProductUpdate, now: Date) async throws -> Product { try await inner.update(id: id, update, now: now) }
    func restock(id: Int64, qty: Int64, now: Date) async throws -> Product { try await inner.restock(id: id, qty: qty, now: now) }
    func insertIgnoringExisting(_ products: [NewProduct], now: Date) async throws -> Int {
        try await inner.insertIgnoringExisting(products, now: now)
    }
}
