import Foundation
import StorefrontCore
import Synchronization

/// An in-memory implementation of the database ports, for unit tests of logic only.
/// It follows the same contract as the SQL adapters (the contract suites run against it too).
public final class InMemoryStore: ProductStore, SagaStore, OutboxStore, PaymentLedger {
    struct State {
        var products: [Int64: Product] = [:]
        var nextProductId: Int64 = 1
        var sagas: [UUID: Saga] = [:]
        var keys: [String: UUID] = [:]
        var steps: [UUID: [SagaStep]] = [:]
        var orders: [Int64: Order] = [:]
        var nextOrderId: Int64 = 1
        var outbox: [OutboxRecord] = []
        var payments: [String: PaymentRecord] = [:]
    }

    private let state = Mutex(State())
    private let topic: String
    /// The "database's" clock, by which leases are judged (tests move a `TestClock` to expire them).
    private let clock: WallClock

    public init(topic: String = SagaEvent.defaultTopic, clock: WallClock = .system) {
        self.topic = topic
        self.clock = clock
    }

    // MARK: ProductStore

    public func product(id: Int64, consistency: ReadConsistency) async throws -> Product? {
        state.withLock { $0.products[id] }
    }

    public func unitsHeld(productId: Int64) async throws -> Int64 {
        state.withLock { s in
            s.sagas.values.filter { $0.productId == productId && !$0.state.isTerminal && $0.state != .started }.reduce(0) { $0 + $1.qty }
        }
    }

    public func products(after: Int64?, limit: Int, consistency: ReadConsistency) async throws -> ProductPage {
        state.withLock { s in
            let all = s.products.values.filter { $0.id > (after ?? 0) }.sorted { $0.id < $1.id }
            let items = Array(all.prefix(limit))
            return ProductPage(items: items, next: all.count > limit ? items.last?.id : nil)
        }
    }

    public func create(_ p: NewProduct, now: Date) async throws -> Product {
        try state.withLock { s in
            guard !s.products.values.contains(where: { $0.sku == p.sku }) else { throw StorefrontError.skuConflict(p.sku) }
            let product = Product(id: s.nextProductId, sku: p.sku, name: p.name, description: p.description, priceMinor: p.priceMinor,
                                  currency: p.currency, stock: p.stock, version: 1, updatedAt: now)
            s.nextProductId += 1
            s.products[product.id] = product
            return product
        }
    }

    public func update(id: Int64, _ update: ProductUpdate, now: Date) async throws -> Product {
        try state.withLock { s in
            guard let current = s.products[id] else { throw StorefrontError.productNotFound(id) }
            var p = try update.applied(to: current)
            if s.products.values.contains(where: { $0.sku == p.sku && $0.id != id }) { throw StorefrontError.skuConflict(p.sku) }
            p.version += 1
            p.updatedAt = now
            s.products[id] = p
            return p
        }
    }

    public func restock(id: Int64, qty: Int64, now: Date) async throws -> Product {
        try state.withLock { s in
            guard var p = s.products[id] else { throw StorefrontError.productNotFound(id) }
            p.stock += qty
            p.version += 1
            p.updatedAt = now
            s.products[id] = p
            return p
        }
    }

    public func insertIgnoringExisting(_ products: [NewProduct], now: Date) async throws -> Int {
        var inserted = 0
        for product in products where (try? await create(product, now: now)) != nil { inserted += 1 }
        return inserted
    }

    // MARK: SagaStore

    public func begin(_ new: NewSaga, then chain: [SagaTransition], now: Date) async throws -> BeginResult {
        let leaseUntil = clock.now().adding(new.lease)
        return try state.withLock { s in
            if let key = new.idempotencyKey, let id = s.keys[key], let existing = s.sagas[id] { return .existing(existing) }
            var work = s
            var saga = Saga(id: new.id, idempotencyKey: new.idempotencyKey, productId: new.productId, qty: new.qty,
                            amountMinor: new.amountMinor, currency: new.currency, mode: new.mode, state: .started, orderId: nil,
                            paymentRef: nil, attempts: 0, owner: new.owner, epoch: 1, leaseUntil: leaseUntil, failureCode: nil,
                            lastError: nil, eventSequence: 0, createdAt: now, updatedAt: now)
            if let key = new.idempotencyKey { work.keys[key] = saga.id }
            work.steps[saga.id] = [SagaStep(sequence: 1, name: .startSaga, status: .done, detail: "mode \(new.mode.rawValue)", at: now)]
            saga = Self.append(&work, topic: topic, saga: saga, types: [.sagaStarted], reason: nil, now: now)
            work.sagas[saga.id] = saga
            // Like one transaction: a refused reservation opens the saga already failed.
            let chained = try Self.perform(chain, on: saga, in: work, topic: topic, leaseUntil: leaseUntil, now: now)
                ?? Self.perform([SagaPlan.insufficientStock(available: nil)], on: saga, in: work, topic: topic, leaseUntil: leaseUntil, now: now)!
            s = chained.state
            return .created(chained.saga)
        }
    }

