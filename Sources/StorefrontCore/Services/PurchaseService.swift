import Foundation
import Logging
import Metrics

/// A validated purchase request.
public struct PurchaseRequest: Sendable, Equatable {
    public var productId: Int64
    public var qty: Int64
    public var idempotencyKey: String?

    public init(productId: Int64, qty: Int64, idempotencyKey: String? = nil) {
        self.productId = productId
        self.qty = qty
        self.idempotencyKey = idempotencyKey
    }
}

/// What a purchase produced: the saga (CONFIRMED, or still running past the pivot) and whether this answer
/// replays an earlier request with the same idempotency key.
public struct PurchaseResult: Sendable, Equatable {
    public var saga: Saga
    public var replayed: Bool
}

public struct PurchaseSettings: Sendable {
    public var mode: PurchaseMode
    /// Largest quantity one purchase may ask for.
    public var maxQty: Int64
    public var lockTTL: Duration
    /// How long to wait for a busy lock before answering `product_busy` (0 = the seed's fail-fast).
    public var lockWait: Duration
    /// `Retry-After` for `product_busy` and other retryable answers.
    public var retryAfterSeconds: Int
    /// How long a request with a known idempotency key waits for the first request's saga to finish.
    public var idempotencyWait: Duration

    public init(
        mode: PurchaseMode = .lock, maxQty: Int64 = 100, lockTTL: Duration = .seconds(30), lockWait: Duration = .zero,
        retryAfterSeconds: Int = 1, idempotencyWait: Duration = .seconds(10)
    ) {
        self.mode = mode
        self.maxQty = maxQty
        self.lockTTL = lockTTL
        self.lockWait = lockWait
        self.retryAfterSeconds = retryAfterSeconds
        self.idempotencyWait = idempotencyWait
    }

    public static let maxIdempotencyKeyLength = 128
}

/// `POST /purchase`: the seed's lock-and-check flow (or the atomic flash-sale flow) around the saga.
/// Safety never depends on the lock or the counter: the database's conditional reserve is the guard.
public final class PurchaseService: Sendable {
    public let settings: PurchaseSettings
    private let products: any ProductStore
    private let sagas: any SagaStore
    private let orchestrator: SagaOrchestrator
    private let cache: any ProductCache
    private let counter: any StockCounter
    private let lock: any ProductLock
    private let clock: WallClock
    private let logger: Logger
    private let reconciler: StockReconciler?
    private let outcomes = CounterFamily(label: "storefront_purchases_total", dimensions: ["outcome"])
    private let byKey = SingleFlight<String, PurchaseResult>()

    public init(
        products: any ProductStore, sagas: any SagaStore, orchestrator: SagaOrchestrator, cache: any ProductCache,
        counter: any StockCounter, lock: any ProductLock, settings: PurchaseSettings = .init(), clock: WallClock = .system,
        reconciler: StockReconciler? = nil, logger: Logger = Logger(label: "storefront.purchase")
    ) {
        self.reconciler = reconciler
        self.products = products
        self.sagas = sagas
        self.orchestrator = orchestrator
        self.cache = cache
        self.counter = counter
        self.lock = lock
        self.settings = settings
        self.clock = clock
        self.logger = logger
    }

    /// Checks a request before anything is read or written.
    public func validate(_ request: PurchaseRequest) throws {
        guard request.productId > 0 else { throw StorefrontError.validation("productId must be a positive integer") }
        guard request.qty > 0 else { throw StorefrontError.validation("qty must be at least 1") }
        guard request.qty <= settings.maxQty else { throw StorefrontError.validation("qty must be at most \(settings.maxQty)") }
        if let key = request.idempotencyKey {
            guard !key.isEmpty, key.utf8.count <= PurchaseSettings.maxIdempotencyKeyLength,
                  key.unicodeScalars.allSatisfy({ $0.value >= 0x21 && $0.value <= 0x7E })
            else {
                throw StorefrontError.validation("Idempotency-Key must be 1–\(PurchaseSettings.maxIdempotencyKeyLength) visible ASCII characters")
            }
        }
    }

    /// Buys `qty` units. Returns the CONFIRMED saga (or one still finishing past the pivot); throws
    /// `StorefrontError` for every other outcome.
    public func purchase(_ request: PurchaseRequest) async throws -> PurchaseResult {
        try validate(request)
        // The purchase runs in its own task: a caller that goes away (client disconnect, shutdown) must not
        // cancel a saga half-way. Concurrent requests with the same key on this instance share one execution.
        let work: @Sendable () async throws -> PurchaseResult = { try await self.purchaseOnce(request) }
        let result: PurchaseResult
        if let key = request.idempotencyKey {
            result = try await byKey.run(key, work)
        } else {
            result = try await Task(operation: work).value
        }
        outcomes.increment(result.saga.state.rawValue)
        reconciler?.note(request.productId)
        return result
    }

