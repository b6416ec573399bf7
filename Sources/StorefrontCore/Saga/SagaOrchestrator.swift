import Foundation
import Logging
import Metrics
import Synchronization

/// Tuning of the saga engine.
public struct SagaSettings: Sendable {
    /// How long a saga's owner may go silent before another instance may claim it.
    public var leaseDuration: Duration
    /// Charge attempts (same idempotency key) before giving up and compensating.
    public var paymentAttempts: Int
    /// Attempts for a step that must not be abandoned (compensations, confirmation) before leaving it to recovery.
    public var stepAttempts: Int
    /// First retry delay; doubles per attempt.
    public var retryBackoff: Duration
    /// The longest one call to the payment provider may take; then it counts as a timeout (outcome unknown for
    /// a charge, resolved by asking about the key).
    public var providerTimeout: Duration
    /// A saga that has not reached the payment pivot this long after it started compensates instead
    /// (`deadline_exceeded`); charge attempts are cut to fit in it. Keep it below the product lock's TTL and the
    /// gateway's purchase timeout, so the request still holds its lock and is still awaited when it ends.
    public var deadline: Duration
    /// Recovery attempts (takeovers) before a saga is left to a person (`needsAttention`).
    public var maxRecoveryAttempts: Int
    /// First wait before recovery tries a saga again after a failed attempt; doubles per attempt (±20 %
    /// jitter) up to `recoveryBackoffCap`.
    public var recoveryBackoff: Duration
    public var recoveryBackoffCap: Duration

    public init(leaseDuration: Duration = .seconds(30), paymentAttempts: Int = 3, stepAttempts: Int = 5, retryBackoff: Duration = .milliseconds(20),
                providerTimeout: Duration = .seconds(5), deadline: Duration = .seconds(15), maxRecoveryAttempts: Int = 8,
                recoveryBackoff: Duration = .seconds(5), recoveryBackoffCap: Duration = .seconds(300)) {
        self.leaseDuration = leaseDuration
        self.paymentAttempts = max(paymentAttempts, 1)
        self.stepAttempts = max(stepAttempts, 1)
        self.retryBackoff = retryBackoff
        self.providerTimeout = providerTimeout
        self.deadline = deadline
        self.maxRecoveryAttempts = max(maxRecoveryAttempts, 1)
        self.recoveryBackoff = recoveryBackoff
        self.recoveryBackoffCap = max(recoveryBackoffCap, recoveryBackoff)
    }

    /// How long recovery waits before its next attempt at a saga that failed `attempts` times.
    public func recoveryDelay(afterAttempts attempts: Int) -> Duration {
        let doubled = recoveryBackoff * (1 << min(max(attempts - 1, 0), 20))
        return min(doubled, recoveryBackoffCap) * Double.random(in: 0.8...1.2)
    }
}

/// Drives purchase sagas to a terminal state: performs what `SagaPlan` says, applies guarded transitions
/// through the `SagaStore`, and compensates failures before the payment pivot.
public final class SagaOrchestrator: Sendable {
    public let owner: String
    public let settings: SagaSettings
    private let store: any SagaStore
    private let gateway: any PaymentGateway
    private let clock: WallClock
    private let logger: Logger
    private let finished = CounterFamily(label: "storefront_sagas_finished_total", dimensions: ["state", "reason"])
    private let ownershipLost = Counter(label: "storefront_saga_ownership_lost_total")
    private let active = Mutex<[UUID: Driving]>([:])

    /// A saga this instance is driving: the epoch it holds, and whether lease renewal found it taken over.
    private struct Driving {
        var epoch: Int
        var drivers = 1
        var lost = false
    }

    public init(
        store: any SagaStore, gateway: any PaymentGateway, owner: String, settings: SagaSettings = .init(),
        clock: WallClock = .system, logger: Logger = Logger(label: "storefront.saga")
    ) {
        self.store = store
        self.gateway = gateway
        self.owner = owner
        self.settings = settings
        self.clock = clock
        self.logger = logger
    }