    public func apply(_ chain: [SagaTransition], sagaId: UUID, fence: SagaFence, lease: Duration, now: Date) async throws -> TransitionResult {
        let leaseUntil = clock.now().adding(lease)
        return try state.withLock { s in
            guard let saga = s.sagas[sagaId] else { throw SagaStoreInconsistency(sagaId: sagaId, detail: "no such saga") }
            guard let first = chain.first else { throw SagaStoreInconsistency(sagaId: sagaId, detail: "empty chain") }
            guard saga.fence == fence else { return .fenced(saga) }
            guard saga.state == first.from else { return .stale(saga) }
            guard let chained = try Self.perform(chain, on: saga, in: s, topic: topic, leaseUntil: leaseUntil, now: now) else {
                return .rejected(saga)
            }
            s = chained.state
            return .applied(chained.saga)
        }
    }

    /// The chain applied to a copy of the state (committed by the caller), or nil when a reservation is refused.
    private static func perform(_ chain: [SagaTransition], on start: Saga, in state: State, topic: String, leaseUntil: Date,
                                now: Date) throws -> (state: State, saga: Saga)? {
        var work = state
        var saga = start
        for t in chain {
            guard saga.state == t.from else { throw SagaStoreInconsistency(sagaId: saga.id, detail: "chain breaks at \(t.step)") }
            switch t.effect {
            case .none:
                break
            case .reserveInventory:
                guard var p = work.products[saga.productId], p.stock >= saga.qty else { return nil }
                p.stock -= saga.qty
                p.version += 1
                work.products[p.id] = p
            case .createOrder:
                let order = Order(id: work.nextOrderId, sagaId: saga.id, productId: saga.productId, qty: saga.qty,
                                  amountMinor: saga.amountMinor, currency: saga.currency, status: .pending, createdAt: now, updatedAt: now)
                work.nextOrderId += 1
                work.orders[order.id] = order
                saga.orderId = order.id
            case .recordPayment(let reference):
                saga.paymentRef = reference
            case .confirmOrder, .cancelOrder:
                guard let orderId = saga.orderId, var order = work.orders[orderId] else {
                    throw SagaStoreInconsistency(sagaId: saga.id, detail: "no order to update")
                }
                if order.status == .pending {
                    order.status = t.effect == .confirmOrder ? .confirmed : .cancelled
                    order.updatedAt = now
                    work.orders[orderId] = order
                }
            case .releaseInventory:
                if var p = work.products[saga.productId] {
                    p.stock += saga.qty
                    p.version += 1
                    work.products[p.id] = p
                }
            }
            saga.state = t.to
            saga.leaseUntil = leaseUntil
            saga.failureCode = saga.failureCode ?? t.failureCode
            if t.status != .done, let detail = t.detail { saga.lastError = detail }
            saga.updatedAt = now
            work.steps[saga.id, default: []].append(
                SagaStep(sequence: (work.steps[saga.id]?.count ?? 0) + 1, name: t.step, status: t.status, detail: t.detail, at: now))
            saga = Self.append(&work, topic: topic, saga: saga, types: t.events, reason: t.status == .done ? nil : t.detail, now: now)
            work.sagas[saga.id] = saga
        }
        return (work, saga)
    }

    private static func append(_ s: inout State, topic: String, saga: Saga, types: [SagaEventType], reason: String?, now: Date) -> Saga {
        var saga = saga
        for type in types {
            saga.eventSequence += 1
            let event = SagaEvent(type: type, saga: saga, sequence: saga.eventSequence, occurredAt: now, reason: reason)
            s.outbox.append(OutboxRecord(id: Int64(s.outbox.count + 1), eventId: event.eventId, topic: topic, key: saga.id.uuidString,
                                         payload: (try? event.jsonPayload()) ?? "{}", createdAt: now, publishedAt: nil))
        }
        return saga
    }

    public func saga(id: UUID) async throws -> Saga? { state.withLock { $0.sagas[id] } }

    public func saga(idempotencyKey: String) async throws -> Saga? {
        state.withLock { s in s.keys[idempotencyKey].flatMap { s.sagas[$0] } }
    }

    public func steps(sagaId: UUID) async throws -> [SagaStep] { state.withLock { $0.steps[sagaId] ?? [] } }

    public func order(id: Int64) async throws -> Order? { state.withLock { $0.orders[id] } }

    public func claimExpired(owner: String, lease: Duration, limit: Int, now: Date) async throws -> [Saga] {
        let storeNow = clock.now()
        return state.withLock { s in
            let expired = s.sagas.values.filter { !$0.state.isTerminal && !$0.needsAttention && $0.leaseUntil < storeNow }.sorted { $0.leaseUntil < $1.leaseUntil }.prefix(limit)
            return expired.map { saga in
                var claimed = saga
                claimed.owner = owner
                claimed.epoch += 1
                claimed.leaseUntil = storeNow.adding(lease)
                claimed.attempts += 1
                claimed.updatedAt = now
                s.sagas[claimed.id] = claimed
                return claimed
            }
        }
    }

