import Foundation
import Logging
import Metrics

/// `POST /purchase`, top to bottom: validate → replay a known idempotency key and read the product (one
/// database call where the store is a `PurchaseLookup`) → enter the stock guard (lock mode: the product's
/// lock) → claim units (lock mode: check the counter; atomic mode:
/// reserve them) → the orchestrator starts and drives the saga → settle the guard → leave it.
/// Safety never depends on the guard: the database's conditional reserve is what prevents an oversell.
public final class PurchaseService: Sendable {
    public let settings: PurchaseSettings
    private let products: any ProductStore
    private let sagas: any SagaStore
    /// The store's one-call lookup of the key and the product, when it has one (looked up once, not per purchase).
    private let lookup: (any PurchaseLookup)?
    private let orchestrator: SagaOrchestrator
    private let stock: any StockGuard
    private let reconciler: StockReconciler?
    private let logger: Logger
    private let outcomes = CounterFamily(label: "storefront_purchases_total", dimensions: ["outcome"])
    /// Concurrent requests with the same key *and the same body* share one execution; a different body with
    /// the same key runs on its own and is refused (422) by the replay check once the first opened its saga.
    private let byKey = SingleFlight<KeyedRequest, PurchaseResult>()

    private struct KeyedRequest: Hashable, Sendable {
        var key: String
        var productId: Int64
        var qty: Int64
    }

    public init(
        products: any ProductStore, sagas: any SagaStore, orchestrator: SagaOrchestrator, stock: any StockGuard,
        settings: PurchaseSettings = .init(), reconciler: StockReconciler? = nil, logger: Logger = Logger(label: "storefront.purchase")
    ) {
        self.products = products
        self.sagas = sagas
        lookup = sagas as? any PurchaseLookup
        self.orchestrator = orchestrator
        self.stock = stock
        self.settings = settings
        self.reconciler = reconciler
        self.logger = logger
    }

    /// The stock guard of `settings.mode` over the given lock, counter and cache.
    public static func stockGuard(
        _ settings: PurchaseSettings, products: any ProductStore, counter: any StockCounter, cache: any ProductCache, lock: any ProductLock,
        logger: Logger
    ) -> any StockGuard {
        switch settings.mode {
        case .lock:
            LockStockGuard(products: products, counter: counter, cache: cache, lock: lock, ttl: settings.lockTTL, wait: settings.lockWait,
                           retryAfterSeconds: settings.retryAfterSeconds, logger: logger)
        case .atomic:
            AtomicStockGuard(products: products, counter: counter, cache: cache, retryAfterSeconds: settings.retryAfterSeconds, logger: logger)
        }
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
        // Outcomes are counted once per execution, here, not once per caller sharing it.
        let work: @Sendable () async throws -> PurchaseResult = {
            do {
                let result = try await self.purchaseOnce(request)
                self.outcomes.increment(result.saga.state.rawValue)
                return result
            } catch {
                // Every outcome that is not about the input counts, by its code (the console's outcomes per minute).
                switch error as? StorefrontError {
                case .validation?, .productNotFound?, .idempotencyKeyReused?: break
                case let e?: self.outcomes.increment(e.code)
                case nil: self.outcomes.increment("error")
                }
                throw error
            }
        }
        let result: PurchaseResult
        do {
            if let key = request.idempotencyKey {
                result = try await byKey.run(KeyedRequest(key: key, productId: request.productId, qty: request.qty), work)
            } else {
                result = try await Task(operation: work).value
            }
        } catch {
            // Refusals and unknown outcomes are checked too: a counter that drifted low refuses every purchase
            // (nothing else would ever look at it), and a reservation whose reply was lost took units silently.
            if Self.mayHaveMovedStock(error) { reconciler?.note(request.productId) }
            throw error
        }
        reconciler?.note(request.productId)
        return result
    }

    /// Whether a purchase that failed with `error` may have left the product's counter off (everything but
    /// input the request was refused for before any stock was looked at).
    static func mayHaveMovedStock(_ error: any Error) -> Bool {
        switch error as? StorefrontError {
        case .validation, .productNotFound, .idempotencyKeyReused: false
        default: true
        }
    }

