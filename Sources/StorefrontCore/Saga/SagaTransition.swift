import Foundation

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
    public var failureCode: SagaFailureCode?
    public var detail: String?

    public init(
        step: SagaStepName, from: SagaState, to: SagaState, effect: SagaEffect, status: SagaStepStatus = .done,
        events: [SagaEventType], failureCode: SagaFailureCode? = nil, detail: String? = nil
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
    /// The caller no longer owns the saga (another instance took it over); nothing written.
    case fenced(Saga)
    /// The effect's condition failed (e.g. not enough stock); nothing written.
    case rejected(Saga)
}
