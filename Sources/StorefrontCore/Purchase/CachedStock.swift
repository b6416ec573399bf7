import Foundation
import Logging

/// The cached stock counter and product cache as both stock guards use them: filled from the primary,
/// corrected from it, and updated best-effort (a failed update is left to reconciliation).
struct CachedStock: Sendable {
    let products: any ProductStore
    let counter: any StockCounter
    let cache: any ProductCache
    let retryAfterSeconds: Int
    let logger: Logger

    /// The counter, filled from the primary on a miss.
    func value(_ productId: Int64) async throws -> Int64 {
        if let value = try await counter.get(productId: productId) { return value }
        try await fill(productId)
        return try await counter.get(productId: productId) ?? 0
    }

    /// First fill of a missing counter from the database; concurrent fillers cannot overwrite each other
    /// (or reservations made in between).
    func fill(_ productId: Int64) async throws {
        try await counter.setIfAbsent(productId: productId, value: try await available(productId))
    }

    /// Brings the counter to the database's `stock` (units left for sale): fills a missing one, and corrects a wrong one
    /// with compare-and-set, so that a reservation, give-back or `forget` made after the counter was read wins
    /// over this correction (the counter is read before the database). Returns the change, if it made one.
    @discardableResult
    func correct(_ productId: Int64) async throws -> (was: Int64, now: Int64)? {
        let cached = try await counter.get(productId: productId)
        let truth = try await available(productId)
        guard let cached else {
            try await counter.setIfAbsent(productId: productId, value: truth)
            return nil
        }
        guard cached != truth, try await counter.compareAndSet(productId: productId, expected: cached, value: truth) else { return nil }
        logger.notice("stock counter corrected", metadata: ["product": "\(productId)", "was": "\(cached)", "now": "\(truth)"])
        return (cached, truth)
    }

    private func available(_ productId: Int64) async throws -> Int64 {
        guard let product = try await products.product(id: productId, consistency: .primary) else {
            throw StorefrontError.productNotFound(productId)
        }
        return product.available
    }

    /// Forgets the counter and the cached product (after recovery): both are rebuilt on next use.
    func forget(_ productId: Int64) async {
        await quietly { try await counter.forget(productId: productId) }
        await invalidate(productId)
    }

    func invalidate(_ productId: Int64) async {
        await quietly { try await cache.invalidate(id: productId) }
    }

    /// Runs a call to the lock or counter; if that dependency fails, the purchase is refused with 503 +
    /// Retry-After before anything is written (never an oversell, never a hang).
    func dependency<T: Sendable>(_ name: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as StorefrontError {
            throw error
        } catch {
            logger.warning("purchase refused: dependency unavailable", metadata: ["dependency": "\(name)", "error": "\(error)"])
            throw StorefrontError.unavailable(name, retryAfterSeconds: retryAfterSeconds)
        }
    }

    func quietly(_ body: () async throws -> Void) async {
        do { try await body() } catch { logger.warning("cache/counter update failed; it will be reconciled", metadata: ["error": "\(error)"]) }
    }
}
