import Foundation

/// A row of the simulated provider's own ledger (`payments` table).
public struct PaymentRecord: Sendable, Equatable {
    public enum Status: String, Sendable, Codable {
        case charged = "CHARGED"
        case declined = "DECLINED"
        case refunded = "REFUNDED"
        case voided = "VOIDED"
    }

    public var idempotencyKey: String
    public var status: Status
    public var amountMinor: Int64
    public var currency: String
    public var reference: String
    public var reason: String?
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        idempotencyKey: String, status: Status, amountMinor: Int64, currency: String, reference: String,
        reason: String?, createdAt: Date, updatedAt: Date
    ) {
        self.idempotencyKey = idempotencyKey
        self.status = status
        self.amountMinor = amountMinor
        self.currency = currency
        self.reference = reference
        self.reason = reason
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// Storage for the simulated payment provider. Keys are unique.
public protocol PaymentLedger: Sendable {
    func payment(idempotencyKey: String) async throws -> PaymentRecord?
    /// Inserts the record unless the key exists; returns whichever record holds the key afterwards (times as
    /// stored: whole milliseconds), and whether it is the one inserted now.
    func insertIfAbsent(_ record: PaymentRecord) async throws -> (record: PaymentRecord, inserted: Bool)
    /// `CHARGED` → `REFUNDED`; returns the record as it is afterwards (nil if the key is unknown).
    func markRefunded(idempotencyKey: String, at: Date) async throws -> PaymentRecord?
    /// Sum of `CHARGED` amounts and count, for invariants and metrics.
    func chargedTotals() async throws -> (count: Int, amountMinor: Int64)
}