    /// Sagas this instance is driving right now (their leases are renewed).
    public var activeSagas: [UUID] { active.withLock { Array($0.keys) } }

    /// Extends the leases of every saga this instance is driving, and stops driving those another instance
    /// has taken over (each stops before its next step). Returns how many were lost.
    @discardableResult
    public func renewLeases() async throws -> Int {
        let held = active.withLock { $0.filter { !$0.value.lost }.mapValues(\.epoch) }
        guard !held.isEmpty else { return 0 }
        let lost = try await store.renewLeases(held, owner: owner, lease: settings.leaseDuration)
        guard !lost.isEmpty else { return 0 }
        active.withLock { map in
            for id in lost where map[id]?.epoch == held[id] { map[id]?.lost = true }
        }
        for id in lost {
            logger.warning("lost ownership of saga (another instance took it over); stopping", metadata: ["saga": "\(id)", "epoch": "\(held[id] ?? 0)"])
        }
        return lost.count
    }

    /// Opens a saga for `order`, owned by this instance with a fresh lease, and drives it. A saga left to
    /// recovery past the pivot counts as run (recovery confirms it); before the pivot it throws
    /// `SagaLeftForRecovery`.
    public func start(_ order: SagaOrder) async throws -> SagaStart {
        let new = NewSaga(order: order, owner: owner, lease: settings.leaseDuration)
        // Opened, reserved and ordered in one transaction: everything before the payment call.
        let opened: BeginResult
        do {
            opened = try await store.begin(new, then: SagaPlan.chain(from: .started, .forward), now: clock.now())
        } catch {
            // The transaction may have committed before its answer was lost: then the saga is recovery's.
            if (try? await store.saga(id: new.id)) != nil { throw SagaLeftForRecovery(sagaId: new.id, reason: "\(error)") }
            throw error
        }
        switch opened {
        case .existing(let other):
            return .existing(other)
        case .created(let saga):
            do {
                return .ran(try await drive(saga))
            } catch {
                if let current = try? await store.saga(id: saga.id), current.state.isPastPivot {
                    return current.fence != saga.fence ? .takenOver(current) : .ran(current)
                }
                throw SagaLeftForRecovery(sagaId: saga.id, reason: "\(error)")
            }
        }
    }

    /// Renews `sagas`' leases from now on, until `release` (recovery holds a whole claimed batch while it drives
    /// them one by one, so those waiting their turn do not lapse).
    public func hold(_ sagas: [Saga]) {
        active.withLock { map in
            for saga in sagas {
                if map[saga.id]?.epoch == saga.epoch { map[saga.id]?.drivers += 1 } else { map[saga.id] = Driving(epoch: saga.epoch) }
            }
        }
    }

    /// Ends one `hold` (or one `drive`) of `saga`.
    public func release(_ saga: Saga) {
        active.withLock { map in
            guard map[saga.id]?.epoch == saga.epoch else { return }
            map[saga.id]?.drivers -= 1
            if map[saga.id]?.drivers == 0 { map[saga.id] = nil }
        }
    }

    /// Whether lease renewal found `saga` taken over by another instance.
    func isLost(_ id: UUID) -> Bool { active.withLock { $0[id]?.lost == true } }

