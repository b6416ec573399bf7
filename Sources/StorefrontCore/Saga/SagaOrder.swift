import Foundation

/// What a purchase asks the orchestrator to run: the saga's terms, without owner and lease (the orchestrator
/// that starts it owns it).
public struct SagaOrder: Sendable, Equatable {
    public var idempotencyKey: String?
    public var productId: Int64
    public var qty: Int64
    public var amountMinor: Int64
    public var currency: String
    public var mode: PurchaseMode

    public init(idempotencyKey: String?, productId: Int64, qty: Int64, amountMinor: Int64, currency: String, mode: PurchaseMode) {
        self.idempotencyKey = idempotencyKey
        self.productId = productId
        self.qty = qty
        self.amountMinor = amountMinor
        self.currency = currency
        self.mode = mode
    }
}
