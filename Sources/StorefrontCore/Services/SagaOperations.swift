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

    /// Hands the saga back to recovery now, its attempts reset. Only a saga that needs attention or whose owner
    /// went silent, unless `force` (a saga a live server is driving is refused: `saga_in_flight`).
    public func retry(_ id: UUID, force: Bool = false) async throws -> Saga {
        guard let saga = try await store.retry(sagaId: id, force: force, now: Date()) else { throw try await refusal(id) }
        return saga
    }

    private func refusal(_ id: UUID) async throws -> StorefrontError {
        guard let saga = try await store.saga(id: id), !saga.state.isTerminal else { return .sagaNotFound(id) }
        return .sagaInFlight(id, owner: saga.owner)
    }

    /// Finishes the saga here, now (only one that needs attention or whose owner went silent, unless `force`): before the payment pivot it is compensated (refund or void, cancel,
    /// release — its recorded reason kept, else `resolved_by_operator`), past it it is confirmed. If that fails
    /// again it is flagged for attention again and the error is thrown.
    public func resolve(_ id: UUID, force: Bool = false) async throws -> Saga {
        guard let saga = try await store.take(sagaId: id, owner: orchestrator.owner, lease: orchestrator.settings.leaseDuration, force: force,
                                              now: Date())
        else { throw try await refusal(id) }
        let direction: SagaDirection = saga.state.isPastPivot
            ? .forward : .compensate(code: saga.failureCode ?? .resolvedByOperator, reason: "resolved by an operator")
        do {
            let done = try await orchestrator.drive(saga, direction: direction)
            await stock?.afterRecovery(done)
            return done
        } catch is SagaOwnershipLost {
            throw StorefrontError.sagaInFlight(id, owner: (try? await store.saga(id: id))?.owner ?? "another server")
        } catch {
            // Flagged again with this operator's own fence: if someone took it over meanwhile, theirs it stays.
            _ = try? await store.flagForAttention(sagaId: id, fence: saga.fence, error: "\(error)", now: Date())
            throw StorefrontError.unavailable("saga \(id): resolving failed again (\(error)); it still needs attention", retryAfterSeconds: 5)
        }
    }
}
