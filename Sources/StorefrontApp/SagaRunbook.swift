import Foundation
import Logging
import StorefrontCore

/// `storefront sagas list|retry|resolve` (docs/saga.md "Sagas that need a person") on the database alone: the
/// app servers' recovery picks up a retried saga. (The app server's `/admin/sagas` does the same and also
/// refreshes its cached stock and product; here, a counter the action moved heals by itself — a refused
/// purchase marks its product — and a cached product page may show the old availability until it expires.)
public struct SagaRunbook: Sendable {
    let operations: SagaOperations

    public init(config: StorefrontConfig, database: StorefrontDatabase, logger: Logger) {
        let gateway = SimulatedPaymentGateway(ledger: database.payments, behavior: config.paymentBehavior, logger: logger)
        let orchestrator = SagaOrchestrator(store: database.sagas, gateway: gateway, owner: "operator@\(config.instanceID)",
                                            settings: config.sagaSettings, logger: logger)
        operations = SagaOperations(store: database.sagas, orchestrator: orchestrator)
    }

    /// Unfinished sagas, oldest first, one line each.
    public func list(needingAttention: Bool, limit: Int) async throws -> [String] {
        let now = Date()
        return try await operations.list(needingAttention: needingAttention, limit: limit).map { saga in
            [
                saga.id.uuidString, saga.state.rawValue, saga.needsAttention ? "NEEDS-ATTENTION" : "in-flight",
                "attempts=\(saga.attempts)", "owner=\(saga.fence)", "product=\(saga.productId)", "qty=\(saga.qty)",
                "age=\(Int(now.timeIntervalSince(saga.createdAt)))s",
                saga.lastError.map { "error=\($0.replacingOccurrences(of: "\n", with: " "))" } ?? "",
            ].filter { !$0.isEmpty }.joined(separator: "  ")
        }
    }

    /// Hands the saga back to the app servers' recovery now, with its attempts reset.
    public func retry(_ id: UUID, force: Bool = false) async throws -> String {
        let saga = try await operations.retry(id, force: force)
        return "saga \(id) at \(saga.state.rawValue) handed back to recovery (the next recovery pass takes it)"
    }

    /// Finishes the saga in this process, now (compensated before the payment pivot, confirmed after).
    public func resolve(_ id: UUID, force: Bool = false) async throws -> String {
        let done = try await operations.resolve(id, force: force)
        return "saga \(id) is \(done.state.rawValue)\(done.failureCode.map { " (\($0))" } ?? "")"
    }
}
