import Foundation

/// How a purchase mode guards stock around the saga — the one seam between the two modes:
///
/// - `LockStockGuard` (the seed's flow): `enter` takes the product's lock, `claim` checks the cached counter,
///   `settle` decrements it after a confirmed saga, `leave` releases the lock.
/// - `AtomicStockGuard` (flash sale): `enter` admits everyone, `claim` reserves units from the counter
///   atomically, `settle` gives them back after a failed saga.
///
/// Safety never depends on a guard: the database's conditional reserve is what prevents an oversell. A guard
/// keeps the fast answers fast (busy, sold out) and the cached counter close to the truth. Failures of the
/// lock or counter become `StorefrontError.unavailable` (503 + Retry-After) before anything is written.
public protocol StockGuard: Sendable {
    /// Before the product is read: nil when the product is busy (another purchase holds it).
    func enter(productId: Int64) async throws -> StockPass?
    /// Takes `qty` units from the cached counter's point of view; throws `StorefrontError.insufficientStock`.
    func claim(_ pass: StockPass, qty: Int64) async throws
    /// After the saga: brings the counter in line with what happened and drops the cached product.
    func settle(_ pass: StockPass, qty: Int64, _ outcome: StockSettlement) async
    /// Gives up what `enter` took (the lock). Called exactly once per pass, whatever happened.
    func leave(_ pass: StockPass) async
    /// A saga finished by recovery (its purchase long gone): counter and cached product may be off, so both
    /// are rebuilt from the database on next use.
    func afterRecovery(_ saga: Saga) async
}

/// Admission of one purchase to a product (the lock token in lock mode).
public struct StockPass: Sendable, Equatable {
    public var productId: Int64
    public var token: String?

    public init(productId: Int64, token: String? = nil) {
        self.productId = productId
        self.token = token
    }
}

/// What happened to the units a purchase claimed.
public enum StockSettlement: Sendable, Equatable {
    /// The purchase's saga ran: terminal, or past the pivot and left to recovery (it will confirm).
    case ran(Saga)
    /// Another request with the same idempotency key had already opened a saga: this one never started.
    case notStarted
    /// Unknown: the saga could not be opened or was left to recovery before the pivot.
    case unknown
}