    /// Drives `saga` (which this instance must own: `saga.fence`) until it is terminal. Throws if a step keeps
    /// failing (the saga is then left for recovery), and `SagaOwnershipLost` as soon as another instance has
    /// taken it over.
    @discardableResult
    public func drive(_ saga: Saga, direction initial: SagaDirection = .forward) async throws -> Saga {
        let fence = saga.fence
        let held = saga
        hold([held])
        defer { release(held) }
        var saga = saga
        var direction = initial
        while true {
            if direction == .forward, !saga.state.isPastPivot, !saga.state.isCompensating, !saga.state.isTerminal,
               clock.now() > saga.createdAt.adding(settings.deadline) {
                logger.warning("saga deadline passed before the payment pivot; compensating", metadata: ["saga": "\(saga.id)", "state": "\(saga.state.rawValue)"])
                direction = .compensate(code: .deadlineExceeded, reason: "not paid within \(settings.deadline) of the start")
            }
            let action = SagaPlan.next(saga.state, direction)
            do {
                if action != .finished, isLost(saga.id) {
                    throw SagaOwnershipLost(sagaId: saga.id, fence: fence, current: nil)
                }
                switch action {
                case .finished:
                    record(saga)
                    return saga
                case .apply:
                    saga = try await perform(SagaPlan.chain(from: saga.state, direction), on: saga)
                case .charge:
                    switch try await pay(saga) {
                    case .charged(let reference):
                        // The payment recorded and the order confirmed in one transaction.
                        saga = try await perform([SagaPlan.paymentSucceeded(reference: reference)] + SagaPlan.chain(from: .paid, direction), on: saga)
                    case .declined(let reason):
                        direction = .compensate(code: .paymentDeclined, reason: reason)
                    case .unavailable(let reason):
                        direction = .compensate(code: .paymentUnavailable, reason: reason)
                    }
                case .refund:
                    guard case .compensate(let code, let reason) = direction.orCompensating() else { continue }
                    let key = saga.id.uuidString
                    let refunded = try await retrying("refundPayment", saga) {
                        try await self.provider("refund") { try await self.gateway.refund(idempotencyKey: key) }
                    }
                    let reversed = SagaPlan.paymentReversed(refunded: refunded, code: code, reason: reason)
                    saga = try await perform([reversed] + SagaPlan.chain(from: reversed.to, .compensate(code: code, reason: reason)), on: saga)
                }
            } catch let lost as SagaOwnershipLost {
                ownershipLost.increment()
                logger.warning("saga taken over by another instance; this one stops driving it", metadata: [
                    "saga": "\(saga.id)", "state": "\(saga.state.rawValue)", "epoch": "\(fence.epoch)",
                    "now": "\(lost.current.map { "\($0.fence) at \($0.state.rawValue)" } ?? "unknown")"])
                throw lost
            } catch {
                // A forward step failed before the pivot: unwind. Past the pivot, or while unwinding, the
                // step was already retried; leave the saga to the recovery loop.
                if direction == .forward, !saga.state.isPastPivot, !saga.state.isCompensating {
                    logger.warning("saga step failed, compensating", metadata: ["saga": "\(saga.id)", "state": "\(saga.state.rawValue)", "error": "\(error)"])
                    direction = .compensate(code: .stepFailed, reason: "\(error)")
                    continue
                }
                logger.error("saga left for recovery", metadata: ["saga": "\(saga.id)", "state": "\(saga.state.rawValue)", "error": "\(error)"])
                throw error
            }
        }
    }

