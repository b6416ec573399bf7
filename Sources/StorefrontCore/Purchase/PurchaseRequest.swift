import Foundation

/// A validated purchase request.
public struct PurchaseRequest: Sendable, Equatable {
    public var productId: Int64
    public var qty: Int64
    public var idempotencyKey: String?

    public init(productId: Int64, qty: Int64, idempotencyKey: String? = nil) {
        self.productId = productId
        self.qty = qty
        self.idempotencyKey = idempotencyKey
    }
}

/// What a purchase produced: the saga (CONFIRMED, or still running past the pivot) and whether this answer
/// replays an earlier request with the same idempotency key.
public struct PurchaseResult: Sendable, Equatable {
    public var saga: Saga
    public var replayed: Bool
}