    private func purchaseOnce(_ request: PurchaseRequest) async throws -> PurchaseResult {
        if let key = request.idempotencyKey, let existing = try await sagas.saga(idempotencyKey: key) {
            return try await replay(existing, for: request)
        }
        switch settings.mode {
        case .lock: return try await purchaseWithLock(request)
        case .atomic:
            let (product, new) = try await prepareSaga(request)
            return try await purchaseAtomically(new, product: product, request: request)
        }
    }

    /// Reads the product (primary: the price must be current) and builds the saga to run.
    private func prepareSaga(_ request: PurchaseRequest) async throws -> (Product, NewSaga) {
        guard let product = try await products.product(id: request.productId, consistency: .primary) else {
            throw StorefrontError.productNotFound(request.productId)
        }
        let (amount, overflow) = product.priceMinor.multipliedReportingOverflow(by: request.qty)
        guard !overflow else { throw StorefrontError.validation("qty × price is too large") }
        let new = NewSaga(
            idempotencyKey: request.idempotencyKey, productId: product.id, qty: request.qty, amountMinor: amount,
            currency: product.currency, mode: settings.mode, owner: orchestrator.owner, leaseUntil: orchestrator.leaseUntil())
        return (product, new)
    }

    // MARK: lock mode (the seed's flow)

    /// The lock comes first, so a busy answer costs one Redis round trip and no database read.
    private func purchaseWithLock(_ request: PurchaseRequest) async throws -> PurchaseResult {
        let token = UUID().uuidString
        let productId = request.productId
        guard try await dependency("product lock", { try await self.acquireLock(productId, token: token) }) else {
            // A concurrent request with the same key on another instance may own it: answer as it will.
            if let key = request.idempotencyKey, let existing = try await sagas.saga(idempotencyKey: key) {
                return try await replay(existing, for: request)
            }
            outcomes.increment("product_busy")
            throw StorefrontError.productBusy(productId: productId, retryAfterSeconds: settings.retryAfterSeconds)
        }
        do {
            let (product, new) = try await prepareSaga(request)
            let result = try await lockedPurchase(new, product: product, request: request)
            await releaseLock(productId, token: token)
            return result
        } catch {
            await releaseLock(productId, token: token)
            throw error
        }
    }

    private func lockedPurchase(_ new: NewSaga, product: Product, request: PurchaseRequest) async throws -> PurchaseResult {
        let cached = try await dependency("stock counter") { try await self.cachedStock(product.id) }
        guard cached >= new.qty else {
            outcomes.increment("insufficient_stock")
            throw StorefrontError.insufficientStock(productId: product.id, available: cached)
        }
        let saga = try await runSaga(new, request: request) { _ in }
        switch saga.state {
        case .confirmed:
            await quietly { try await self.counter.decrement(productId: product.id, by: new.qty) }
        case .failed where saga.failureCode == "insufficient_stock":
            // The counter said yes but the database said no: the counter drifted. We hold the lock, so no
            // purchase is in flight for this product: correct it exactly, now.
            await quietly { try await self.reconcileCounter(product.id) }
        default:
            break
        }
        await quietly { try await self.cache.invalidate(id: product.id) }
        return try outcome(of: saga, replayed: false)
    }

