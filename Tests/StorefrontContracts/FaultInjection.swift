import Foundation
import StorefrontCore
import Synchronization

/// The sagas one simulated process "died" in. A real crash stops a process from writing anything more for
/// the saga it was driving; here, every later call for such a saga through this process's ports throws
/// `SimulatedCrash`, so the database keeps exactly the state the crash left, for another instance to recover.
/// Production code never sees this type: it only sees ports that fail.
public final class CrashedSagas: Sendable {
    private let sagas = Mutex<[UUID: SimulatedCrash]>([:])

    public init() {}

    func check(_ id: UUID) throws {
        if let crash = sagas.withLock({ $0[id] }) { throw crash }
    }

    func check(key: String) throws {
        if let id = UUID(uuidString: key) { try check(id) }
    }

    /// Runs the injector's check for `point`; a crash marks `id` dead before it is rethrown.
    func at(_ point: SagaFaultPoint, saga id: UUID, _ faults: any SagaFaultInjector) async throws {
        do {
            try await faults.check(point)
        } catch let crash as SimulatedCrash {
            sagas.withLock { $0[id] = crash }
            throw crash
        }
    }

    func isDead(_ id: UUID) -> Bool { sagas.withLock { $0[id] != nil } }
}

/// A `SagaStore` (and outbox) that runs the fault points of every transition around the real store:
/// `.before(step)` before the transaction, `.after(step)` once it committed.
public struct FaultInjectingSagaStore: SagaStore, OutboxStore {
    let inner: any SagaStore & OutboxStore
    let faults: any SagaFaultInjector
    let crashed: CrashedSagas

    public init(_ inner: any SagaStore & OutboxStore, faults: any SagaFaultInjector, crashed: CrashedSagas) {
        self.inner = inner
        self.faults = faults
        self.crashed = crashed
    }

    /// The payment steps' `before` points are at the gateway (before the provider is called), and the
    /// failed reservation has no point of its own.
    static func hasBeforePoint(_ t: SagaTransition) -> Bool {
        switch t.step {
        case .processPayment, .refundPayment: false
        case .reserveInventory: t.status == .done
        default: true
        }
    }

    /// Chained steps share one transaction: their `.before` points all run before it (a fault at any of them
    /// leaves nothing written), their `.after` points once it committed.
    public func begin(_ saga: NewSaga, then chain: [SagaTransition], now: Date) async throws -> BeginResult {
        for t in chain where Self.hasBeforePoint(t) { try await crashed.at(.before(t.step), saga: saga.id, faults) }
        let result = try await inner.begin(saga, then: chain, now: now)
        if case .created(let opened) = result {
            for t in chain where opened.state != .started { try await crashed.at(.after(t.step), saga: saga.id, faults) }
        }
        return result
    }

    public func apply(_ chain: [SagaTransition], sagaId: UUID, fence: SagaFence, lease: Duration, now: Date) async throws -> TransitionResult {
        try crashed.check(sagaId)
        for t in chain where Self.hasBeforePoint(t) { try await crashed.at(.before(t.step), saga: sagaId, faults) }
        let result = try await inner.apply(chain, sagaId: sagaId, fence: fence, lease: lease, now: now)
        if case .applied = result {
            for t in chain { try await crashed.at(.after(t.step), saga: sagaId, faults) }
        }
        return result
    }

    /// The same fault points on the path that guards with the caller's copy (the orchestrator's).
    public func apply(_ chain: [SagaTransition], to expected: Saga, lease: Duration, now: Date) async throws -> TransitionResult {
        try crashed.check(expected.id)
        for t in chain where Self.hasBeforePoint(t) { try await crashed.at(.before(t.step), saga: expected.id, faults) }
        let result = try await inner.apply(chain, to: expected, lease: lease, now: now)
        if case .applied = result {
            for t in chain { try await crashed.at(.after(t.step), saga: expected.id, faults) }
        }
        return result
    }

    public func saga(id: UUID) async throws -> Saga? {
        try crashed.check(id)
        return try await inner.saga(id: id)
    }

