import Foundation

/// The purchase saga's states. Forward: STARTED → RESERVED → ORDER_CREATED → PAID → CONFIRMED.
/// Compensation (before the payment pivot): ORDER_CREATED → PAYMENT_REVERSED → ORDER_CANCELLED → COMPENSATED,
/// or RESERVED → COMPENSATED. A reservation that finds too little stock ends STARTED → FAILED.
public enum SagaState: String, Sendable, Codable, CaseIterable {
    case started = "STARTED"
    case reserved = "RESERVED"
    case orderCreated = "ORDER_CREATED"
    case paid = "PAID"
    case confirmed = "CONFIRMED"
    case paymentReversed = "PAYMENT_REVERSED"
    case orderCancelled = "ORDER_CANCELLED"
    case compensated = "COMPENSATED"
    case failed = "FAILED"

    /// No further transition is possible.
    public var isTerminal: Bool { self == .confirmed || self == .compensated || self == .failed }

    /// Payment succeeded: from here the saga only moves forward.
    public var isPastPivot: Bool { self == .paid || self == .confirmed }

    /// Already unwinding: compensation is the only way on.
    public var isCompensating: Bool { self == .paymentReversed || self == .orderCancelled }

    public static let terminal: [SagaState] = allCases.filter(\.isTerminal)
}

/// How a purchase checks stock before the saga (DESIGN §3).
public enum PurchaseMode: String, Sendable, Codable, CaseIterable {
    /// The seed's flow: per-product lock, cached stock check, saga, decrement, release.
    case lock
    /// Flash-sale flow: atomic reserve on the stock counter, no lock; compensation gives it back.
    case atomic
}

/// Names of saga steps and compensations as they appear in the timeline.
public enum SagaStepName: String, Sendable, Codable, CaseIterable {
    case startSaga
    case reserveInventory
    case createOrder
    case processPayment
    case confirmOrder
    case refundPayment
    case cancelOrder
    case releaseInventory
    case failSaga
}

/// Outcome of one timeline entry.
public enum SagaStepStatus: String, Sendable, Codable {
    case done
    case failed
    case compensated
    case skipped
}

/// A purchase saga's durable record (the `sagas` row).
public struct Saga: Sendable, Equatable {
    public var id: UUID
    public var idempotencyKey: String?
    public var productId: Int64
    public var qty: Int64
    public var amountMinor: Int64
    public var currency: String
    public var mode: PurchaseMode
    public var state: SagaState
    public var orderId: Int64?
    public var paymentRef: String?
    public var attempts: Int
    public var owner: String
    public var leaseUntil: Date
    /// Machine-readable reason a saga failed or was compensated (`insufficient_stock`, `payment_declined`, …).
    public var failureCode: String?
    public var lastError: String?
    public var eventSequence: Int
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        id: UUID, idempotencyKey: String?, productId: Int64, qty: Int64, amountMinor: Int64, currency: String,
        mode: PurchaseMode, state: SagaState, orderId: Int64?, paymentRef: String?, attempts: Int, owner: String,
        leaseUntil: Date, failureCode: String?, lastError: String?, eventSequence: Int, createdAt: Date, updatedAt: Date
    ) {
        self.id = id
        self.idempotencyKey = idempotencyKey
        self.productId = productId
        self.qty = qty
        self.amountMinor = amountMinor
        self.currency = currency
        self.mode = mode
        self.state = state
        self.orderId = orderId
        self.paymentRef = paymentRef
        self.attempts = attempts
        self.owner = owner
        self.leaseUntil = leaseUntil
        self.failureCode = failureCode
        self.lastError = lastError
        self.eventSequence = eventSequence
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// What is needed to open a saga.
public struct NewSaga: Sendable, Equatable {
    public var id: UUID
    public var idempotencyKey: String?
    public var productId: Int64
    public var qty: Int64
    public var amountMinor: Int64
    public var currency: String
    public var mode: PurchaseMode
    public var owner: String
    public var leaseUntil: Date

    public init(
        id: UUID = UUID(), idempotencyKey: String?, productId: Int64, qty: Int64, amountMinor: Int64, currency: String,
        mode: PurchaseMode, owner: String, leaseUntil: Date
    ) {
        self.id = id
        self.idempotencyKey = idempotencyKey
        self.productId = productId
        self.qty = qty
        self.amountMinor = amountMinor
        self.currency = currency
        self.mode = mode
        self.owner = owner
        self.leaseUntil = leaseUntil
    }
}

/// One entry of a saga's timeline (the `saga_steps` rows).
public struct SagaStep: Sendable, Equatable {
    public var sequence: Int
    public var name: SagaStepName
    public var status: SagaStepStatus
    public var detail: String?
    public var at: Date

    public init(sequence: Int, name: SagaStepName, status: SagaStepStatus, detail: String?, at: Date) {
        self.sequence = sequence
        self.name = name
        self.status = status
        self.detail = detail
        self.at = at
    }
}

/// The database side of a transition, applied by the store in the same transaction as the state change.
public enum SagaEffect: Sendable, Equatable {
    case none
    /// `reserved += qty` only where `stock − reserved ≥ qty`; otherwise the transition is rejected.
    case reserveInventory
    /// Insert the order `PENDING` and remember its id on the saga.
    case createOrder
    /// Remember the payment provider's reference.
    case recordPayment(reference: String)
    /// Order `CONFIRMED`; `stock −= qty`, `reserved −= qty`.
    case confirmOrder
    /// Order `CANCELLED`.
    case cancelOrder
    /// `reserved −= qty`.
    case releaseInventory
}

/// One guarded state change: applied only if the saga is still in `from`, together with its effect,
/// its timeline entry and its outbox events, all in one local transaction.
public struct SagaTransition: Sendable, Equatable {
    public var step: SagaStepName
    public var from: SagaState
    public var to: SagaState
    public var effect: SagaEffect
    public var status: SagaStepStatus
    public var events: [SagaEventType]
    public var failureCode: String?
    public var detail: String?

    public init(
        step: SagaStepName, from: SagaState, to: SagaState, effect: SagaEffect, status: SagaStepStatus = .done,
        events: [SagaEventType], failureCode: String? = nil, detail: String? = nil
    ) {
        self.step = step
        self.from = from
        self.to = to
        self.effect = effect
        self.status = status
        self.events = events
        self.failureCode = failureCode
        self.detail = detail
    }
}

/// What a store reports after trying a transition.
public enum TransitionResult: Sendable, Equatable {
    /// Written; the saga as it now is.
    case applied(Saga)
    /// The saga was no longer in the expected state (a duplicate or late step); nothing written.
    case stale(Saga)
    /// The effect's condition failed (e.g. not enough stock); nothing written.
    case rejected(Saga)
}

/// Result of opening a saga with an idempotency key.
public enum BeginResult: Sendable, Equatable {
    case created(Saga)
    /// A saga with the same idempotency key already exists.
    case existing(Saga)
}
