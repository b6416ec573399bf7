import Foundation

/// The durable saga log, orders and the transactional outbox, all in the primary database.
/// Every mutating call is ONE local transaction.
public protocol SagaStore: Sendable {
    /// Inserts the saga in `STARTED` with its `SagaStarted` event, or returns the saga that already holds
    /// the idempotency key.
    func begin(_ saga: NewSaga, now: Date) async throws -> BeginResult

    /// Applies a guarded transition: only if the saga is in `transition.from`, in one transaction it performs the
    /// effect, moves the state, renews the lease for `owner`, appends the timeline entry and the outbox events.
    func apply(_ transition: SagaTransition, sagaId: UUID, owner: String, now: Date, leaseUntil: Date) async throws -> TransitionResult

    func saga(id: UUID) async throws -> Saga?
    func saga(idempotencyKey: String) async throws -> Saga?
    func steps(sagaId: UUID) async throws -> [SagaStep]
    func order(id: Int64) async throws -> Order?

    /// Claims up to `limit` non-terminal sagas whose lease ended before `now`: owner and lease change,
    /// `attempts` goes up. Only sagas this call actually claimed are returned.
    func claimExpired(owner: String, now: Date, leaseUntil: Date, limit: Int) async throws -> [Saga]
    /// Extends the lease of the given sagas that `owner` still holds.
    func renewLeases(ids: [UUID], owner: String, until: Date) async throws
    /// Non-terminal sagas (for health and tests).
    func countUnfinished() async throws -> Int
}

/// Reading and marking the transactional outbox (used by relays and `storefront events`).
public protocol OutboxStore: Sendable {
    /// Unpublished records in id order.
    func unpublished(limit: Int) async throws -> [OutboxRecord]
    /// All records with `id > after`, in id order, optionally for one saga.
    func records(after: Int64, limit: Int, sagaId: UUID?) async throws -> [OutboxRecord]
    func markPublished(ids: [Int64], at: Date) async throws
}
