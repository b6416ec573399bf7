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
    func begin(_ saga: NewSaga, then chain: [SagaTransition], now: Date) async throws -> BeginResult {
        try await inner.begin(saga, then: chain, now: now)
    }
    func apply(_ chain: [SagaTransition], sagaId: UUID, fence: SagaFence, lease: Duration, now: Date) async throws -> TransitionResult {
        try await inner.apply(chain, sagaId: sagaId, fence: fence, lease: lease, now: now)
    }
    func saga(id: UUID) async throws -> Saga? { try await inner.saga(id: id) }
    func saga(idempotencyKey: String) async throws -> Saga? { nil }
    func steps(sagaId: UUID) async throws -> [SagaStep] { try await inner.steps(sagaId: sagaId) }
    func order(id: Int64) async throws -> Order? { try await inner.order(id: id) }
    func claimExpired(owner: String, lease: Duration, limit: Int, now: Date) async throws -> [Saga] {
        try await inner.claimExpired(owner: owner, lease: lease, limit: limit, now: now)
    }
    func renewLeases(_ held: [UUID: Int], owner: String, lease: Duration) async throws -> Set<UUID> {
        try await inner.renewLeases(held, owner: owner, lease: lease)
    }
    func countUnfinished() async throws -> Int { try await inner.countUnfinished() }
    func postpone(sagaId: UUID, fence: SagaFence, delay: Duration, error: String, now: Date) async throws -> Bool {
        try await inner.postpone(sagaId: sagaId, fence: fence, delay: delay, error: error, now: now)
    }
    func flagForAttention(sagaId: UUID, fence: SagaFence, error: String, now: Date) async throws -> Bool {
        try await inner.flagForAttention(sagaId: sagaId, fence: fence, error: error, now: now)
    }
    func unfinished(needingAttention: Bool, limit: Int) async throws -> [Saga] {
        try await inner.unfinished(needingAttention: needingAttention, limit: limit)
    }
    func retry(sagaId: UUID, force: Bool, now: Date) async throws -> Saga? {
        try await inner.retry(sagaId: sagaId, force: force, now: now)
    }
    func take(sagaId: UUID, owner: String, lease: Duration, force: Bool, now: Date) async throws -> Saga? {
        try await inner.take(sagaId: sagaId, owner: owner, lease: lease, force: force, now: now)
    }
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

@Suite("Idempotency edges")
struct IdempotencyEdgeTests {
    let store = InMemoryStore()
    let counter = InProcessStockCounter()
    let lock = InProcessProductLock()

    /// A server: its own orchestrator and service over the shared store, counter and lock; `slowReads` makes
    /// its product reads (between taking the lock and opening the saga) take that long.
    func server(_ name: String, latency: Duration, lockWait: Duration = .zero, slowReads: Duration = .zero) -> PurchaseService {
        let settings = PurchaseSettings(mode: .lock, lockWait: lockWait)
        let orchestrator = SagaOrchestrator(store: store, gateway: SimulatedPaymentGateway(ledger: store, behavior: .init(latency: latency)),
                                            owner: name)
        let stock = PurchaseService.stockGuard(settings, products: store, counter: counter, cache: InProcessProductCache(), lock: lock,
                                               logger: Logger(label: "test"))
        return PurchaseService(products: SlowProductReads(inner: store, delay: slowReads), sagas: store, orchestrator: orchestrator,
                               stock: stock, settings: settings)
    }