    private func purchaseOnce(_ request: PurchaseRequest) async throws -> PurchaseResult {
        var product: Product?
        if let lookup {
            let found = try await lookup.purchaseLookup(productId: request.productId, idempotencyKey: request.idempotencyKey)
            if let existing = found.existing { return try await replay(existing, for: request) }
            guard let found = found.product else { throw StorefrontError.productNotFound(request.productId) }
            product = found
        } else if let replayed = try await replayIfKnown(request) {
            return replayed
        }
        guard let pass = try await stock.enter(productId: request.productId) else {
            // A concurrent request with the same key on another instance may hold the product: answer as it will.
            if let replayed = try await replayIfKnown(request) { return replayed }
            throw StorefrontError.productBusy(productId: request.productId, retryAfterSeconds: settings.retryAfterSeconds)
        }
        do {
            let result = try await purchase(request, holding: pass, product: product)
            await stock.leave(pass)
            return result
        } catch {
            await stock.leave(pass)
            throw error
        }
    }

    private func purchase(_ request: PurchaseRequest, holding pass: StockPass, product: Product?) async throws -> PurchaseResult {
        let order = try await saga(for: request, product: product)
        do {
            try await stock.claim(pass, qty: order.qty)
        } catch let error as StorefrontError {
            guard case .insufficientStock = error else { throw error }
            // A retry that waited for the lock while the first request with its key bought the last units:
            // the answer is the first request's, not "sold out".
            if let replayed = try await replayIfKnown(request) { return replayed }
            throw error
        }
        let start: SagaStart
        do {
            start = try await orchestrator.start(order)
        } catch {
            await stock.settle(pass, qty: order.qty, .unknown)
            if error is SagaLeftForRecovery {
                throw StorefrontError.unavailable("purchase processing", retryAfterSeconds: settings.retryAfterSeconds)
            }
            throw error
        }
        switch start {
        case .ran(let saga):
            await stock.settle(pass, qty: order.qty, .ran(saga))
            return try outcome(of: saga, replayed: false)
        case .takenOver(let saga):
            // The instance that took it over recovers the counter (it forgets it): settling here too could
            // count the units twice.
            await stock.settle(pass, qty: order.qty, .unknown)
            return try outcome(of: saga, replayed: false)
        case .existing(let other):
            await stock.settle(pass, qty: order.qty, .notStarted)
            // Answered as if this request had run it (no Idempotent-Replayed header): the two raced.
            var result = try await replay(other, for: request)
            result.replayed = false
            return result
        }
    }

    /// Sets the saga's terms from the product as the primary has it (the price must be current): the one the
    /// lookup read, else read now.
    private func saga(for request: PurchaseRequest, product read: Product?) async throws -> SagaOrder {
        var product = read
        if product == nil { product = try await products.product(id: request.productId, consistency: .primary) }
        guard let product else { throw StorefrontError.productNotFound(request.productId) }
        let (amount, overflow) = product.priceMinor.multipliedReportingOverflow(by: request.qty)
        guard !overflow else { throw StorefrontError.validation("qty × price is too large") }
        return SagaOrder(idempotencyKey: request.idempotencyKey, productId: product.id, qty: request.qty, amountMinor: amount,
                         currency: product.currency, mode: settings.mode)
    }

    // MARK: idempotency

    /// The answer of the earlier request with this key, if there was one.
    private func replayIfKnown(_ request: PurchaseRequest) async throws -> PurchaseResult? {
        guard let key = request.idempotencyKey, let existing = try await sagas.saga(idempotencyKey: key) else { return nil }
        return try await replay(existing, for: request)
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
        switch (saga.state, saga.failureCode) {
        case (.confirmed, _), (.paid, _):
            return PurchaseResult(saga: saga, replayed: replayed)
        case (.failed, .insufficientStock?):
            throw StorefrontError.insufficientStock(productId: saga.productId, available: nil)
        case (.compensated, .paymentDeclined?):
            throw StorefrontError.paymentDeclined(sagaId: saga.id, reason: saga.lastError ?? "declined")
        case (.compensated, _) where replayed, (.failed, _) where replayed:
            // The first request was told to retry (503); its retry with the same key can never succeed.
            throw StorefrontError.purchaseFailed(sagaId: saga.id, reason: saga.failureCode?.rawValue ?? "failed")
        case (.compensated, .paymentUnavailable?):
            throw StorefrontError.paymentUnavailable(sagaId: saga.id)
        default:
            throw StorefrontError.unavailable("purchase processing", retryAfterSeconds: settings.retryAfterSeconds)
        }
    }
}
