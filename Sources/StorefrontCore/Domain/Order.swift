import Foundation

/// An order's lifecycle: created `PENDING` by the saga, then `CONFIRMED` or `CANCELLED`.
public enum OrderStatus: String, Sendable, Codable, CaseIterable {
    case pending = "PENDING"
    case confirmed = "CONFIRMED"
    case cancelled = "CANCELLED"
}

/// An order row, created by the purchase saga's second step.
public struct Order: Sendable, Equatable {
    public var id: Int64
    public var sagaId: UUID
    public var productId: Int64
    public var qty: Int64
    public var amountMinor: Int64
    public var currency: String
    public var status: OrderStatus
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        id: Int64, sagaId: UUID, productId: Int64, qty: Int64, amountMinor: Int64, currency: String,
        status: OrderStatus, createdAt: Date, updatedAt: Date
    ) {
        self.id = id
        self.sagaId = sagaId
        self.productId = productId
        self.qty = qty
        self.amountMinor = amountMinor
        self.currency = currency
        self.status = status
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}
