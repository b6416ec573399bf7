import Foundation
import StorefrontCore
import Testing

/// The contract every `SagaStore` + `OutboxStore` adapter must satisfy. `products` must share its database.
public enum SagaStoreContract {
    static let now = Date(timeIntervalSince1970: 1_760_000_000)

    static func newSaga(_ productId: Int64, qty: Int64 = 2, key: String? = nil, lease: Duration = .seconds(30)) -> NewSaga {
        NewSaga(idempotencyKey: key, productId: productId, qty: qty, amountMinor: 3998, currency: "USD", mode: .lock,
                owner: "app-1", lease: lease)
    }
    static let app1 = SagaFence(owner: "app-1", epoch: 1)

    static func step(_ state: SagaState) -> SagaTransition {
        guard case .apply(let t) = SagaPlan.next(state, .forward) else { fatalError("no forward transition from \(state)") }
        return t
    }

    public static func run(products: any ProductStore, sagas: any SagaStore & OutboxStore) async throws {
        try await forwardPath(products: products, sagas: sagas)
        try await guards(products: products, sagas: sagas)
        try await compensation(products: products, sagas: sagas)
        try await chains(products: products, sagas: sagas)
        try await leases(products: products, sagas: sagas)
        try await attention(products: products, sagas: sagas)
        try await guardedByWhatTheCallerHolds(products: products, sagas: sagas)
        try await concurrentOpenings(products: products, sagas: sagas)
    }

