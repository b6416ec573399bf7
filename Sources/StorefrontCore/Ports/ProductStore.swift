import Foundation

/// Where reads go: a replica may lag; the primary is always fresh.
public enum ReadConsistency: Sendable {
    /// A replica is fine (product views, lists).
    case replica
    /// Must see the latest committed write (purchases, critical reads).
    case primary
}

/// The catalogue in the database.
public protocol ProductStore: Sendable {
    func product(id: Int64, consistency: ReadConsistency) async throws -> Product?
    /// Units held by the product's sagas in flight (reserved, not yet sold or given back), on the primary.
    func unitsHeld(productId: Int64) async throws -> Int64
    /// Products with `id > after`, ordered by id, at most `limit`.
    func products(after: Int64?, limit: Int, consistency: ReadConsistency) async throws -> ProductPage
    /// Throws `StorefrontError.skuConflict` when the SKU exists.
    func create(_ product: NewProduct, now: Date) async throws -> Product
    /// Throws `StorefrontError.productNotFound` / `.skuConflict`.
    func update(id: Int64, _ update: ProductUpdate, now: Date) async throws -> Product
    /// Adds `qty` units of stock. Throws `StorefrontError.productNotFound`.
    func restock(id: Int64, qty: Int64, now: Date) async throws -> Product
    /// Inserts the products whose SKU does not exist yet, in one transaction; existing SKUs are left as they
    /// are. Returns how many were inserted.
    func insertIgnoringExisting(_ products: [NewProduct], now: Date) async throws -> Int
}
