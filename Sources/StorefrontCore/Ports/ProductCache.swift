import Foundation

/// What a cache lookup found.
public enum CacheLookup: Sendable, Equatable {
    case hit(Product)
    /// The product is known not to exist (negative entry).
    case absent
    case miss
}

/// Cache of product details (`product:{id}:details`), cache-aside.
public protocol ProductCache: Sendable {
    func get(id: Int64) async throws -> CacheLookup
    func put(_ product: Product, ttl: Duration) async throws
    /// Remembers that `id` does not exist, briefly.
    func putAbsent(id: Int64, ttl: Duration) async throws
    func invalidate(id: Int64) async throws
}

/// The per-product purchase lock (`lock:product:{id}`), owned by a random token.
public protocol ProductLock: Sendable {
    /// `SET key token NX PX ttl`: true if acquired.
    func acquire(productId: Int64, token: String, ttl: Duration) async throws -> Bool
    /// Deletes the lock only if `token` still owns it; false if it had expired or been taken over.
    @discardableResult func release(productId: Int64, token: String) async throws -> Bool
    /// Extends the lock only if `token` still owns it.
    func extend(productId: Int64, token: String, ttl: Duration) async throws -> Bool
}

/// The cached stock counter (`product:{id}:stock`). Never the source of truth: the database guards stock.
public protocol StockCounter: Sendable {
    /// Current value, or nil when the key is missing.
    func get(productId: Int64) async throws -> Int64?
    /// Sets the counter (reconciliation from the database).
    func set(productId: Int64, value: Int64) async throws
    /// Sets the counter only if the key is missing (first fill, so concurrent fillers cannot undo reservations).
    func setIfAbsent(productId: Int64, value: Int64) async throws
    /// Atomically: sets the counter to `value` only if it still holds `expected` (a correction that a concurrent
    /// reservation, give-back or `forget` made stale writes nothing). Returns whether it was set.
    func compareAndSet(productId: Int64, expected: Int64, value: Int64) async throws -> Bool
    /// Atomically: if the counter ≥ qty then decrement and return `.reserved`; missing key → `.missing`.
    func reserve(productId: Int64, qty: Int64) async throws -> CounterReservation
    /// Decrements unconditionally if the key exists (lock mode, after a confirmed saga).
    func decrement(productId: Int64, by qty: Int64) async throws
    /// Gives back units taken by `reserve` (compensation), if the key exists.
    func giveBack(productId: Int64, qty: Int64) async throws
    /// Drops the key so the next read reconciles from the database.
    func forget(productId: Int64) async throws
}

public enum CounterReservation: Sendable, Equatable {
    case reserved(remaining: Int64)
    case insufficient(available: Int64)
    case missing
}
