import Foundation

/// The database side of a transition, applied by the store in the same transaction as the state change.
public enum SagaEffect: Sendable, Equatable {
    case none
    /// `stock −= qty` only where `stock ≥ qty` (the units are then held by the saga); otherwise the transition
    /// is rejected. The only write to the product row on the way to a confirmed order.
    case reserveInventory
    /// Insert the order `PENDING` and remember its id on the saga.
    case createOrder
    /// Remember the payment provider's reference.
    case recordPayment(reference: String)
    /// Order `CONFIRMED` (the held units are sold; the product row is not touched).
    case confirmOrder
    /// Order `CANCELLED`.
    case cancelOrder
    /// `stock += qty`: the held units go back on sale.
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
    /// An effect's condition failed (e.g. not enough stock); nothing written. The saga as it was.
    case rejected(Saga)
}