    public func renewLeases(_ held: [UUID: Int], owner: String, lease: Duration) async throws -> Set<UUID> {
        let until = clock.now().adding(lease)
        return state.withLock { s in
            for id in held.keys where s.sagas[id]?.owner == owner && s.sagas[id]?.state.isTerminal == false {
                s.sagas[id]?.leaseUntil = until
            }
            return Set(held.filter { id, epoch in s.sagas[id]?.fence != SagaFence(owner: owner, epoch: epoch) }.keys)
        }
    }

    public func countUnfinished() async throws -> Int { state.withLock { $0.sagas.values.filter { !$0.state.isTerminal }.count } }

    /// Runs `body` on the saga if `fence` still owns it and it is unfinished.
    private func owned(_ id: UUID, _ fence: SagaFence, now: Date, _ body: (inout Saga) -> Void) -> Bool {
        state.withLock { s in
            guard var saga = s.sagas[id], saga.fence == fence, !saga.state.isTerminal else { return false }
            body(&saga)
            saga.updatedAt = now
            s.sagas[id] = saga
            return true
        }
    }

    public func postpone(sagaId: UUID, fence: SagaFence, delay: Duration, error: String, now: Date) async throws -> Bool {
        let until = clock.now().adding(delay)
        return owned(sagaId, fence, now: now) { saga in
            saga.leaseUntil = until
            saga.lastError = error
        }
    }

    public func flagForAttention(sagaId: UUID, fence: SagaFence, error: String, now: Date) async throws -> Bool {
        owned(sagaId, fence, now: now) { saga in
            saga.needsAttention = true
            saga.lastError = error
        }
    }

    public func unfinished(needingAttention: Bool, limit: Int) async throws -> [Saga] {
        state.withLock { s in
            Array(s.sagas.values.filter { !$0.state.isTerminal && (!needingAttention || $0.needsAttention) }
                .sorted { ($0.createdAt, $0.id.uuidString) < ($1.createdAt, $1.id.uuidString) }.prefix(limit))
        }
    }

    public func retry(sagaId: UUID, force: Bool, now: Date) async throws -> Saga? {
        let storeNow = clock.now()
        return state.withLock { s in
            guard var saga = s.sagas[sagaId], !saga.state.isTerminal, force || saga.needsAttention || saga.leaseUntil < storeNow else { return nil }
            saga.needsAttention = false
            saga.attempts = 0
            saga.leaseUntil = storeNow.addingTimeInterval(-0.001)
            saga.updatedAt = now
            s.sagas[sagaId] = saga
            return saga
        }
    }

    public func take(sagaId: UUID, owner: String, lease: Duration, force: Bool, now: Date) async throws -> Saga? {
        let storeNow = clock.now()
        let until = storeNow.adding(lease)
        return state.withLock { s in
            guard var saga = s.sagas[sagaId], !saga.state.isTerminal, force || saga.needsAttention || saga.leaseUntil < storeNow else { return nil }
            saga.owner = owner
            saga.epoch += 1
            saga.leaseUntil = until
            saga.needsAttention = false
            saga.updatedAt = now
            s.sagas[sagaId] = saga
            return saga
        }
    }

    // MARK: OutboxStore

    public func unpublished(limit: Int) async throws -> [OutboxRecord] {
        state.withLock { Array($0.outbox.filter { $0.publishedAt == nil }.prefix(limit)) }
    }

    public func records(after: Int64, limit: Int, sagaId: UUID?) async throws -> [OutboxRecord] {
        state.withLock { s in
            Array(s.outbox.filter { $0.id > after && (sagaId == nil || $0.key == sagaId!.uuidString) }.prefix(limit))
        }
    }

    public func markPublished(ids: [Int64], at: Date) async throws {
        state.withLock { s in
            for i in s.outbox.indices where ids.contains(s.outbox[i].id) && s.outbox[i].publishedAt == nil {
                s.outbox[i].publishedAt = at
            }
        }
    }

    // MARK: PaymentLedger

    public func payment(idempotencyKey: String) async throws -> PaymentRecord? { state.withLock { $0.payments[idempotencyKey] } }

    public func insertIfAbsent(_ record: PaymentRecord) async throws -> (record: PaymentRecord, inserted: Bool) {
        state.withLock { s in
            if let existing = s.payments[record.idempotencyKey] { return (existing, false) }
            var stored = record
            stored.createdAt = Millis.date(Millis.from(record.createdAt))
            stored.updatedAt = Millis.date(Millis.from(record.updatedAt))
            s.payments[record.idempotencyKey] = stored
            return (stored, true)
        }
    }

    public func markRefunded(idempotencyKey: String, at: Date) async throws -> PaymentRecord? {
        state.withLock { s in
            if s.payments[idempotencyKey]?.status == .charged {
                s.payments[idempotencyKey]?.status = .refunded
                s.payments[idempotencyKey]?.updatedAt = at
            }
            return s.payments[idempotencyKey]
        }
    }

    public func chargedTotals() async throws -> (count: Int, amountMinor: Int64) {
        state.withLock { s in
            let charged = s.payments.values.filter { $0.status == .charged }
            return (charged.count, charged.reduce(0) { $0 + $1.amountMinor })
        }
    }
}
