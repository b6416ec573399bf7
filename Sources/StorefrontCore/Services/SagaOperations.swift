import Foundation

/// What an operator does with unfinished sagas, and above all with those recovery gave up on
/// (`needsAttention`): list them, hand one back to recovery, or finish one now. Used by
/// `GET|POST /admin/sagas…` (in the app server, which also refreshes its cached stock and product) and by
/// `storefront sagas` (on the database alone).
public struct SagaOperations: Sendable {
    let store: any SagaStore
    let orchestrator: SagaOrchestrator
    let stock: (any StockGuard)?

    public init(store: any SagaStore, orchestrator: SagaOrchestrator, stock: (any StockGuard)? = nil) {
        self.store = store
        self.orchestrator = orchestrator
        self.stock = stock
    }

    /// Unfinished sagas, oldest first (only those left to a person when `needingAttention`).
    public func list(needingAttention: Bool, limit: Int) async throws -> [Saga] {
        try await store.unfinished(needingAttention: needingAttention, limit: limit)
    }

    /// Hands the saga back to recovery now, its attempts reset.
    public func retry(_ id: UUID) async throws -> Saga {
        guard let saga = try await store.retry(sagaId: id, now: Date()) else { throw StorefrontError.sagaNotFound(id) }
        return saga
    }

    /// Finishes the saga here, now: before the payment pivot it is compensated (refund or void, cancel,
    /// release — its recorded reason kept, else `resolved_by_operator`), past it it is confirmed. If that fails
    /// again it is flagged for attention again and the error is thrown.
    public func resolve(_ id: UUID) async throws -> Saga {
        guard let saga = try await store.take(sagaId: id, owner: orchestrator.owner, lease: orchestrator.settings.leaseDuration, now: Date())
        else { throw StorefrontError.sagaNotFound(id) }
        let direction: SagaDirection = saga.state.isPastPivot
            ? .forward : .compensate(code: saga.failureCode ?? .resolvedByOperator, reason: "resolved by an operator")
        do {
            let done = try await orchestrator.drive(saga, direction: direction)
            await stock?.afterRecovery(done)
            return done
        } catch {
            if let current = try? await store.saga(id: id), !current.state.isTerminal {
                _ = try? await store.flagForAttention(sagaId: id, fence: current.fence, error: "\(error)", now: Date())
            }
            throw StorefrontError.unavailable("saga \(id): resolving failed again (\(error)); it still needs attention", retryAfterSeconds: 5)
        }
    }
}
