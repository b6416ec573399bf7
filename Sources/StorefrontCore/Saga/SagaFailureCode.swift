/// Why a saga failed or was compensated (`sagas.failure_code`, the `failureCode` of the order API). The
/// purchase answer depends on it: `insufficientStock` → 409, `paymentDeclined` → 402, `paymentUnavailable` →
/// 503. Stored as text, so a code written by a newer version still reads back.
public struct SagaFailureCode: RawRepresentable, Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    public let rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { rawValue = value }
    public var description: String { rawValue }

    /// The reservation found too little stock (nothing to undo).
    public static let insufficientStock: Self = "insufficient_stock"
    /// The provider declined the charge.
    public static let paymentDeclined: Self = "payment_declined"
    /// The provider could not be reached for a definite answer (the key was then refunded or voided).
    public static let paymentUnavailable: Self = "payment_unavailable"
    /// A forward step before the pivot kept failing.
    public static let stepFailed: Self = "step_failed"
    /// Recovery compensated a saga whose owner's lease expired before the pivot.
    public static let recovered: Self = "recovered"
    /// A compensation resumed without its original reason.
    public static let compensated: Self = "compensated"
    /// The saga had not reached the payment pivot within its deadline.
    public static let deadlineExceeded: Self = "deadline_exceeded"
    /// An operator told a saga that needed attention to compensate (`storefront sagas resolve`).
    public static let resolvedByOperator: Self = "resolved_by_operator"
}