    /// Applies `chain` (consecutive transitions, see `SagaPlan.chain`) in one transaction.
    private func perform(_ chain: [SagaTransition], on saga: Saga) async throws -> Saga {
        guard let first = chain.first else { return saga }
        // Forward steps before the pivot fail fast (and compensate); everything else is retried.
        let mustFinish = chain.contains { $0.from.isPastPivot || $0.to.isPastPivot || $0.status != .done }
        let fence = saga.fence
        let steps = chain.map(\.step.rawValue).joined(separator: "+")
        let result = try await retrying(steps, saga, attempts: mustFinish ? settings.stepAttempts : 1) {
            // `saga` is what the previous transition wrote (or read): the store may guard with it instead of
            // reading the row first; a retry after an unknown outcome finds the saga moved and reads it.
            try await self.store.apply(chain, to: saga, lease: self.settings.leaseDuration, now: self.clock.now())
        }
        switch result {
        case .applied(let updated):
            logger.debug("saga step", metadata: ["saga": "\(saga.id)", "step": "\(steps)", "state": "\(updated.state.rawValue)"])
            return updated
        case .stale(let current):
            // A duplicate or late step: someone else already moved the saga. Continue from where it really is.
            guard current.state != first.from else {
                throw SagaStoreInconsistency(sagaId: saga.id, detail: "stale result but state unchanged")
            }
            logger.debug("saga step skipped (state moved)", metadata: ["saga": "\(saga.id)", "expected": "\(first.from.rawValue)", "actual": "\(current.state.rawValue)"])
            return current
        case .fenced(let current):
            throw SagaOwnershipLost(sagaId: saga.id, fence: fence, current: current)
        case .rejected(let current):
            guard first.effect == .reserveInventory, current.state == first.from else {
                throw SagaStoreInconsistency(sagaId: saga.id, detail: "\(steps) rejected")
            }
            return try await perform([SagaPlan.insufficientStock(available: nil)], on: current)
        }
    }

    private enum PaymentOutcome {
        case charged(String)
        case declined(String)
        case unavailable(String)
    }

    /// The pivot. Charges with the saga id as idempotency key; an unknown outcome is resolved by asking the
    /// provider about the same key, never by guessing.
    private func pay(_ saga: Saga) async throws -> PaymentOutcome {
        let key = saga.id.uuidString
        var lastProblem = "no attempt"
        let deadline = saga.createdAt.adding(settings.deadline)
        for attempt in 1...settings.paymentAttempts {
            if isLost(saga.id) { throw SagaOwnershipLost(sagaId: saga.id, fence: saga.fence, current: nil) }
            // Every attempt fits in what is left of the saga's deadline; none starts after it.
            let left = deadline.timeIntervalSince(clock.now())
            guard left > 0 else {
                lastProblem += "; deadline passed"
                break
            }
            let limit = min(settings.providerTimeout, .milliseconds(Int64(left * 1000)))
            do {
                let amount = saga.amountMinor, currency = saga.currency
                switch try await provider("charge", within: limit, { try await self.gateway.charge(idempotencyKey: key, amountMinor: amount, currency: currency) }) {
                case .charged(let reference): return .charged(reference)
                case .declined(let reason): return .declined(reason)
                }
            } catch PaymentError.timeout, is ProviderTimeout {
                lastProblem = "payment outcome unknown (timeout)"
                switch try? await provider("status", within: limit, { try await self.gateway.status(idempotencyKey: key) }) {
                case .charged(let reference): return .charged(reference)
                case .declined(let reason): return .declined(reason)
                case .refunded, .voided: return .declined("payment key was voided")
                case .unknown, nil: break
                }
            } catch PaymentError.unavailable(let message) {
                lastProblem = message
            } catch {
                lastProblem = "\(error)"
            }
            if attempt < settings.paymentAttempts { try await backoff(attempt) }
        }
        // Compensation refunds or voids the key, so whatever really happened, no money is kept.
        return .unavailable(lastProblem)
    }

    /// One call to the payment provider, bounded by `providerTimeout`: past it the caller stops waiting (the
    /// call is cancelled) and `ProviderTimeout` is thrown.
    private func provider<T: Sendable>(_ what: String, within limit: Duration? = nil, _ call: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withDeadline(limit ?? settings.providerTimeout, what: "payment provider \(what)", call)
    }

    private func retrying<T: Sendable>(_ what: String, _ saga: Saga, attempts: Int? = nil, _ body: @Sendable () async throws -> T) async throws -> T {
        let limit = attempts ?? settings.stepAttempts
        var attempt = 1
        while true {
            do {
                return try await body()
            } catch {
                guard attempt < limit else { throw error }
                logger.notice("saga step retry", metadata: ["saga": "\(saga.id)", "step": "\(what)", "attempt": "\(attempt)", "error": "\(error)"])
                try await backoff(attempt)
                attempt += 1
            }
        }
    }