    public func saga(idempotencyKey: String) async throws -> Saga? { try await inner.saga(idempotencyKey: idempotencyKey) }
    public func steps(sagaId: UUID) async throws -> [SagaStep] { try await inner.steps(sagaId: sagaId) }
    public func order(id: Int64) async throws -> Order? { try await inner.order(id: id) }

    public func claimExpired(owner: String, lease: Duration, limit: Int, now: Date) async throws -> [Saga] {
        try await inner.claimExpired(owner: owner, lease: lease, limit: limit, now: now)
    }

    /// A dead process renews nothing.
    public func renewLeases(_ held: [UUID: Int], owner: String, lease: Duration) async throws -> Set<UUID> {
        try await inner.renewLeases(held.filter { !crashed.isDead($0.key) }, owner: owner, lease: lease)
    }

    public func countUnfinished() async throws -> Int { try await inner.countUnfinished() }
    public func postpone(sagaId: UUID, fence: SagaFence, delay: Duration, error: String, now: Date) async throws -> Bool {
        try await inner.postpone(sagaId: sagaId, fence: fence, delay: delay, error: error, now: now)
    }
    public func flagForAttention(sagaId: UUID, fence: SagaFence, error: String, now: Date) async throws -> Bool {
        try await inner.flagForAttention(sagaId: sagaId, fence: fence, error: error, now: now)
    }
    public func unfinished(needingAttention: Bool, limit: Int) async throws -> [Saga] {
        try await inner.unfinished(needingAttention: needingAttention, limit: limit)
    }
    public func retry(sagaId: UUID, force: Bool, now: Date) async throws -> Saga? {
        try await inner.retry(sagaId: sagaId, force: force, now: now)
    }
    public func take(sagaId: UUID, owner: String, lease: Duration, force: Bool, now: Date) async throws -> Saga? {
        try await inner.take(sagaId: sagaId, owner: owner, lease: lease, force: force, now: now)
    }
    public func unpublished(limit: Int) async throws -> [OutboxRecord] { try await inner.unpublished(limit: limit) }
    public func backlog(cap: Int) async throws -> OutboxBacklog { try await inner.backlog(cap: cap) }
    public func records(after: Int64, limit: Int, sagaId: UUID?) async throws -> [OutboxRecord] {
        try await inner.records(after: after, limit: limit, sagaId: sagaId)
    }
    public func markPublished(ids: [Int64], at: Date) async throws { try await inner.markPublished(ids: ids, at: at) }
    public func claimRelay(owner: String, lease: Duration) async throws -> Bool { try await inner.claimRelay(owner: owner, lease: lease) }
    public func releaseRelay(owner: String) async throws { try await inner.releaseRelay(owner: owner) }
}

/// A `PaymentGateway` that runs `.before(.processPayment)` before a charge and `.before(.refundPayment)`
/// before a refund (the saga id is the payment's idempotency key).
public struct FaultInjectingPaymentGateway: PaymentGateway {
    let inner: any PaymentGateway
    let faults: any SagaFaultInjector
    let crashed: CrashedSagas

    public init(_ inner: any PaymentGateway, faults: any SagaFaultInjector, crashed: CrashedSagas) {
        self.inner = inner
        self.faults = faults
        self.crashed = crashed
    }

    private func point(_ point: SagaFaultPoint, key: String) async throws {
        try crashed.check(key: key)
        if let id = UUID(uuidString: key) { try await crashed.at(point, saga: id, faults) } else { try await faults.check(point) }
    }

    public func charge(idempotencyKey: String, amountMinor: Int64, currency: String) async throws -> ChargeResult {
        try await point(.before(.processPayment), key: idempotencyKey)
        return try await inner.charge(idempotencyKey: idempotencyKey, amountMinor: amountMinor, currency: currency)
    }

    public func status(idempotencyKey: String) async throws -> PaymentStatus {
        try crashed.check(key: idempotencyKey)
        return try await inner.status(idempotencyKey: idempotencyKey)
    }

    public func refund(idempotencyKey: String) async throws -> Bool {
        try await point(.before(.refundPayment), key: idempotencyKey)
        return try await inner.refund(idempotencyKey: idempotencyKey)
    }
}