    /// Same key, different body, at the same time on one server: the second is refused, it does not get
    /// the first one's answer.
    @Test func aDifferentBodyWithTheSameKeyIsRefusedEvenWhileTheFirstRuns() async throws {
        let product = try await store.create(ProductStoreContract.mug(stock: 10), now: Date())
        let service = server("app-1", latency: .milliseconds(400))
        let first = Task { try await service.purchase(PurchaseRequest(productId: product.id, qty: 2, idempotencyKey: "k")) }
        try await Task.sleep(for: .milliseconds(100))
        await #expect(throws: StorefrontError.idempotencyKeyReused("k")) {
            try await service.purchase(PurchaseRequest(productId: product.id, qty: 3, idempotencyKey: "k"))
        }
        #expect(try await first.value.saga.qty == 2)
        #expect(try await store.product(id: product.id, consistency: .primary)?.available == 8, "only the first was bought")
    }

    /// With a lock wait, a retry on another server waits for the lock while the first request buys the
    /// last units: it gets the first request's answer, not "sold out".
    @Test func aRetryThatWaitedForTheLockReplaysInsteadOfSoldOut() async throws {
        let product = try await store.create(ProductStoreContract.mug(stock: 2), now: Date())
        let request = PurchaseRequest(productId: product.id, qty: 2, idempotencyKey: "last-two")
        // app-1 holds the lock and is still reading the product (no saga yet) when the retry arrives at app-2:
        // the retry finds no saga for its key, waits for the lock, and then finds the counter at 0.
        let a = server("app-1", latency: .milliseconds(100), lockWait: .seconds(5), slowReads: .milliseconds(400))
        let b = server("app-2", latency: .zero, lockWait: .seconds(5))
        let first = Task { try await a.purchase(request) }
        try await Task.sleep(for: .milliseconds(100))
        let retry = try await b.purchase(request)
        let original = try await first.value
        #expect(retry.saga.id == original.saga.id && retry.saga.state == .confirmed && retry.replayed)
    }
}

/// Product reads that take `delay` (a slow database between the lock and the saga).
struct SlowProductReads: ProductStore {
    let inner: InMemoryStore
    let delay: Duration
    func product(id: Int64, consistency: ReadConsistency) async throws -> Product? {
        if delay > .zero { try await Task.sleep(for: delay) }
        return try await inner.product(id: id, consistency: consistency)
    }
    func unitsHeld(productId: Int64) async throws -> Int64 { try await inner.unitsHeld(productId: productId) }
    func products(after: Int64?, limit: Int, consistency: ReadConsistency) async throws -> ProductPage {
        try await inner.products(after: after, limit: limit, consistency: consistency)
    }
    func create(_ product: NewProduct, now: Date) async throws -> Product { try await inner.create(product, now: now) }
    func update(id: Int64, _ update: ProductUpdate, now: Date) async throws -> Product { try await inner.update(id: id, update, now: now) }
    func restock(id: Int64, qty: Int64, now: Date) async throws -> Product { try await inner.restock(id: id, qty: qty, now: now) }
    func insertIgnoringExisting(_ products: [NewProduct], now: Date) async throws -> Int { try await inner.insertIgnoringExisting(products, now: now) }
}

extension IdempotencyEdgeTests {
    /// The first request of a purchase the provider could not take is told to retry (503); its retry with the
    /// same key gets a final answer (409 purchase_failed) instead of the same 503 forever.
    @Test func aRetryOfAFailedPurchaseGetsAFinalAnswer() async throws {
        let product = try await store.create(ProductStoreContract.mug(stock: 10), now: Date())
        let settings = PurchaseSettings(mode: .lock)
        let orchestrator = SagaOrchestrator(store: store, gateway: SimulatedPaymentGateway(ledger: store, behavior: .init(failureRate: 1)),
                                            owner: "app-1", settings: SagaSettings(paymentAttempts: 1, retryBackoff: .milliseconds(1)))
        let stock = PurchaseService.stockGuard(settings, products: store, counter: counter, cache: InProcessProductCache(), lock: lock,
                                               logger: Logger(label: "test"))
        let service = PurchaseService(products: store, sagas: store, orchestrator: orchestrator, stock: stock, settings: settings)
        let request = PurchaseRequest(productId: product.id, qty: 1, idempotencyKey: "provider-down")
        var sagaId: UUID?
        do {
            _ = try await service.purchase(request)
            Issue.record("the provider is down: the purchase cannot succeed")
        } catch StorefrontError.paymentUnavailable(let id) {
            sagaId = id
        }
        let id = try #require(sagaId)
        await #expect(throws: StorefrontError.purchaseFailed(sagaId: id, reason: "payment_unavailable")) { try await service.purchase(request) }
        #expect(try await store.product(id: product.id, consistency: .primary)?.available == 10)
    }
}
