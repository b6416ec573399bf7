import Foundation

/// The durable saga log, orders and the transactional outbox, all in the primary database.
/// Every mutating call is ONE local transaction.
///
/// Leases are judged by the store's own clock (the database's), never by an app server's: a lease is given
/// as a duration from the store's now. The `now` arguments only stamp rows (timeline, `updated_at`).
public protocol SagaStore: Sendable {
    /// Inserts the saga in `STARTED` with its `SagaStarted` event, or returns the saga that already holds
    /// the idempotency key. When `chain` is not empty its transitions are applied in the same transaction (the
    /// first must leave `STARTED`); if one of them is refused (a reservation finds too little stock), the saga
    /// is opened already `FAILED` (`insufficient_stock`, `SagaPlan.insufficientStock`) with none of them.
    func begin(_ saga: NewSaga, then chain: [SagaTransition], now: Date) async throws -> BeginResult

    /// Applies consecutive guarded transitions in ONE transaction: only if `fence` still owns the saga (else
    /// `.fenced`) and the saga is in `chain[0].from` (else `.stale`), it performs each effect, moves the state
    /// through each `to`, renews the lease, appends each timeline entry and outbox event. All or nothing: if
    /// any effect is refused the result is `.rejected` and nothing is written. Each transition's `from` is the
    /// previous one's `to`.
    func apply(_ chain: [SagaTransition], sagaId: UUID, fence: SagaFence, lease: Duration, now: Date) async throws -> TransitionResult

    /// `apply` by a caller that holds the saga as its last transition left it (`expected`, whose fence is the
    /// caller's): the same answers, but a store may skip reading and locking the saga first and instead guard
    /// its update with what it expects (state, fence and event sequence), falling back to `apply` when the
    /// saga moved.
    func apply(_ chain: [SagaTransition], to expected: Saga, lease: Duration, now: Date) async throws -> TransitionResult

    func saga(id: UUID) async throws -> Saga?
    func saga(idempotencyKey: String) async throws -> Saga?
    func steps(sagaId: UUID) async throws -> [SagaStep]
    func order(id: Int64) async throws -> Order?

    /// Claims up to `limit` non-terminal sagas whose lease has ended and that do not need attention: owner and lease change, `epoch` and
    /// `attempts` go up. Only sagas this call actually claimed are returned.
    func claimExpired(owner: String, lease: Duration, limit: Int, now: Date) async throws -> [Saga]
    /// Extends the leases of the sagas `owner` holds at the given epochs, and returns those it no longer holds
    /// (another instance took them over).
    func renewLeases(_ held: [UUID: Int], owner: String, lease: Duration) async throws -> Set<UUID>
    /// Non-terminal sagas (for health and tests).
    func countUnfinished() async throws -> Int

    /// Recovery's attempt failed: if `fence` still owns the saga, it may be claimed again only after `delay`
    /// (by the store's clock), and `error` is recorded. Returns whether it was written.
    func postpone(sagaId: UUID, fence: SagaFence, delay: Duration, error: String, now: Date) async throws -> Bool
    /// Recovery gave up: if `fence` still owns the saga, it is flagged `needsAttention` (never claimed until an
    /// operator acts) with `error` recorded. Returns whether it was written.
    func flagForAttention(sagaId: UUID, fence: SagaFence, error: String, now: Date) async throws -> Bool
    /// Unfinished sagas, oldest first — only those that need attention when `needingAttention`.
    func unfinished(needingAttention: Bool, limit: Int) async throws -> [Saga]
    /// Operator: hands an unfinished saga back to recovery now (attention flag cleared, attempts reset) — only
    /// one that needs attention or whose lease expired, unless `force`. Nil when there is no such saga.
    func retry(sagaId: UUID, force: Bool, now: Date) async throws -> Saga?
    /// Operator: takes an unfinished saga over now (`epoch` + 1, attention flag cleared) to drive it by hand —
    /// only one that needs attention or whose lease expired, unless `force` (then a live owner is fenced).
    /// Nil when there is no such saga.
    func take(sagaId: UUID, owner: String, lease: Duration, force: Bool, now: Date) async throws -> Saga?
}

extension SagaStore {
    /// Opens the saga in `STARTED` alone.
    public func begin(_ saga: NewSaga, now: Date) async throws -> BeginResult { try await begin(saga, then: [], now: now) }

    public func apply(_ chain: [SagaTransition], to expected: Saga, lease: Duration, now: Date) async throws -> TransitionResult {
        try await apply(chain, sagaId: expected.id, fence: expected.fence, lease: lease, now: now)
    }

    /// Applies one guarded transition in its own transaction.
    public func apply(_ transition: SagaTransition, sagaId: UUID, fence: SagaFence, lease: Duration, now: Date) async throws -> TransitionResult {
        try await apply([transition], sagaId: sagaId, fence: fence, lease: lease, now: now)
    }
}

/// What a purchase reads before it starts: the product as the primary has it (its price sets the order's
/// amount) and the saga that already holds the request's Idempotency-Key, if any — from one database call
/// where the store can (one trip to the database's thread and back instead of two, per purchase).
public protocol PurchaseLookup: Sendable {
    func purchaseLookup(productId: Int64, idempotencyKey: String?) async throws -> (product: Product?, existing: Saga?)
}

/// Reading and marking the transactional outbox (used by relays and `storefront events`).
public protocol OutboxStore: Sendable {
    /// Unpublished records in id order.
    func unpublished(limit: Int) async throws -> [OutboxRecord]
    /// All records with `id > after`, in id order, optionally for one saga.
    func records(after: Int64, limit: Int, sagaId: UUID?) async throws -> [OutboxRecord]
    func markPublished(ids: [Int64], at: Date) async throws
    /// Records waiting to be published, counted up to `cap`, and when the oldest of them was written.
    func backlog(cap: Int) async throws -> OutboxBacklog
    /// The relay's lease, shared by every app server on this outbox: true when `owner` holds it for `lease` from
    /// now — taken while free, renewed while held, or taken over once the holder let it lapse (a server that
    /// died or stopped renewing). One server relays at a time; the others stand by.
    func claimRelay(owner: String, lease: Duration) async throws -> Bool
    /// Gives the lease up (graceful shutdown), so that a standing-by server takes over at its next try.
    func releaseRelay(owner: String) async throws
}

/// The outbox's unpublished records: the operations console's backlog figure.
public struct OutboxBacklog: Sendable, Equatable {
    /// Unpublished records, at most the `cap` asked for.
    public var count: Int
    public var oldestCreatedAt: Date?
    /// The newest record's id, published or not (where a live tail of events starts).
    public var latestId: Int64?

    public init(count: Int, oldestCreatedAt: Date?, latestId: Int64?) {
        self.count = count
        self.oldestCreatedAt = oldestCreatedAt
        self.latestId = latestId
    }
}

extension OutboxStore {
    /// An outbox of one process (in memory): its relay is alone, the lease always held.
    public func claimRelay(owner: String, lease: Duration) async throws -> Bool { true }
    public func releaseRelay(owner: String) async throws {}

    /// From `unpublished` (reads the records; the SQL stores count instead).
    public func backlog(cap: Int) async throws -> OutboxBacklog {
        let records = try await unpublished(limit: cap)
        let latest = try await self.records(after: 0, limit: Int.max, sagaId: nil).last?.id
        return OutboxBacklog(count: records.count, oldestCreatedAt: records.first?.createdAt, latestId: latest)
    }
}