    private func backoff(_ attempt: Int) async throws {
        try await Task.sleep(for: settings.retryBackoff * (1 << min(attempt - 1, 6)))
    }

    private func record(_ saga: Saga) {
        finished.increment(saga.state.rawValue, saga.failureCode?.rawValue ?? "none")
    }
}

/// Another instance took the saga over (its lease had expired): this instance must not write it again.
public struct SagaOwnershipLost: Error, Sendable, CustomStringConvertible {
    public var sagaId: UUID
    /// What this instance held.
    public var fence: SagaFence
    /// The saga as the store has it, when known.
    public var current: Saga?
    public var description: String {
        "saga \(sagaId): ownership lost (held \(fence)\(current.map { ", now \($0.fence) at \($0.state.rawValue)" } ?? ""))"
    }
}

/// A call did not answer within its deadline (it was cancelled).
public struct ProviderTimeout: Error, Sendable, CustomStringConvertible {
    public var what: String
    public var after: Duration
    public var description: String { "\(what) did not answer within \(after)" }
}

/// Runs `call` and waits at most `limit` for it. Past the limit the call is cancelled and `ProviderTimeout`
/// is thrown at once — without waiting for a call that ignores cancellation.
public func withDeadline<T: Sendable>(_ limit: Duration, what: String, _ call: @escaping @Sendable () async throws -> T) async throws -> T {
    let race = DeadlineRace<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            guard race.start(continuation) else { return }  // cancelled already: the call is never made
            let work = Task { race.finish(await Result(catching: call)) }
            let timer = Task {
                guard (try? await Task.sleep(for: limit)) != nil else { return }
                race.finish(.failure(ProviderTimeout(what: what, after: limit)))
            }
            race.track(work, timer)
        }
    } onCancel: {
        race.finish(.failure(CancellationError()))
    }
}

/// The first of a call, its timer and the caller's cancellation to finish resumes the caller; the others are
/// cancelled.
private final class DeadlineRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var tasks: [Task<Void, Never>] = []
        var done = false
    }

    private let state = Mutex(State())

    /// False when the caller was cancelled before it started (answered at once; nothing is to be run).
    func start(_ continuation: CheckedContinuation<T, any Error>) -> Bool {
        let cancelled = state.withLock { s -> Bool in
            if s.done { return true }
            s.continuation = continuation
            return false
        }
        if cancelled { continuation.resume(throwing: CancellationError()) }
        return !cancelled
    }

    func track(_ tasks: Task<Void, Never>...) {
        let cancel = state.withLock { s -> Bool in
            if s.done { return true }
            s.tasks += tasks
            return false
        }
        if cancel { tasks.forEach { $0.cancel() } }
    }

    func finish(_ result: Result<T, any Error>) {
        let (continuation, tasks) = state.withLock { s -> (CheckedContinuation<T, any Error>?, [Task<Void, Never>]) in
            guard !s.done, let continuation = s.continuation else {
                if s.continuation == nil { s.done = true }
                return (nil, [])
            }
            s.done = true
            s.continuation = nil
            defer { s.tasks = [] }
            return (continuation, s.tasks)
        }
        tasks.forEach { $0.cancel() }
        continuation?.resume(with: result)
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}

/// A store answered something impossible for the state machine (a bug, reported loudly).
public struct SagaStoreInconsistency: Error, Sendable, CustomStringConvertible {
    public var sagaId: UUID
    public var detail: String
    public init(sagaId: UUID, detail: String) {
        self.sagaId = sagaId
        self.detail = detail
    }
    public var description: String { "saga \(sagaId): \(detail)" }
}

extension SagaDirection {
    /// A forward direction met in a compensating state means resumed compensation.
    func orCompensating() -> SagaDirection {
        if case .forward = self { return .compensate(code: .compensated, reason: "resumed compensation") }
        return self
    }
}
