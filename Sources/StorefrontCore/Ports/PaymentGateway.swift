import Foundation

/// Result of a charge the provider answered.
public enum ChargeResult: Sendable, Equatable {
    case charged(reference: String)
    case declined(reason: String)
}

/// What the provider knows about an idempotency key.
public enum PaymentStatus: Sendable, Equatable {
    case charged(reference: String)
    case declined(reason: String)
    case refunded(reference: String)
    /// Voided before any charge: later charges with this key are declined.
    case voided
    case unknown
}

/// Failures where the provider did not give a definite answer.
public enum PaymentError: Error, Sendable, Equatable {
    /// Nothing was charged; safe to retry.
    case unavailable(String)
    /// The outcome is unknown (the request may or may not have charged); resolve by querying the same key.
    case timeout
}

/// A payment provider. Every call is idempotent on `idempotencyKey` (the saga id).
public protocol PaymentGateway: Sendable {
    func charge(idempotencyKey: String, amountMinor: Int64, currency: String) async throws -> ChargeResult
    func status(idempotencyKey: String) async throws -> PaymentStatus
    /// Refunds a charge, or voids the key if nothing was charged so that a late charge cannot succeed.
    /// Returns true when money was actually refunded.
    func refund(idempotencyKey: String) async throws -> Bool
}
