import Foundation

/// The purchase saga's states. Forward: STARTED → RESERVED → ORDER_CREATED → PAID → CONFIRMED.
/// Compensation (before the payment pivot): ORDER_CREATED → REFUNDING → PAYMENT_REVERSED → ORDER_CANCELLED →
/// COMPENSATED, or RESERVED → COMPENSATED. REFUNDING is written before the provider is asked to refund or void,
/// so no forward step (payment recorded, order confirmed) can be applied once a refund may have happened. A reservation that finds too little stock ends STARTED → FAILED.
public enum SagaState: String, Sendable, Codable, CaseIterable {
    case started = "STARTED"
    case reserved = "RESERVED"
    case orderCreated = "ORDER_CREATED"
    case paid = "PAID"
    case confirmed = "CONFIRMED"
    case refunding = "REFUNDING"
    case paymentReversed = "PAYMENT_REVERSED"
    case orderCancelled = "ORDER_CANCELLED"
    case compensated = "COMPENSATED"
    case failed = "FAILED"

    /// No further transition is possible.
    public var isTerminal: Bool { self == .confirmed || self == .compensated || self == .failed }

    /// Payment succeeded: from here the saga only moves forward.
    public var isPastPivot: Bool { self == .paid || self == .confirmed }

    /// Already unwinding: compensation is the only way on.
    public var isCompensating: Bool { self == .refunding || self == .paymentReversed || self == .orderCancelled }

    public static let terminal: [SagaState] = allCases.filter(\.isTerminal)
}
