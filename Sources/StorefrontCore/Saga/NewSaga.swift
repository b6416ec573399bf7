import Foundation

/// What is needed to open a saga: its terms, and the instance that owns it for `lease` (by the store's clock).
public struct NewSaga: Sendable, Equatable {
    public var id: UUID
    public var order: SagaOrder
    public var owner: String
    public var lease: Duration

    public init(id: UUID = .timeOrdered(), order: SagaOrder, owner: String, lease: Duration) {
        self.id = id
        self.order = order
        self.owner = owner
        self.lease = lease
    }

    public init(
        id: UUID = .timeOrdered(), idempotencyKey: String?, productId: Int64, qty: Int64, amountMinor: Int64, currency: String,
        mode: PurchaseMode, owner: String, lease: Duration
    ) {
        self.init(id: id, order: SagaOrder(idempotencyKey: idempotencyKey, productId: productId, qty: qty, amountMinor: amountMinor,
                                           currency: currency, mode: mode),
                  owner: owner, lease: lease)
    }

    public var idempotencyKey: String? { order.idempotencyKey }
    public var productId: Int64 { order.productId }
    public var qty: Int64 { order.qty }
    public var amountMinor: Int64 { order.amountMinor }
    public var currency: String { order.currency }
    public var mode: PurchaseMode { order.mode }
}

/// Result of opening a saga with an idempotency key.
public enum BeginResult: Sendable, Equatable {
    case created(Saga)
    /// A saga with the same idempotency key already exists.
    case existing(Saga)
}
