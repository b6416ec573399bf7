import Foundation
import Logging
import StorefrontContracts
import StorefrontCore
import Testing

/// A saga store whose idempotency-key lookups miss until told otherwise: the window in which two requests
/// with the same key both pass the lookup and race to open the saga (the loser gets `.existing`).
final class RacingKeyLookups: SagaStore, Sendable {
    let inner: InMemoryStore
    init(_ inner: InMemoryStore) { self.inner = inner }
    func begin(_ saga: NewSaga, now: Date) async throws -> BeginResult { try await inner.begin(saga, now: now) }
    func apply(_ t: SagaTransition, sagaId: UUID, owner: String, now: Date, leaseUntil: Date) async throws -> TransitionResult {
        try await inner.apply(t, sagaId: sagaId, owner: owner, now: now, leaseUntil: leaseUntil)
    }
    func saga(id: UUID) async throws -> Saga? { try await inner.saga(id: id) }
    func saga(idempotencyKey: String) async throws -> Saga? { nil }
    func steps(sagaId: UUID) async throws -> [SagaStep] { try await inner.steps(sagaId: sagaId) }
    func order(id: Int64) async throws -> Order? { try await inner.order(id: id) }
    func claimExpired(owner: String, now: Date, leaseUntil: Date, limit: Int) async throws -> [Saga] {
        try await inner.claimExpired(owner: owner, now: now, leaseUntil: leaseUntil, limit: limit)
    }
    func renewLeases(ids: [UUID], owner: String, until: Date) async throws { try await inner.renewLeases(ids: ids, owner: owner, until: until) }
    func countUnfinished() async throws -> Int { try await inner.countUnfinished() }
}

@Suite("Purchase service and stock guards")
struct PurchaseServiceTests {
    let store = InMemoryStore()
    let counter = InProcessStockCounter()

    func service(_ mode: PurchaseMode, sagas: (any SagaStore)? = nil) -> PurchaseService {
        let sagas = sagas ?? store
        let settings = PurchaseSettings(mode: mode)
        let orchestrator = SagaOrchestrator(store: sagas, gateway: SimulatedPaymentGateway(ledger: store), owner: "app-1")
        let stock = PurchaseService.stockGuard(settings, products: store, counter: counter, cache: InProcessProductCache(),
                                               lock: InProcessProductLock(), logger: Logger(label: "test"))
        return PurchaseService(products: store, sagas: sagas, orchestrator: orchestrator, stock: stock, settings: settings)
    }

    /// The request that loses the race for an Idempotency-Key answers like the winner, without a replay
    /// header, and leaves the cached counter as the winner left it (no second decrement in lock mode, units
    /// given back exactly once in atomic mode).
    @Test(arguments: [PurchaseMode.lock, .atomic])
    func theLoserOfAKeyRaceAnswersLikeTheWinnerAndLeavesTheCounterAlone(mode: PurchaseMode) async throws {
        let product = try await store.create(ProductStoreContract.mug(stock: 10), now: Date())
        let request = PurchaseRequest(productId: product.id, qty: 2, idempotencyKey: "k1")
        let first = try await service(mode).purchase(request)
        #expect(first.saga.state == .confirmed && !first.replayed)
        #expect(try await counter.get(productId: product.id) == 8)

        let second = try await service(mode, sagas: RacingKeyLookups(store)).purchase(request)
        #expect(second.saga.id == first.saga.id && second.saga.state == .confirmed)
        #expect(!second.replayed)
        #expect(try await counter.get(productId: product.id) == 8, "the counter still matches the database")
        #expect(try await store.product(id: product.id, consistency: .primary)?.available == 8)
    }

    /// A failed saga replayed to the loser of the race: its error, and the units it took from the counter
    /// (atomic mode) given back once.
    @Test func theLoserOfARaceForAFailedSagaGetsItsErrorAndGivesUnitsBackOnce() async throws {
        let product = try await store.create(ProductStoreContract.mug(stock: 10), now: Date())
        try await counter.set(productId: product.id, value: 10)
        let declining = SagaOrchestrator(store: store, gateway: SimulatedPaymentGateway(ledger: store, behavior: .init(declineRate: 1)),
                                         owner: "app-1")
        let settings = PurchaseSettings(mode: .atomic)
        let stock = PurchaseService.stockGuard(settings, products: store, counter: counter, cache: InProcessProductCache(),
                                               lock: InProcessProductLock(), logger: Logger(label: "test"))
        let request = PurchaseRequest(productId: product.id, qty: 3, idempotencyKey: "k2")
        await #expect(throws: StorefrontError.self) {
            try await PurchaseService(products: store, sagas: store, orchestrator: declining, stock: stock, settings: settings).purchase(request)
        }
        #expect(try await counter.get(productId: product.id) == 10, "the declined purchase gave its units back")
        await #expect(throws: StorefrontError.self) { try await service(.atomic, sagas: RacingKeyLookups(store)).purchase(request) }
        #expect(try await counter.get(productId: product.id) == 10, "the loser took 3 and gave 3 back, once")
    }
}