    /// Many openings of one product at once (an engine may put them in one transaction): each gets its own
    /// answer. Two pairs share a key (one of each pair is created, the other finds it); 38 sagas for 25 units:
    /// exactly 25 reserve and order (distinct order ids, 25 units held, stock 0), 13 open already failed for
    /// stock; every saga's timeline and events are its own, in sequence. Then 40 that all fit: all ordered.
    static func concurrentOpenings(products: any ProductStore, sagas: any SagaStore & OutboxStore) async throws {
        let p = try await products.create(ProductStoreContract.mug("saga-crowd", stock: 25), now: now)
        let keys: [String?] = (0..<40).map { i in i < 4 ? "crowd-\(i % 2)" : (i % 3 == 0 ? "crowd-own-\(i)" : nil) }
        let answers = try await withThrowingTaskGroup(of: (Int, BeginResult).self) { group in
            for (i, key) in keys.enumerated() {
                group.addTask {
                    (i, try await sagas.begin(newSaga(p.id, qty: 1, key: key), then: SagaPlan.chain(from: .started, .forward), now: now))
                }
            }
            return try await group.reduce(into: [Int: BeginResult]()) { $0[$1.0] = $1.1 }
        }
        var created: [Saga] = []
        var existing: [Saga] = []
        for (_, answer) in answers {
            switch answer {
            case .created(let s): created.append(s)
            case .existing(let s): existing.append(s)
            }
        }
        #expect(created.count == 38 && existing.count == 2, "\(created.count) created, \(existing.count) existing")
        #expect(Set(existing.map(\.idempotencyKey)) == ["crowd-0", "crowd-1"])
        #expect(Set(existing.map(\.id)).isSubset(of: Set(created.map(\.id))), "a key's second opening answers with the first's saga")
        let ordered = created.filter { $0.state == .orderCreated }
        let refused = created.filter { $0.state == .failed }
        #expect(ordered.count == 25 && refused.count == 13, "\(ordered.count) ordered, \(refused.count) refused")
        #expect(refused.allSatisfy { $0.failureCode == .insufficientStock && $0.orderId == nil })
        #expect(Set(ordered.compactMap(\.orderId)).count == 25)
        #expect(try await products.product(id: p.id, consistency: .primary)?.stock == 0)
        #expect(try await products.unitsHeld(productId: p.id) == 25)
        for saga in created {
            let stored = try #require(try await sagas.saga(id: saga.id))
            #expect(stored.state == saga.state && stored.orderId == saga.orderId && stored.idempotencyKey == saga.idempotencyKey
                    && stored.eventSequence == saga.eventSequence)
            let steps = try await sagas.steps(sagaId: saga.id).map(\.name)
            let events = try await sagas.records(after: 0, limit: 100, sagaId: saga.id).map { try SagaEvent.decode($0.payload) }
            #expect(events.map(\.sequence) == Array(1...saga.eventSequence))
            #expect(events.allSatisfy { $0.sagaId == saga.id })
            if saga.state == .orderCreated {
                #expect(steps == [.startSaga, .reserveInventory, .createOrder])
                #expect(events.map(\.type) == [.sagaStarted, .inventoryReserved, .orderCreated])
                #expect(events.last?.orderId == saga.orderId)
                #expect(try await sagas.order(id: saga.orderId ?? -1)?.sagaId == saga.id)
            } else {
                #expect(steps == [.startSaga, .reserveInventory])
                #expect(events.map(\.type) == [.sagaStarted, .sagaFailed])
            }
        }
        // Enough for all, no keys: every one reserves and orders (an engine that groups commits them together).
        let q = try await products.create(ProductStoreContract.mug("saga-crowd-2", stock: 100), now: now)
        let plenty = try await withThrowingTaskGroup(of: BeginResult.self) { group in
            for _ in 0..<40 {
                group.addTask { try await sagas.begin(newSaga(q.id, qty: 2), then: SagaPlan.chain(from: .started, .forward), now: now) }
            }
            return try await group.reduce(into: [BeginResult]()) { $0.append($1) }
        }
        let opened = plenty.compactMap { if case .created(let s) = $0, s.state == .orderCreated { s } else { nil } }
        #expect(opened.count == 40 && Set(opened.compactMap(\.orderId)).count == 40)
        #expect(try await products.product(id: q.id, consistency: .primary)?.stock == 20)
        #expect(try await products.unitsHeld(productId: q.id) == 80)
        for saga in opened {
            let events = try await sagas.records(after: 0, limit: 100, sagaId: saga.id).map { try SagaEvent.decode($0.payload) }
            #expect(events.map(\.type) == [.sagaStarted, .inventoryReserved, .orderCreated] && events.map(\.sequence) == [1, 2, 3])
            #expect(events.allSatisfy { $0.sagaId == saga.id && $0.qty == 2 } && events.last?.orderId == saga.orderId)
        }
    }

    /// `PurchaseLookup`: the product alone without a key or with an unknown one, the saga holding a known key
    /// (without the product: the answer is the saga's), nothing for an unknown product.
    public static func purchaseLookup(products: any ProductStore, sagas: any SagaStore & PurchaseLookup) async throws {
        let p = try await products.create(ProductStoreContract.mug("saga-lookup", stock: 3), now: now)
        let plain = try await sagas.purchaseLookup(productId: p.id, idempotencyKey: nil)
        #expect(plain.product?.id == p.id && plain.product?.priceMinor == p.priceMinor && plain.existing == nil)
        let unknownKey = try await sagas.purchaseLookup(productId: p.id, idempotencyKey: "lookup-new")
        #expect(unknownKey.product?.id == p.id && unknownKey.existing == nil)
        guard case .created(let s) = try await sagas.begin(newSaga(p.id, qty: 1, key: "lookup-known"), now: now) else { Issue.record("begin"); return }
        let known = try await sagas.purchaseLookup(productId: p.id, idempotencyKey: "lookup-known")
        #expect(known.existing?.id == s.id && known.existing?.idempotencyKey == "lookup-known" && known.product == nil)
        // the key is found whatever product the request names (the caller refuses a reused key)
        #expect(try await sagas.purchaseLookup(productId: p.id + 1000, idempotencyKey: "lookup-known").existing?.id == s.id)
        let missing = try await sagas.purchaseLookup(productId: p.id + 1000, idempotencyKey: "lookup-other")
        #expect(missing.product == nil && missing.existing == nil)
    }

    /// For `orderIDs`'s `insertOrder` on a SQL engine: an order row with the given id (parameter 1) for the saga
    /// (parameter 2), as a server from before migration 007 would have written it.
    public static let insertOrderSQL = """
        INSERT INTO orders (id, saga_id, product_id, qty, amount_minor, currency, status, created_at, updated_at)
        SELECT ?, id, product_id, qty, amount_minor, currency, 'PENDING', created_at, updated_at FROM sagas WHERE id = ?
        """

    /// Order ids from blocks (SQL stores): `allocators` (one per server, small blocks) drawing at once hand out
    /// unique ids, all past every order that exists; after `rewind` (the block row set back, as a restore from an
    /// older backup would) a new store's order still gets an id past every existing order, and the purchase works.
    /// An id of the store's current block already taken (`insertOrder(id, sagaId)`: an older server's
    /// AUTO_INCREMENT order) costs no purchase: the rest of the block is dropped and the opening retried once.
    public static func orderIDs(products: any ProductStore, sagas: any SagaStore, allocators: [@Sendable () async throws -> Int64],
                                rewind: @Sendable () async throws -> Void, freshStore: () -> any SagaStore,
                                insertOrder: @Sendable (Int64, UUID) async throws -> Void) async throws {
        let p = try await products.create(ProductStoreContract.mug("order-ids", stock: 10), now: now)
        let chain = SagaPlan.chain(from: .started, .forward)
        #expect(chain.contains { $0.effect == .createOrder }, "the opening chain creates the order")
        guard case .created(let first) = try await sagas.begin(newSaga(p.id, qty: 1), then: chain, now: now) else { Issue.record("begin"); return }
        let existing = try #require(first.orderId)
        #expect(try await sagas.order(id: existing)?.sagaId == first.id, "the order row has the id the saga carries")
        let drawn = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for next in allocators {
                group.addTask { var ids: [Int64] = []; for _ in 0..<40 { ids.append(try await next()) }; return ids }
                group.addTask { var ids: [Int64] = []; for _ in 0..<40 { ids.append(try await next()) }; return ids }
            }
            return try await group.reduce(into: [Int64]()) { $0 += $1 }
        }
        #expect(drawn.count == allocators.count * 80)
        #expect(Set(drawn).count == drawn.count, "every id handed out once")
        #expect(drawn.allSatisfy { $0 > existing }, "past the order that existed")

        try await rewind()
        let store = freshStore()
        guard case .created(let second) = try await store.begin(newSaga(p.id, qty: 1), then: chain, now: now) else { Issue.record("begin after rewind"); return }
        let id = try #require(second.orderId)
        #expect(id > existing, "a block row set back still starts past every order")
        #expect(try await store.order(id: id)?.sagaId == second.id)
        #expect(second.state == .orderCreated)

        // The store's next id (id + 1, same block) is taken behind its back.
        guard case .created(let bare) = try await store.begin(newSaga(p.id, qty: 1), now: now) else { Issue.record("begin bare"); return }
        try await insertOrder(id + 1, bare.id)
        guard case .created(let third) = try await store.begin(newSaga(p.id, qty: 1, key: "order-ids-taken"), then: chain, now: now) else {
            Issue.record("begin with a taken id"); return
        }
        let thirdId = try #require(third.orderId)
        #expect(thirdId > id + 1, "an id from a new block, past the taken one")
        #expect(try await store.order(id: thirdId)?.sagaId == third.id)
        #expect(try await store.order(id: id + 1)?.sagaId == bare.id, "the taken id's order is untouched")
        #expect(try await products.product(id: p.id, consistency: .primary)?.stock == 10 - 3, "the failed attempt took no stock")
    }

    /// The relay's lease on a shared outbox (SQL stores): one holder at a time; renewed by its holder; free
    /// for another once released or lapsed (the database's clock: a real wait).
    public static func relayLease(_ outbox: any OutboxStore) async throws {
        let long = Duration.seconds(30)
        #expect(try await outbox.claimRelay(owner: "app-a", lease: long))
        #expect(try await outbox.claimRelay(owner: "app-b", lease: long) == false)
        #expect(try await outbox.claimRelay(owner: "app-a", lease: long), "renewed by its holder")
        try await outbox.releaseRelay(owner: "app-b")  // not the holder's: changes nothing
        #expect(try await outbox.claimRelay(owner: "app-b", lease: long) == false)
        try await outbox.releaseRelay(owner: "app-a")
        #expect(try await outbox.claimRelay(owner: "app-b", lease: long), "released: taken at once")
        #expect(try await outbox.claimRelay(owner: "app-a", lease: long) == false)
        // app-b renews for 50 ms and then stops (a server that died): the lease lapses and app-a takes it over
        #expect(try await outbox.claimRelay(owner: "app-b", lease: .milliseconds(50)))
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await outbox.claimRelay(owner: "app-a", lease: long))
        #expect(try await outbox.claimRelay(owner: "app-b", lease: long) == false)
    }

    /// `apply(_:to:)`, where a store may guard with the caller's copy of the saga instead of reading it: the same
    /// answers as `apply` whether the copy is current, outdated, fenced, or the effect is refused.
    static func guardedByWhatTheCallerHolds(products: any ProductStore, sagas: any SagaStore & OutboxStore) async throws {
        let p = try await products.create(ProductStoreContract.mug("saga-held", stock: 3), now: now)
        let opening = SagaPlan.chain(from: .started, .forward)
        guard case .created(let s) = try await sagas.begin(newSaga(p.id, qty: 1), then: opening, now: now) else { Issue.record("begin"); return }
        let closing = [SagaPlan.paymentSucceeded(reference: "ref-h")] + SagaPlan.chain(from: .paid, .forward)
        guard case .applied(let confirmed) = try await sagas.apply(closing, to: s, lease: .seconds(30), now: now) else {
            Issue.record("confirm from the held copy"); return
        }
        #expect(confirmed.state == .confirmed && confirmed.paymentRef == "ref-h" && confirmed.eventSequence == 5)
        #expect(try await sagas.saga(id: s.id)?.state == .confirmed)
        #expect(try await sagas.order(id: try #require(s.orderId))?.status == .confirmed)
        let events = try await sagas.records(after: 0, limit: 100, sagaId: s.id).map { try SagaEvent.decode($0.payload) }
        #expect(events.map(\.sequence) == [1, 2, 3, 4, 5])
        // the same copy again: the saga moved on, the step is stale and writes nothing
        guard case .stale(let current) = try await sagas.apply(closing, to: s, lease: .seconds(30), now: now) else {
            Issue.record("a step applied twice from an outdated copy"); return
        }
        #expect(current.state == .confirmed)
        #expect(try await sagas.records(after: 0, limit: 100, sagaId: s.id).count == 5)

        // a copy whose event sequence is behind the row (same state and fence): applied on the row as it is
        guard case .created(let s2) = try await sagas.begin(newSaga(p.id, qty: 1), now: now) else { Issue.record("begin 2"); return }
        var behind = s2
        behind.eventSequence += 7
        guard case .applied(let reserved) = try await sagas.apply([step(.started)], to: behind, lease: .seconds(30), now: now) else {
            Issue.record("reserve from a copy with another event sequence"); return
        }
        #expect(reserved.state == .reserved && reserved.eventSequence == 2)
        #expect(try await sagas.records(after: 0, limit: 100, sagaId: s2.id).map { try SagaEvent.decode($0.payload).sequence } == [1, 2])

        // too little stock: rejected, nothing written
        guard case .created(let s3) = try await sagas.begin(newSaga(p.id, qty: 2), now: now) else { Issue.record("begin 3"); return }
        guard case .rejected(let still) = try await sagas.apply([step(.started)], to: s3, lease: .seconds(30), now: now) else {
            Issue.record("oversold from a held copy"); return
        }
        #expect(still.state == .started)
        #expect(try await sagas.saga(id: s3.id)?.state == .started)
        #expect(try await products.product(id: p.id, consistency: .primary)?.stock == 1)

        // taken over: the former owner's copy is fenced; the new owner's applies
        guard case .created(let s4) = try await sagas.begin(newSaga(p.id, qty: 1, lease: .milliseconds(1)), now: now) else { return }
        try await Task.sleep(for: .milliseconds(20))
        let claimed = try #require(try await sagas.claimExpired(owner: "app-2", lease: .seconds(30), limit: 100, now: now).first { $0.id == s4.id })
        let compensate = SagaPlan.next(.started, .compensate(code: "x", reason: "y")).transition!
        guard case .fenced(let seen) = try await sagas.apply([compensate], to: s4, lease: .seconds(30), now: now) else {
            Issue.record("the former owner's copy was applied"); return
        }
        #expect(seen.fence == claimed.fence)
        guard case .applied(let failed) = try await sagas.apply([compensate], to: claimed, lease: .seconds(30), now: now) else {
            Issue.record("the new owner's copy was refused"); return
        }
        #expect(failed.state == .failed)
        #expect(try await sagas.steps(sagaId: s4.id).map(\.name) == [.startSaga, .failSaga])

        // the same for a chain that creates the order: the former owner's copy writes no order (it is fenced
        // before its order row could collide with the new owner's), the new owner's creates one, and its own
        // copy replayed is stale — one order
        guard case .created(let s5) = try await sagas.begin(newSaga(p.id, qty: 1, lease: .milliseconds(1)), then: [step(.started)], now: now)
        else { Issue.record("begin 5"); return }
        #expect(s5.state == .reserved)
        try await Task.sleep(for: .milliseconds(20))
        let taken = try #require(try await sagas.claimExpired(owner: "app-2", lease: .seconds(30), limit: 100, now: now).first { $0.id == s5.id })
        guard case .fenced = try await sagas.apply([step(.reserved)], to: s5, lease: .seconds(30), now: now) else {
            Issue.record("the former owner created the order"); return
        }
        #expect(try await sagas.saga(id: s5.id)?.orderId == nil)
        guard case .applied(let ordered) = try await sagas.apply([step(.reserved)], to: taken, lease: .seconds(30), now: now) else {
            Issue.record("the new owner's copy could not create the order"); return
        }
        let orderId = try #require(ordered.orderId)
        #expect(try await sagas.order(id: orderId)?.sagaId == s5.id)
        guard case .stale = try await sagas.apply([step(.reserved)], to: taken, lease: .seconds(30), now: now) else {
            Issue.record("the order was created twice"); return
        }
        #expect(try await sagas.saga(id: s5.id)?.orderId == orderId)
        #expect(try await sagas.steps(sagaId: s5.id).map(\.name) == [.startSaga, .reserveInventory, .createOrder])
    }

    /// Recovery's backoff and its last resort: a saga left to a person, and the operator's retry and take-over.
    static func attention(products: any ProductStore, sagas: any SagaStore & OutboxStore) async throws {
        let p = try await products.create(ProductStoreContract.mug("saga-attention", stock: 5), now: now)
        guard case .created(let s) = try await sagas.begin(newSaga(p.id, qty: 1, lease: .milliseconds(1)), now: now) else { return }
        try await Task.sleep(for: .milliseconds(20))
        let claimed = try #require(try await sagas.claimExpired(owner: "app-2", lease: .milliseconds(1), limit: 100, now: now).first { $0.id == s.id })
        // a failed attempt postpones the next one (by the store's clock); a stale owner cannot postpone
        #expect(try await sagas.postpone(sagaId: s.id, fence: app1, delay: .seconds(60), error: "stale", now: now) == false)
        #expect(try await sagas.postpone(sagaId: s.id, fence: claimed.fence, delay: .seconds(60), error: "provider hung", now: now))
        try await Task.sleep(for: .milliseconds(20))
        #expect(try await sagas.claimExpired(owner: "app-3", lease: .seconds(1), limit: 100, now: now).contains { $0.id == s.id } == false)
        #expect(try await sagas.saga(id: s.id)?.lastError == "provider hung")
        // flagged: never claimed, listed, still unfinished (its units stay reserved)
        #expect(try await sagas.flagForAttention(sagaId: s.id, fence: claimed.fence, error: "gave up", now: now))
        #expect(try await sagas.retry(sagaId: UUID(), force: true, now: now) == nil)
        let listed = try await sagas.unfinished(needingAttention: true, limit: 1000)
        #expect(listed.contains { $0.id == s.id && $0.needsAttention && $0.lastError == "gave up" })
        #expect(try await sagas.unfinished(needingAttention: false, limit: 1000).contains { $0.id == s.id })
        // the operator retries: claimable at once, attempts from zero
        let retried = try #require(try await sagas.retry(sagaId: s.id, force: false, now: now))
        #expect(!retried.needsAttention && retried.attempts == 0)
        #expect(try await sagas.unfinished(needingAttention: true, limit: 1000).contains { $0.id == s.id } == false)
        let again = try #require(try await sagas.claimExpired(owner: "app-3", lease: .seconds(30), limit: 100, now: now).first { $0.id == s.id })
        #expect(again.epoch == claimed.epoch + 1 && again.attempts == 1)
        // a saga a live server holds is refused to the operator, unless forced; then the holder is fenced
        #expect(try await sagas.take(sagaId: s.id, owner: "operator", lease: .seconds(30), force: false, now: now) == nil)
        #expect(try await sagas.retry(sagaId: s.id, force: false, now: now) == nil)
        let taken = try #require(try await sagas.take(sagaId: s.id, owner: "operator", lease: .seconds(30), force: true, now: now))
        #expect(taken.owner == "operator" && taken.epoch == again.epoch + 1)
        let compensate = SagaPlan.next(.started, .compensate(code: "resolved_by_operator", reason: "by hand")).transition!
        guard case .fenced = try await sagas.apply(compensate, sagaId: s.id, fence: again.fence, lease: .seconds(1), now: now) else {
            Issue.record("the former holder wrote after the operator took over"); return
        }
        guard case .applied(let done) = try await sagas.apply(compensate, sagaId: s.id, fence: taken.fence, lease: .seconds(1), now: now) else {
            Issue.record("the operator could not write"); return
        }
        #expect(done.state == .failed)
        #expect(try await sagas.take(sagaId: s.id, owner: "operator", lease: .seconds(1), force: true, now: now) == nil, "finished sagas are not taken")
    }

    static func apply(_ sagas: any SagaStore, _ t: SagaTransition, _ id: UUID) async throws -> TransitionResult {
        try await sagas.apply(t, sagaId: id, fence: app1, lease: .seconds(30), now: now)
    }

    static func forwardPath(products: any ProductStore, sagas: any SagaStore & OutboxStore) async throws {
        let p = try await products.create(ProductStoreContract.mug("saga-fwd", stock: 10), now: now)
        guard case .created(let started) = try await sagas.begin(newSaga(p.id, key: "key-1"), now: now) else {
            Issue.record("begin did not create"); return
        }
        #expect(started.state == .started && started.eventSequence == 1 && started.idempotencyKey == "key-1")
        // same key → the existing saga, nothing new
        guard case .existing(let again) = try await sagas.begin(newSaga(p.id, key: "key-1"), now: now) else {
            Issue.record("same key created a second saga"); return
        }
        #expect(again.id == started.id)
        #expect(try await sagas.saga(idempotencyKey: "key-1")?.id == started.id)

        guard case .applied(let reserved) = try await apply(sagas, step(.started), started.id) else { Issue.record("reserve"); return }
        #expect(reserved.state == .reserved)
        #expect(try await products.product(id: p.id, consistency: .primary)?.stock == 8, "a reservation takes the units out of stock")
        #expect(try await products.unitsHeld(productId: p.id) == 2)
        guard case .applied(let ordered) = try await apply(sagas, step(.reserved), started.id) else { Issue.record("order"); return }
        let orderId = try #require(ordered.orderId)
        #expect(try await sagas.order(id: orderId)?.status == .pending)
        #expect(try await sagas.order(id: orderId)?.amountMinor == 3998)
        guard case .applied(let paid) = try await apply(sagas, SagaPlan.paymentSucceeded(reference: "ref-9"), started.id) else {
            Issue.record("pay"); return
        }
        #expect(paid.paymentRef == "ref-9" && paid.state == .paid)
        guard case .applied(let confirmed) = try await apply(sagas, step(.paid), started.id) else { Issue.record("confirm"); return }
        #expect(confirmed.state == .confirmed)
        #expect(try await sagas.order(id: orderId)?.status == .confirmed)
        let after = try #require(try await products.product(id: p.id, consistency: .primary))
        #expect(after.stock == 8)
        #expect(try await products.unitsHeld(productId: p.id) == 0, "sold, no longer held")

        // timeline and outbox: one entry per transition, contiguous sequences, payloads decode
        let steps = try await sagas.steps(sagaId: started.id)
        #expect(steps.map(\.name) == [.startSaga, .reserveInventory, .createOrder, .processPayment, .confirmOrder])
        let events = try await sagas.records(after: 0, limit: 100, sagaId: started.id).map { try SagaEvent.decode($0.payload) }
        #expect(events.map(\.type) == [.sagaStarted, .inventoryReserved, .orderCreated, .paymentProcessed, .orderConfirmed])
        #expect(events.map(\.sequence) == [1, 2, 3, 4, 5])
        #expect(Set(events.map(\.eventId)).count == 5)
        #expect(events.last?.orderId == orderId)
        #expect(events.allSatisfy { $0.sagaId == started.id && $0.qty == 2 && $0.amountMinor == 3998 })
    }

    static func guards(products: any ProductStore, sagas: any SagaStore & OutboxStore) async throws {
        let p = try await products.create(ProductStoreContract.mug("saga-guard", stock: 3), now: now)
        guard case .created(let s) = try await sagas.begin(newSaga(p.id, qty: 2), now: now) else { return }
        _ = try await apply(sagas, step(.started), s.id)
        let outboxBefore = try await sagas.records(after: 0, limit: 1000, sagaId: s.id).count
        // duplicate delivery of the same step: stale, nothing written
        guard case .stale(let current) = try await apply(sagas, step(.started), s.id) else { Issue.record("duplicate applied"); return }
        #expect(current.state == .reserved)
        #expect(try await products.product(id: p.id, consistency: .primary)?.stock == 1)
        #expect(try await products.unitsHeld(productId: p.id) == 2)
        #expect(try await sagas.records(after: 0, limit: 1000, sagaId: s.id).count == outboxBefore)

        // a second saga asking for more than is available is rejected with nothing written
        guard case .created(let s2) = try await sagas.begin(newSaga(p.id, qty: 2), now: now) else { return }
        guard case .rejected = try await apply(sagas, step(.started), s2.id) else { Issue.record("oversold"); return }
        #expect(try await products.product(id: p.id, consistency: .primary)?.stock == 1)
        #expect(try await products.unitsHeld(productId: p.id) == 2)
        #expect(try await sagas.saga(id: s2.id)?.state == .started)
        guard case .applied(let failed) = try await apply(sagas, SagaPlan.insufficientStock(available: 1), s2.id) else { return }
        #expect(failed.state == .failed && failed.failureCode == "insufficient_stock")
    }

    static func compensation(products: any ProductStore, sagas: any SagaStore & OutboxStore) async throws {
        let p = try await products.create(ProductStoreContract.mug("saga-comp", stock: 5), now: now)
        guard case .created(let s) = try await sagas.begin(newSaga(p.id), now: now) else { return }
        _ = try await apply(sagas, step(.started), s.id)
        _ = try await apply(sagas, step(.reserved), s.id)
        let direction = SagaDirection.compensate(code: "payment_declined", reason: "card declined")
        guard case .apply(let start) = SagaPlan.next(.orderCreated, direction),
              case .applied(let refunding) = try await apply(sagas, start, s.id) else { Issue.record("start compensation"); return }
        #expect(refunding.state == .refunding && refunding.failureCode == "payment_declined")
        // once compensation started, the payment can no longer be recorded
        guard case .stale = try await apply(sagas, SagaPlan.paymentSucceeded(reference: "late"), s.id) else { Issue.record("paid after refunding"); return }
        _ = try await apply(sagas, SagaPlan.paymentReversed(refunded: false, code: "payment_declined", reason: "card declined"), s.id)
        guard case .apply(let cancel) = SagaPlan.next(.paymentReversed, direction) else { return }
        _ = try await apply(sagas, cancel, s.id)
        guard case .apply(let release) = SagaPlan.next(.orderCancelled, direction) else { return }
        guard case .applied(let done) = try await apply(sagas, release, s.id) else { Issue.record("release"); return }
        #expect(done.state == .compensated && done.failureCode == "payment_declined")
        #expect(try await sagas.order(id: try #require(done.orderId))?.status == .cancelled)
        let product = try #require(try await products.product(id: p.id, consistency: .primary))
        #expect(product.stock == 5)
        #expect(try await products.unitsHeld(productId: p.id) == 0)
        // a late forward step after compensation (hanging request) changes nothing
        guard case .stale = try await apply(sagas, step(.reserved), s.id) else { Issue.record("late step applied"); return }
        #expect(try await products.product(id: p.id, consistency: .primary)?.stock == 5)
        let types = try await sagas.records(after: 0, limit: 100, sagaId: s.id).map { try SagaEvent.decode($0.payload).type }
        #expect(types == [.sagaStarted, .inventoryReserved, .orderCreated, .orderCancelled, .inventoryReleased, .sagaCompensated])
    }

    /// Consecutive transitions in one transaction: opened through the order, paid through the confirmation,
    /// unwound in one; a refused reservation anywhere in a chain writes nothing.
    static func chains(products: any ProductStore, sagas: any SagaStore & OutboxStore) async throws {
        let p = try await products.create(ProductStoreContract.mug("saga-chain", stock: 3), now: now)
        let opening = SagaPlan.chain(from: .started, .forward)
        #expect(opening.map(\.step) == [.reserveInventory, .createOrder])
        guard case .created(let s) = try await sagas.begin(newSaga(p.id, qty: 2), then: opening, now: now) else { Issue.record("begin"); return }
        #expect(s.state == .orderCreated && s.eventSequence == 3)
        let orderId = try #require(s.orderId)
        #expect(try await sagas.order(id: orderId)?.status == .pending)
        #expect(try await products.product(id: p.id, consistency: .primary)?.stock == 1)
        #expect(try await sagas.steps(sagaId: s.id).map(\.name) == [.startSaga, .reserveInventory, .createOrder])

        // too little left: the chained begin opens the saga already failed, and a chain from STARTED writes nothing
        guard case .created(let refused) = try await sagas.begin(newSaga(p.id, qty: 2), then: opening, now: now) else { Issue.record("begin 2"); return }
        #expect(refused.state == .failed && refused.failureCode == "insufficient_stock" && refused.orderId == nil && refused.eventSequence == 2)
        #expect(try await sagas.steps(sagaId: refused.id).map(\.name) == [.startSaga, .reserveInventory])
        guard case .created(let s2) = try await sagas.begin(newSaga(p.id, qty: 2), now: now) else { Issue.record("begin 3"); return }
        guard case .rejected(let still) = try await sagas.apply(opening, sagaId: s2.id, fence: app1, lease: .seconds(30), now: now) else {
            Issue.record("oversold through a chain"); return
        }
        #expect(still.state == .started && still.orderId == nil)
        #expect(try await sagas.saga(id: s2.id)?.state == .started)
        #expect(try await sagas.steps(sagaId: s2.id).map(\.name) == [.startSaga], "nothing of the refused chain was written")
        #expect(try await sagas.records(after: 0, limit: 100, sagaId: s2.id).count == 1)
        #expect(try await products.product(id: p.id, consistency: .primary)?.stock == 1)

        // paid and confirmed in one
        let closing = [SagaPlan.paymentSucceeded(reference: "ref-c")] + SagaPlan.chain(from: .paid, .forward)
        guard case .applied(let confirmed) = try await sagas.apply(closing, sagaId: s.id, fence: app1, lease: .seconds(30), now: now) else {
            Issue.record("confirm chain"); return
        }
        #expect(confirmed.state == .confirmed && confirmed.paymentRef == "ref-c")
        #expect(try await sagas.order(id: orderId)?.status == .confirmed)
        #expect(try await products.product(id: p.id, consistency: .primary)?.stock == 1, "a confirmation does not touch stock")
        #expect(try await products.unitsHeld(productId: p.id) == 0)
        let events = try await sagas.records(after: 0, limit: 100, sagaId: s.id).map { try SagaEvent.decode($0.payload) }
        #expect(events.map(\.type) == [.sagaStarted, .inventoryReserved, .orderCreated, .paymentProcessed, .orderConfirmed])
        #expect(events.map(\.sequence) == [1, 2, 3, 4, 5])
        #expect(events.dropFirst(2).allSatisfy { $0.orderId == orderId })
        // a chain is applied only from its first state
        guard case .stale = try await sagas.apply(closing, sagaId: s.id, fence: app1, lease: .seconds(30), now: now) else {
            Issue.record("chain applied twice"); return
        }

        // unwound in one: refund recorded, order cancelled, units back
        guard case .created(let s3) = try await sagas.begin(newSaga(p.id, qty: 1), then: opening, now: now) else { return }
        #expect(s3.state == .orderCreated)
        #expect(try await products.product(id: p.id, consistency: .primary)?.stock == 0)
        let direction = SagaDirection.compensate(code: "payment_declined", reason: "card declined")
        _ = try await sagas.apply(SagaPlan.chain(from: .orderCreated, direction), sagaId: s3.id, fence: app1, lease: .seconds(30), now: now)
        let reversed = SagaPlan.paymentReversed(refunded: false, code: "payment_declined", reason: "card declined")
        let unwinding = [reversed] + SagaPlan.chain(from: reversed.to, direction)
        #expect(unwinding.map(\.step) == [.refundPayment, .cancelOrder, .releaseInventory])
        guard case .applied(let done) = try await sagas.apply(unwinding, sagaId: s3.id, fence: app1, lease: .seconds(30), now: now) else {
            Issue.record("unwind chain"); return
        }
        #expect(done.state == .compensated && done.failureCode == "payment_declined")
        #expect(try await products.product(id: p.id, consistency: .primary)?.stock == 1)
        #expect(try await products.unitsHeld(productId: p.id) == 0)
    }

    /// Leases are judged by the store's clock: `now` arguments (here far in the future) never expire one.
    static func leases(products: any ProductStore, sagas: any SagaStore & OutboxStore) async throws {
        let p = try await products.create(ProductStoreContract.mug("saga-lease", stock: 5), now: now)
        let future = Date().addingTimeInterval(86_400)
        guard case .created(let held) = try await sagas.begin(newSaga(p.id, qty: 1), now: now) else { return }
        guard case .created(let s) = try await sagas.begin(newSaga(p.id, qty: 1, lease: .milliseconds(300)), now: now) else { return }
        #expect(s.fence == app1)
        #expect(try await sagas.countUnfinished() >= 2)
        // not yet expired: nothing to claim, whatever the caller's clock says
        #expect(try await sagas.claimExpired(owner: "app-2", lease: .seconds(30), limit: 100, now: future)
            .contains { [held.id, s.id].contains($0.id) } == false)
        // the owner renews: the first deadline passes but the lease holds; an intruder renews nothing
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await sagas.renewLeases([s.id: 1], owner: "app-1", lease: .milliseconds(500)) == [])
        #expect(try await sagas.renewLeases([s.id: 1], owner: "intruder", lease: .milliseconds(1)) == [s.id])
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await sagas.claimExpired(owner: "app-2", lease: .seconds(30), limit: 100, now: now).contains { $0.id == s.id } == false)
        // expired: claimed once, by one instance, with the next epoch
        try await Task.sleep(for: .milliseconds(400))
        let claimed = try await sagas.claimExpired(owner: "app-2", lease: .seconds(30), limit: 100, now: now)
        let mine = try #require(claimed.first { $0.id == s.id })
        #expect(mine.owner == "app-2" && mine.attempts == 1 && mine.epoch == 2)
        #expect(claimed.contains { $0.id == held.id } == false)
        #expect(try await sagas.claimExpired(owner: "app-3", lease: .seconds(30), limit: 100, now: now).contains { $0.id == s.id } == false)
        // the former owner is fenced: its step and its renewal change nothing
        let compensate = SagaPlan.next(.started, .compensate(code: "x", reason: "y")).transition!
        guard case .fenced(let seen) = try await sagas.apply(compensate, sagaId: s.id, fence: app1, lease: .seconds(30), now: now) else {
            Issue.record("a step of the former owner was applied"); return
        }
        #expect(seen.fence == mine.fence && seen.state == .started)
        #expect(try await sagas.renewLeases([s.id: 1], owner: "app-1", lease: .seconds(30)) == [s.id])
        // the same owner at an older epoch (a stalled task of a process that re-claimed its own saga) is fenced too
        guard case .fenced = try await sagas.apply(compensate, sagaId: s.id, fence: SagaFence(owner: "app-2", epoch: 1), lease: .seconds(30),
                                                   now: now) else {
            Issue.record("a stale epoch was applied"); return
        }
        // terminal sagas are never claimed
        guard case .applied = try await sagas.apply(compensate, sagaId: s.id, fence: mine.fence, lease: .zero, now: now) else {
            Issue.record("the new owner was refused"); return
        }
        try await Task.sleep(for: .milliseconds(20))
        #expect(try await sagas.claimExpired(owner: "app-3", lease: .seconds(30), limit: 100, now: future).contains { $0.id == s.id } == false)

        // outbox marking
        let pending = try await sagas.unpublished(limit: 1000)
        #expect(!pending.isEmpty)
        #expect(pending.map(\.id) == pending.map(\.id).sorted())
        try await sagas.markPublished(ids: pending.prefix(2).map(\.id), at: now)
        let rest = try await sagas.unpublished(limit: 1000)
        #expect(rest.count == pending.count - min(2, pending.count))

        // the backlog: counted (up to the cap), and the oldest unpublished record's time
        let backlog = try await sagas.backlog(cap: 1000)
        #expect(backlog.count == rest.count)
        #expect(backlog.oldestCreatedAt.map(Millis.from) == rest.first.map { Millis.from($0.createdAt) })
        #expect(try await sagas.backlog(cap: 1).count == min(1, rest.count), "capped")
        try await sagas.markPublished(ids: rest.map(\.id), at: now)
        let latest = try await sagas.records(after: 0, limit: 100_000, sagaId: nil).last?.id
        #expect(latest != nil && backlog.latestId == latest)
        #expect(try await sagas.backlog(cap: 1000) == OutboxBacklog(count: 0, oldestCreatedAt: nil, latestId: latest))
    }
}

extension SagaPlan.Action {
    var transition: SagaTransition? {
        if case .apply(let t) = self { return t }
        return nil
    }
}