    private func acquireLock(_ productId: Int64, token: String) async throws -> Bool {
        let deadline = ContinuousClock.now + settings.lockWait
        while true {
            if try await lock.acquire(productId: productId, token: token, ttl: settings.lockTTL) { return true }
            guard ContinuousClock.now < deadline else { return false }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    private func releaseLock(_ productId: Int64, token: String) async {
        do {
            if try await !lock.release(productId: productId, token: token) {
                logger.warning("lock had expired or changed owner before release", metadata: ["product": "\(productId)"])
            }
        } catch {
            logger.warning("lock release failed; it expires by TTL", metadata: ["product": "\(productId)", "error": "\(error)"])
        }
    }

    // MARK: atomic mode (flash sale)

    private func purchaseAtomically(_ new: NewSaga, product: Product, request: PurchaseRequest) async throws -> PurchaseResult {
        let reservation = try await dependency("stock counter") {
            var reservation = try await self.counter.reserve(productId: product.id, qty: new.qty)
            for _ in 0..<3 where reservation == .missing {
                try await self.fillCounter(product.id)
                reservation = try await self.counter.reserve(productId: product.id, qty: new.qty)
            }
            return reservation
        }
        switch reservation {
        case .reserved: break
        case .insufficient(let available):
            outcomes.increment("insufficient_stock")
            throw StorefrontError.insufficientStock(productId: product.id, available: available)
        case .missing:
            throw StorefrontError.unavailable("stock counter", retryAfterSeconds: settings.retryAfterSeconds)
        }
        let giveBack: @Sendable (Bool) async -> Void = { _ in
            await self.quietly { try await self.counter.giveBack(productId: product.id, qty: new.qty) }
        }
        let saga: Saga
        do {
            saga = try await runSaga(new, request: request, onNotStarted: giveBack)
        } catch {
            // Outcome unknown here (left for recovery): drop the counter so it is rebuilt from the database.
            await quietly { try await self.counter.forget(productId: product.id) }
            throw error
        }
        if saga.state == .failed, saga.failureCode == "insufficient_stock" {
            // The counter said yes, the database said no: the counter was too high. The units this request took
            // from it did not exist, so they are not given back — the counter converges on the truth.
        } else if saga.state == .compensated || saga.state == .failed {
            await giveBack(true)
        }
        await quietly { try await self.cache.invalidate(id: product.id) }
        return try outcome(of: saga, replayed: false)
    }

    // MARK: shared

    /// Opens and drives the saga. If another request already opened one with the same key, undoes this
    /// request's pre-saga work (`onNotStarted`) and replays that one instead.
    private func runSaga(_ new: NewSaga, request: PurchaseRequest, onNotStarted: @Sendable (Bool) async -> Void) async throws -> Saga {
        switch try await sagas.begin(new, now: clock.now()) {
        case .created(let saga):
            do {
                return try await orchestrator.drive(saga)
            } catch let crash as SimulatedCrash {
                throw crash
            } catch {
                // Left for recovery: report the saga as it is now.
                if let current = try? await sagas.saga(id: saga.id), current.state.isPastPivot { return current }
                throw StorefrontError.unavailable("purchase processing", retryAfterSeconds: settings.retryAfterSeconds)
            }
        case .existing(let other):
            await onNotStarted(false)
            return try await replay(other, for: request).saga
        }
    }

    /// The answer the first request with this key got (waiting for its saga to finish if needed).
    private func replay(_ saga: Saga, for request: PurchaseRequest) async throws -> PurchaseResult {
        guard saga.productId == request.productId, saga.qty == request.qty else {
            throw StorefrontError.idempotencyKeyReused(request.idempotencyKey ?? "")
        }
        var current = saga
        let deadline = ContinuousClock.now + settings.idempotencyWait
        while !current.state.isTerminal, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            current = try await sagas.saga(id: saga.id) ?? current
        }
        if !current.state.isTerminal, !current.state.isPastPivot {
            throw StorefrontError.unavailable("the first request with this Idempotency-Key", retryAfterSeconds: settings.retryAfterSeconds)
        }
        return try outcome(of: current, replayed: true)
    }

    /// Maps a finished (or past-pivot) saga to the caller's answer.
    private func outcome(of saga: Saga, replayed: Bool) throws -> PurchaseResult {
        switch saga.state {
        case .confirmed, .paid:
            return PurchaseResult(saga: saga, replayed: replayed)
        case .failed where saga.failureCode == "insufficient_stock":
            throw StorefrontError.insufficientStock(productId: saga.productId, available: nil)
        case .compensated where saga.failureCode == "payment_declined":
            throw StorefrontError.paymentDeclined(sagaId: saga.id, reason: saga.lastError ?? "declined")
        case .compensated where saga.failureCode == "payment_unavailable":
            throw StorefrontError.paymentUnavailable(sagaId: saga.id)
        default:
            throw StorefrontError.unavailable("purchase processing", retryAfterSeconds: settings.retryAfterSeconds)
        }
    }

    /// The cached counter, filled from the primary on a miss.
    private func cachedStock(_ productId: Int64) async throws -> Int64 {
        if let value = try await counter.get(productId: productId) { return value }
        try await fillCounter(productId)
        return try await counter.get(productId: productId) ?? 0
    }

    /// First fill of a missing counter from the database; concurrent fillers cannot overwrite each other
    /// (or reservations made in between).
    private func fillCounter(_ productId: Int64) async throws {
        guard let product = try await products.product(id: productId, consistency: .primary) else {
            throw StorefrontError.productNotFound(productId)
        }
        try await counter.setIfAbsent(productId: productId, value: product.available)
    }

    /// Sets the counter from the database (`stock − reserved`).
    @discardableResult
    public func reconcileCounter(_ productId: Int64) async throws -> Int64 {
        guard let product = try await products.product(id: productId, consistency: .primary) else {
            throw StorefrontError.productNotFound(productId)
        }
        try await counter.set(productId: productId, value: product.available)
        return product.available
    }

    /// After a saga finished by recovery, the counter and cache may be off: rebuild both from the database.
    public func afterRecovery(_ saga: Saga) async {
        await quietly { try await self.counter.forget(productId: saga.productId) }
        await quietly { try await self.cache.invalidate(id: saga.productId) }
    }

    /// Runs a call to the lock or counter; if that dependency fails, the purchase is refused with 503 +
    /// Retry-After before anything is written (never an oversell, never a hang).
    private func dependency<T: Sendable>(_ name: String, _ body: @Sendable () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as StorefrontError {
            throw error
        } catch {
            logger.warning("purchase refused: dependency unavailable", metadata: ["dependency": "\(name)", "error": "\(error)"])
            throw StorefrontError.unavailable(name, retryAfterSeconds: settings.retryAfterSeconds)
        }
    }

    private func quietly(_ body: () async throws -> Void) async {
        do { try await body() } catch { logger.warning("cache/counter update failed; it will be reconciled", metadata: ["error": "\(error)"]) }
    }
}
