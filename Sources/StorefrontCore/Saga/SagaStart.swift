import Foundation

/// What `SagaOrchestrator.start` did.
public enum SagaStart: Sendable, Equatable {
    /// This order's saga ran: terminal, or past the pivot and left to recovery (which will confirm it).
    case ran(Saga)
    /// Another request with the same idempotency key already opened a saga; nothing was started.
    case existing(Saga)
    /// Another instance took this saga over (this one stalled past its lease) and drove it past the pivot:
    /// its outcome is known, but the counter bookkeeping is that instance's recovery's, not this request's.
    case takenOver(Saga)
}

/// The saga was left to recovery before the pivot: its outcome is not known yet.
public struct SagaLeftForRecovery: Error, Sendable, CustomStringConvertible {
    public var sagaId: UUID
    public var reason: String
    public var description: String { "saga \(sagaId) left for recovery: \(reason)" }
}
