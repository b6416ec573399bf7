import Foundation
import Metrics
import StorefrontCore
import Synchronization

/// `SagaStore` and `OutboxStore` on the primary: consecutive saga steps are one transaction that locks the saga
/// row, checks the expected state, performs the effects (the conditional reserve update of DESIGN §2 included),
/// appends the timeline entries and writes the outbox events. A purchase that ends confirmed is two
/// transactions here (open + reserve + order; payment recorded + confirm) and touches its product row once.
/// Copies share their order id blocks; keep one store per server (each new one reserves blocks of its own).
public struct SQLSagaStore: SagaStore, OutboxStore, PurchaseLookup {
    let database: any SQLExecutor
    let topic: String
    let orderIDs: SQLOrderIDs
    /// Openings that reserve one product's stock, grouped while an earlier one of that product is in flight
    /// (nil: each opening is its own transaction).
    let openings: KeyedGroups<Int64, Opening, BeginResult>?
    let grouped: SQLGroupedOpenings

    /// `groupOpenings`: openings that reserve the same product while one of its openings is in flight wait for
    /// it, then go together as one transaction (up to `maxOpeningGroup`): the product's row is locked once
    /// for the whole group, where each opening would lock it through its own commit (with semi-synchronous
    /// replication, through the replica's acknowledgement). For an engine whose commits are round trips.
    public init(database: any SQLExecutor, topic: String = SagaEvent.defaultTopic, orderIDs: SQLOrderIDs? = nil,
                groupOpenings: Bool = false) {
        self.database = database
        self.topic = topic
        self.orderIDs = orderIDs ?? SQLOrderIDs(database: database)
        openings = groupOpenings ? KeyedGroups(maxGroup: Self.maxOpeningGroup) : nil
        grouped = SQLGroupedOpenings()
    }

    /// The most openings one transaction carries.
    public static let maxOpeningGroup = 32

    /// Openings that went in groups so far: how many groups ran, and how many openings shared one.
    public var openingGroupCounts: (groups: Int, itemsGrouped: Int) { openings?.counts ?? (0, 0) }

    /// Openings of groups of two or more: committed in a group (`together`, those opened failed for stock by a
    /// split included), or one by one (`alone`).
    public var groupedOpeningOutcomes: (together: Int, alone: Int) {
        (grouped.together.load(ordering: .relaxed), grouped.alone.load(ordering: .relaxed))
    }

    /// One `begin` waiting for its group.
    struct Opening: Sendable {
        let new: NewSaga
        let chain: [SagaTransition]
        let now: Date
    }

    static let terminalList = SagaState.terminal.map { "'\($0.rawValue)'" }.joined(separator: ", ")
    /// States whose saga holds its units (taken out of stock, not yet sold or given back): an IN list, so the
    /// `(product_id, state)` index gives point ranges and a hot product's finished sagas are not walked.
    static let holdingList = SagaState.allCases.filter { !$0.isTerminal && $0 != .started }.map { "'\($0.rawValue)'" }
        .joined(separator: ", ")

    static func saga(_ row: SQLRow) throws -> Saga {
        Saga(
            id: try row.uuid("id"), idempotencyKey: try row.optionalText("idempotency_key"), productId: try row.int("product_id"),
            qty: try row.int("qty"), amountMinor: try row.int("amount_minor"), currency: try row.text("currency"),
            mode: try row.value("mode", fallback: .lock), state: try row.value("state"),
            orderId: try row.optionalInt("order_id"), paymentRef: try row.optionalText("payment_ref"), attempts: Int(try row.int("attempts")),
            owner: try row.text("owner"), epoch: Int(try row.int("epoch")), leaseUntil: try row.date("lease_until"), failureCode: try row.optionalText("failure_code").map(SagaFailureCode.init(rawValue:)),
            lastError: try row.optionalText("last_error"), needsAttention: try row.int("needs_attention") != 0, eventSequence: Int(try row.int("event_seq")),
            createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"))
    }

    static func fetchSaga(_ s: any SQLStatements, id: UUID, lock: String = "") throws -> Saga? {
        try s.row("SELECT * FROM sagas WHERE id = ?\(lock)", [id]).map(saga)
    }

    /// `lease_until` for a lease of `lease` from the database's now.
    var leaseEnd: String { "\(database.dialect.nowMillis) + ?" }

    public func begin(_ new: NewSaga, then chain: [SagaTransition], now: Date) async throws -> BeginResult {
        guard let openings, chain.contains(where: { $0.effect == .reserveInventory }) else { return try await beginAlone(new, then: chain, now: now) }
        return try await openings.submit(Opening(new: new, chain: chain, now: now), key: new.productId) { group in
            await self.open(group)
        }
    }

    /// A group of openings of one product: one transaction for all (one INSERT per table, the product row's
    /// UPDATE once, for their total). If it cannot commit as a whole for a reason that concerns some of them,
    /// nothing of it is kept and:
    /// - too little stock for all: the product's stock is read and the openings split, in order, into those
    ///   it covers (one transaction again) and those it does not (opened failed for stock, one transaction,
    ///   without touching the product row), so a refusal near a sell-out costs a read and up to three
    ///   transactions, not two per opening one after another;
    /// - a taken idempotency key or order id (or anything the split could not commit): each is opened alone,
    ///   in order, as `begin` without groups would (created, the key's existing saga, or failed for stock).
    /// Any other failure (the database unreachable, the commit's outcome unknown) is every opening's.
    func open(_ group: [Opening]) async -> [Result<BeginResult, any Error>] {
        guard group.count > 1 else { return [await Self.result { try await beginAlone(group[0].new, then: group[0].chain, now: group[0].now) }] }
        return await attempt(group, chain: nil, splitOnStock: true)
    }

    /// `openings` as one transaction (each with its own chain, or all with `chain`); refused for stock and
    /// `splitOnStock`: split by the product's stock; refused otherwise: one by one.
    private func attempt(_ openings: [Opening], chain: [SagaTransition]?, splitOnStock: Bool) async -> [Result<BeginResult, any Error>] {
        switch await together(openings, chain: chain) {
        case .opened(let sagas):
            grouped.count(together: openings.count)
            return sagas.map { .success(.created($0)) }
        case .failed(let error):
            return openings.map { _ in .failure(error) }
        case .refused(stock: true) where splitOnStock:
            return await split(openings)
        case .refused:
            grouped.count(alone: openings.count)
            return await oneByOne(openings)
        }
    }

    /// A group whose total the stock did not cover: the openings the stock (read on the primary) covers, in
    /// order, together; the others opened failed for stock, together.
    private func split(_ group: [Opening]) async -> [Result<BeginResult, any Error>] {
        let productId = group[0].new.productId
        let read: Int64?
        do {
            read = try await database.read(.primary) { s in try SQLProductStore.fetch(s, id: productId)?.stock }
        } catch {
            return group.map { _ in .failure(error) }  // the primary unreachable: as the group's own failure
        }
        guard let stock = read, group.allSatisfy({ $0.new.qty > 0 }) else {
            grouped.count(alone: group.count)
            return await oneByOne(group)
        }
        var left = stock
        var covered: [Int] = [], short: [Int] = []
        for (index, opening) in group.enumerated() {
            if opening.new.qty <= left {
                covered.append(index)
                left -= opening.new.qty
            } else {
                short.append(index)
            }
        }
        var results = [Result<BeginResult, any Error>?](repeating: nil, count: group.count)
        for (part, chain) in [(covered, nil), (short, [SagaPlan.insufficientStock(available: nil)])] where !part.isEmpty {
            let answers = await attempt(part.map { group[$0] }, chain: chain, splitOnStock: false)
            for (index, answer) in zip(part, answers) { results[index] = answer }
        }
        return results.map { $0 ?? .failure(KeyedGroupsMissingResult()) }
    }

    enum GroupOutcome {
        case opened([Saga])
        /// Rolled back for a reason that concerns some of the openings: too little stock for all (`stock`), or a
        /// unique key taken.
        case refused(stock: Bool)
        case failed(any Error)
    }

    /// `openings` as one transaction, each with its own chain or all with `chain`.
    private func together(_ openings: [Opening], chain: [SagaTransition]?) async -> GroupOutcome {
        do {
            var orderIds: [Int64?] = []
            for opening in openings { orderIds.append(try await orderID(for: chain ?? opening.chain)) }
            let leaseEnd = leaseEnd
            return .opened(try await database.write { [topic, orderIds] s in
                let plans = try zip(openings, orderIds).map { opening, orderId in
                    try Self.plan(Self.opened(opening.new, now: opening.now), chain: chain ?? opening.chain,
                                  fence: SagaFence(owner: opening.new.owner, epoch: 1), lease: opening.new.lease, now: opening.now,
                                  orderId: orderId)
                }
                return try Self.perform(s, topic: topic, plans: plans, leaseEnd: leaseEnd, opening: true)
            })
        } catch is SQLUniqueViolation {
            return .refused(stock: false)
        } catch is EffectRefused {
            return .refused(stock: true)
        } catch {
            return .failed(error)
        }
    }

    private func oneByOne(_ openings: [Opening]) async -> [Result<BeginResult, any Error>] {
        var results: [Result<BeginResult, any Error>] = []
        for opening in openings {
            results.append(await Self.result { try await beginAlone(opening.new, then: opening.chain, now: opening.now) })
        }
        return results
    }

    private static func result<T>(_ body: () async throws -> T) async -> Result<T, any Error> {
        do { return .success(try await body()) } catch { return .failure(error) }
    }

    private func beginAlone(_ new: NewSaga, then chain: [SagaTransition], now: Date) async throws -> BeginResult {
        var attempt = 1
        while true {
            do {
                do {
                    return try await open(new, chain: chain, now: now)
                } catch is EffectRefused {
                    // Too little stock for the reservation: the saga is opened already failed, nothing held.
                    return try await open(new, chain: [SagaPlan.insufficientStock(available: nil)], now: now)
                }
            } catch let error as SQLUniqueViolation {
                if let key = new.idempotencyKey, let existing = try await saga(idempotencyKey: key) { return .existing(existing) }
                // Not the key: the order's id was taken (see `SQLOrderIDs.discardBlock`). Once more, from a new block.
                guard attempt == 1 else { throw error }
                orderIDs.discardBlock()
                attempt += 1
            }
        }
    }

    private func open(_ new: NewSaga, chain: [SagaTransition], now: Date) async throws -> BeginResult {
        let leaseEnd = leaseEnd
        let orderId = try await orderID(for: chain)
        return try await database.write { [topic] s in
            let work = Self.opened(new, now: now)
            return .created(try Self.perform(s, topic: topic, work: work, chain: chain, fence: work.saga.fence, lease: new.lease,
                                             leaseEnd: leaseEnd, now: now, orderId: orderId, opening: true))
        }
    }

    /// A new saga as its opening transaction starts it: started, its first timeline entry and event.
    static func opened(_ new: NewSaga, now: Date) -> Work {
        let started = Saga(id: new.id, idempotencyKey: new.idempotencyKey, productId: new.productId, qty: new.qty,
                           amountMinor: new.amountMinor, currency: new.currency, mode: new.mode, state: .started, orderId: nil,
                           paymentRef: nil, attempts: 0, owner: new.owner, epoch: 1, leaseUntil: now, failureCode: nil, lastError: nil,
                           needsAttention: false, eventSequence: 0, createdAt: Millis.date(Millis.from(now)), updatedAt: now)
        var work = Work(saga: started)
        work.steps.append((.startSaga, .done, "mode \(new.mode.rawValue)"))
        work.event(.sagaStarted, reason: nil)
        return work
    }

    public func apply(_ chain: [SagaTransition], sagaId: UUID, fence: SagaFence, lease: Duration, now: Date) async throws -> TransitionResult {
        guard let first = chain.first else { throw SagaStoreInconsistency(sagaId: sagaId, detail: "empty chain of transitions") }
        let lock = database.dialect.forUpdate
        let leaseEnd = leaseEnd
        let orderId = try await orderID(for: chain)
        do {
            return try await withOrderID(orderId) { try await database.write { [topic] s in
                guard let saga = try Self.fetchSaga(s, id: sagaId, lock: lock) else {
                    throw SagaStoreInconsistency(sagaId: sagaId, detail: "no such saga")
                }
                guard saga.fence == fence else { return .fenced(saga) }
                guard saga.state == first.from else { return .stale(saga) }
                return .applied(try Self.perform(s, topic: topic, work: Work(saga: saga), chain: chain, fence: fence, lease: lease,
                                                 leaseEnd: leaseEnd, now: now, orderId: orderId))
            } }
        } catch let refused as EffectRefused {
            return .rejected(refused.saga)
        }
    }

    /// Without reading the saga first (MariaDB: one round trip and one locking read less per step): the saga
    /// row's UPDATE, the transaction's first statement, is guarded by the expected state, fence and event
    /// sequence. If it matches nothing, the saga moved (or `expected` is older than the row): the transaction is
    /// rolled back and the step judged on the locked row, as `apply` does. SQLite reads first: its read is
    /// in-process.
    public func apply(_ chain: [SagaTransition], to expected: Saga, lease: Duration, now: Date) async throws -> TransitionResult {
        guard let first = chain.first, !database.dialect.forUpdate.isEmpty, expected.state == first.from else {
            return try await apply(chain, sagaId: expected.id, fence: expected.fence, lease: lease, now: now)
        }
        let leaseEnd = leaseEnd
        let orderId = try await orderID(for: chain)
        do {
            return try await withOrderID(orderId) { try await database.write { [topic] s in
                .applied(try Self.perform(s, topic: topic, work: Work(saga: expected), chain: chain, fence: expected.fence, lease: lease,
                                          leaseEnd: leaseEnd, now: now, orderId: orderId, unread: true))
            } }
        } catch is SagaMoved {
            return try await apply(chain, sagaId: expected.id, fence: expected.fence, lease: lease, now: now)
        } catch let refused as EffectRefused {
            return .rejected(refused.saga)
        }
    }

    /// The id of the order `chain` creates, if it creates one.
    private func orderID(for chain: [SagaTransition]) async throws -> Int64? {
        chain.contains { $0.effect == .createOrder } ? try await orderIDs.next() : nil
    }

    /// `body`, which writes an order with `orderId`: if that id was taken, the rest of its block is dropped (the
    /// step fails now and its retry gets an id from a new block).
    private func withOrderID<T>(_ orderId: Int64?, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as SQLUniqueViolation {
            if orderId != nil { orderIDs.discardBlock() }
            throw error
        }
    }

    /// The guarded update of a saga that was not read first matched no row.
    struct SagaMoved: Error {}

    /// A reservation found too little stock: the transaction is rolled back.
    struct EffectRefused: Error {
        var saga: Saga
    }

    /// What one transaction writes for a saga: the saga as it becomes, its timeline entries and outbox events.
    struct Work {
        let before: Saga
        var saga: Saga
        var steps: [(name: SagaStepName, status: SagaStepStatus, detail: String?)] = []
        var events: [(type: SagaEventType, saga: Saga, reason: String?)] = []
        /// The change to the product's stock, written last.
        var stockDelta: Int64 = 0

        init(saga: Saga) {
            before = saga
            self.saga = saga
        }

        mutating func event(_ type: SagaEventType, reason: String?) {
            saga.eventSequence += 1
            events.append((type, saga, reason))
        }
    }

    /// What `chain` does to one saga in one transaction, before any statement is written.
    struct Planned {
        var work: Work
        let fence: SagaFence
        let lease: Duration
        let now: Date
        var failureCode: SagaFailureCode?
        var lastError: String?
        var orderStatus: OrderStatus?
        var createsOrder = false
    }

    /// Walks `chain` from `initial.saga`'s state. A chain that creates the order brings its id (`orderId`, from
    /// `SQLOrderIDs`), so nothing waits for the database's.
    static func plan(_ initial: Work, chain: [SagaTransition], fence: SagaFence, lease: Duration, now: Date, orderId: Int64?) throws -> Planned {
        var p = Planned(work: initial, fence: fence, lease: lease, now: now)
        for t in chain {
            guard p.work.saga.state == t.from else {
                throw SagaStoreInconsistency(sagaId: p.work.saga.id, detail: "\(t.step) does not start at \(p.work.saga.state.rawValue)")
            }
            switch t.effect {
            case .none:
                break
            case .reserveInventory:
                p.work.stockDelta -= p.work.saga.qty
            case .createOrder:
                guard let orderId else { throw SagaStoreInconsistency(sagaId: p.work.saga.id, detail: "creating an order without its id") }
                p.work.saga.orderId = orderId
                p.createsOrder = true
            case .recordPayment(let reference):
                p.work.saga.paymentRef = reference
            case .confirmOrder:
                p.orderStatus = p.orderStatus ?? .confirmed
            case .cancelOrder:
                p.orderStatus = p.orderStatus ?? .cancelled
            case .releaseInventory:
                p.work.stockDelta += p.work.saga.qty
            }
            p.work.saga.state = t.to
            p.failureCode = p.failureCode ?? t.failureCode
            if t.status != .done, let detail = t.detail { p.lastError = detail }
            p.work.steps.append((t.step, t.status, t.detail))
            for type in t.events { p.work.event(type, reason: t.status == .done ? nil : t.detail) }
        }
        return p
    }

    /// `perform` for one saga.
    static func perform(_ s: any SQLStatements, topic: String, work: Work, chain: [SagaTransition], fence: SagaFence,
                        lease: Duration, leaseEnd: String, now: Date, orderId: Int64? = nil, unread: Bool = false,
                        opening: Bool = false) throws -> Saga {
        let planned = try plan(work, chain: chain, fence: fence, lease: lease, now: now, orderId: orderId)
        return try perform(s, topic: topic, plans: [planned], leaseEnd: leaseEnd, unread: unread, opening: opening)[0]
    }

    /// Performs each plan on its saga inside the caller's transaction (each saga row is locked, or is inserted
    /// by it). The saga rows are written first (every transaction that writes a saga and its order locks the
    /// saga row first), then the order, timeline and outbox rows, and the product rows last, so that a hot
    /// product's row lock is held for one statement and the commit only. Throws `EffectRefused` (the caller's
    /// transaction is then rolled back) when a reservation finds too little stock.
    /// `unread`: the saga row was neither inserted nor locked by this transaction; a guard that matches nothing
    /// throws `SagaMoved` (before the order's INSERT could collide with one another server made).
    ///
    /// The statements go as one batch with the COMMIT (`runBatchAndCommit`, one round trip on MariaDB; the
    /// caller's block must end with this call). `opening`: the saga rows are inserted as their chains leave them
    /// (one statement for all; a unique idempotency key throws `SQLUniqueViolation`), not inserted and then
    /// updated. Several plans write one multi-row INSERT per table and one UPDATE per product, for the sum of
    /// their changes to its stock (a reservation's guard is then on the sum).
    static func perform(_ s: any SQLStatements, topic: String, plans: [Planned], leaseEnd: String, unread: Bool = false,
                        opening: Bool = false) throws -> [Saga] {
        var batch: [SQLStatement] = []
        var guarded: Set<Int> = []
        var sagaUpdates: Set<Int> = []
        if opening {
            batch.append(SQLStatement(
                """
                INSERT INTO sagas (id, idempotency_key, product_id, qty, amount_minor, currency, mode, state, order_id, payment_ref,
                    attempts, owner, epoch, lease_until, event_seq, failure_code, last_error, created_at, updated_at)
                VALUES \(repeatElement("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, \(leaseEnd), ?, ?, ?, ?, ?)", count: plans.count).joined(separator: ", "))
                """,
                plans.flatMap { p -> [any SQLBindable] in
                    let saga = p.work.saga
                    return [saga.id, saga.idempotencyKey, saga.productId, saga.qty, saga.amountMinor, saga.currency, saga.mode.rawValue,
                            saga.state.rawValue, saga.orderId, saga.paymentRef, p.fence.owner, p.fence.epoch, Millis.of(p.lease),
                            saga.eventSequence, p.failureCode?.rawValue, p.lastError, p.now, p.now]
                }))
        } else {
            for p in plans {
                let saga = p.work.saga
                sagaUpdates.insert(batch.count)
                guarded.insert(batch.count)
                batch.append(SQLStatement(
                    """
                    UPDATE sagas SET state = ?, order_id = COALESCE(?, order_id), payment_ref = COALESCE(?, payment_ref),
                        lease_until = \(leaseEnd), event_seq = ?,
                        failure_code = COALESCE(failure_code, ?), last_error = COALESCE(?, last_error), updated_at = ?
                    WHERE id = ? AND state = ? AND owner = ? AND epoch = ? AND event_seq = ?
                    """,
                    [saga.state.rawValue, saga.orderId, saga.paymentRef, Millis.of(p.lease), saga.eventSequence,
                     p.failureCode?.rawValue, p.lastError, p.now, saga.id, p.work.before.state.rawValue, p.fence.owner, p.fence.epoch,
                     p.work.before.eventSequence]))
            }
        }
        let ordering = plans.filter(\.createsOrder)
        if !ordering.isEmpty {
            batch.append(SQLStatement(
                """
                INSERT INTO orders (id, saga_id, product_id, qty, amount_minor, currency, status, created_at, updated_at)
                VALUES \(rows(ordering.count, 6, then: "'PENDING', ?, ?"))
                """,
                ordering.flatMap { p -> [any SQLBindable] in
                    let saga = p.work.saga
                    return [saga.orderId, saga.id, saga.productId, saga.qty, saga.amountMinor, saga.currency, p.now, p.now]
                }))
        }
        for p in plans {
            guard let orderStatus = p.orderStatus else { continue }
            guard let orderId = p.work.saga.orderId else { throw SagaStoreInconsistency(sagaId: p.work.saga.id, detail: "no order to update") }
            batch.append(SQLStatement("UPDATE orders SET status = ?, updated_at = ? WHERE id = ? AND status = 'PENDING'",
                                      [orderStatus.rawValue, p.now, orderId]))
        }
        let steps = plans.flatMap { p in p.work.steps.map { (p.work.saga.id, $0, p.now) } }
        if !steps.isEmpty {
            batch.append(SQLStatement(
                "INSERT INTO saga_steps (saga_id, name, status, detail, at) VALUES \(rows(steps.count, 5))",
                steps.flatMap { id, step, now -> [any SQLBindable] in [id, step.name.rawValue, step.status.rawValue, step.detail, now] }))
        }
        var values: [any SQLBindable] = []
        var eventCount = 0
        for p in plans {
            for (type, snapshot, reason) in p.work.events {
                let event = SagaEvent(type: type, saga: snapshot, sequence: snapshot.eventSequence, occurredAt: p.now, reason: reason)
                values += [event.eventId, topic, snapshot.id, try event.jsonPayload(), p.now] as [any SQLBindable]
                eventCount += 1
            }
        }
        if eventCount > 0 {
            batch.append(SQLStatement("INSERT INTO outbox (event_id, topic, `key`, payload, created_at) VALUES \(rows(eventCount, 5))", values))
        }
        // The product rows last, in id order: a hot product's row lock is held from this statement to the commit
        // only — they go in the same round trip (MariaDB), so not across a trip to this server and back either.
        var deltas: [Int64: (delta: Int64, now: Date)] = [:]
        for p in plans where p.work.stockDelta != 0 {
            let current = deltas[p.work.saga.productId]
            deltas[p.work.saga.productId] = ((current?.delta ?? 0) + p.work.stockDelta, max(current?.now ?? p.now, p.now))
        }
        var reservations: Set<Int> = []
        for (productId, change) in deltas.sorted(by: { $0.key < $1.key }) {
            if change.delta < 0 {
                reservations.insert(batch.count)
                guarded.insert(batch.count)
                batch.append(SQLStatement("UPDATE products SET stock = stock - ?, version = version + 1, updated_at = ? WHERE id = ? AND stock >= ?",
                                          [-change.delta, change.now, productId, -change.delta]))
            } else if change.delta > 0 {
                batch.append(SQLStatement("UPDATE products SET stock = stock + ?, version = version + 1, updated_at = ? WHERE id = ?",
                                          [change.delta, change.now, productId]))
            }
        }
        // A guard that matched nothing stops the batch before the statements after it (a saga that moved never
        // touches the product row) and the transaction rolls back.
        do {
            _ = try s.runBatchAndCommit(batch, requiringOneRow: guarded)
        } catch let failed as SQLGuardFailed {
            if reservations.contains(failed.statement) { throw EffectRefused(saga: plans[0].work.before) }
            if sagaUpdates.contains(failed.statement), unread { throw SagaMoved() }
            throw SagaStoreInconsistency(sagaId: plans[0].work.saga.id, detail: "state changed inside transaction (guard of statement \(failed.statement))")
        }
        // Not read back (one statement less): `leaseUntil` is what was asked for, by this server's clock.
        return plans.map { p in
            var written = p.work.saga
            written.failureCode = written.failureCode ?? p.failureCode
            written.lastError = p.lastError ?? written.lastError
            written.leaseUntil = Millis.date(Millis.from(p.now) + Millis.of(p.lease))
            written.updatedAt = Millis.date(Millis.from(p.now))
            return written
        }
    }

    /// `(?, ?, …), (?, ?, …)`: `count` rows of `columns` placeholders.
    static func rows(_ count: Int, _ columns: Int, then literal: String? = nil) -> String {
        let row = "(" + SQLDialect.placeholders(columns) + (literal.map { ", " + $0 } ?? "") + ")"
        return Array(repeating: row, count: count).joined(separator: ", ")
    }

    public func saga(id: UUID) async throws -> Saga? {
        try await database.read(.primary) { s in try Self.fetchSaga(s, id: id) }
    }

    public func saga(idempotencyKey: String) async throws -> Saga? {
        try await database.read(.primary) { s in try s.row("SELECT * FROM sagas WHERE idempotency_key = ?", [idempotencyKey]).map(Self.saga) }
    }

    public func purchaseLookup(productId: Int64, idempotencyKey: String?) async throws -> (product: Product?, existing: Saga?) {
        try await database.read(.primary) { s in
            guard let key = idempotencyKey else { return (try SQLProductStore.fetch(s, id: productId), nil) }
            // Both in one round trip (MariaDB); a known key is answered from its saga, without the product.
            let found = try s.rowsBatch([SQLStatement("SELECT * FROM sagas WHERE idempotency_key = ?", [key]),
                                         SQLStatement("SELECT \(SQLProductStore.columns) FROM products WHERE id = ?", [productId])])
            if let saga = try found[0].first.map(Self.saga) { return (nil, saga) }
            return (try found[1].first.map(SQLProductStore.product), nil)
        }
    }

    public func steps(sagaId: UUID) async throws -> [SagaStep] {
        try await database.read(.primary) { s in
            try s.rows("SELECT * FROM saga_steps WHERE saga_id = ? ORDER BY id", [sagaId]).enumerated().map { index, row in
                SagaStep(sequence: index + 1, name: try row.value("name", fallback: .failSaga), status: try row.value("status", fallback: .failed),
                         detail: try row.optionalText("detail"), at: try row.date("at"))
            }
        }
    }

    public func order(id: Int64) async throws -> Order? {
        try await database.read(.primary) { s in
            try s.row("SELECT * FROM orders WHERE id = ?", [id]).map { row in
                Order(id: try row.int("id"), sagaId: try row.uuid("saga_id"), productId: try row.int("product_id"), qty: try row.int("qty"),
                      amountMinor: try row.int("amount_minor"), currency: try row.text("currency"),
                      status: try row.value("status", fallback: .pending),
                      createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"))
            }
        }
    }

    public func claimExpired(owner: String, lease: Duration, limit: Int, now: Date) async throws -> [Saga] {
        let dialect = database.dialect
        let skipLocked = dialect.forUpdateSkipLocked
        let (dbNow, leaseEnd) = (dialect.nowMillis, leaseEnd)
        return try await database.write { s in
            // SKIP LOCKED (MariaDB): sagas another server is claiming (or stepping) right now are left to it.
            // The UPDATE checks the claim's conditions again, for engines without row locks. Expiry is judged
            // by the database's clock.
            let rows = try s.rows(Self.claimQuery(dialect) + skipLocked, [limit])
            var claimed: [Saga] = []
            for row in rows {
                let id = try row.uuid("id")
                let changed = try s.run(
                    """
                    UPDATE sagas SET owner = ?, epoch = epoch + 1, lease_until = \(leaseEnd), attempts = attempts + 1, updated_at = ?
                    WHERE id = ? AND state NOT IN (\(Self.terminalList)) AND lease_until < \(dbNow) AND needs_attention = 0
                    """,
                    [owner, Millis.of(lease), now, id]).rows
                guard changed == 1, let saga = try Self.fetchSaga(s, id: id) else { continue }
                claimed.append(saga)
            }
            return claimed
        }
    }

    /// The unfinished sagas whose lease has passed, by the database's clock, oldest lease first (one parameter:
    /// the limit). It reads only unfinished sagas' index entries: the finished history is not walked.
    public static func claimQuery(_ dialect: SQLDialect) -> String {
        """
        SELECT id FROM sagas WHERE \(unfinished) AND lease_until < \(dialect.nowMillis) AND needs_attention = 0
        ORDER BY lease_until LIMIT ?
        """
    }

    /// How many sagas are unfinished (the console's "in flight").
    public static let countUnfinishedQuery = "SELECT COUNT(*) AS n FROM sagas WHERE \(unfinished)"

    /// Unfinished sagas, oldest first (one parameter: the limit).
    public static func unfinishedQuery(needingAttention: Bool) -> String {
        "SELECT * FROM sagas WHERE \(unfinished)\(needingAttention ? " AND needs_attention = 1" : "") ORDER BY created_at, id LIMIT ?"
    }

    /// The predicate that finds unfinished sagas through an index: SQLite's partial index has exactly this
    /// WHERE; on MariaDB's `(state, lease_until)` it is a few short ranges between the finished states.
    static let unfinished = "state NOT IN (\(terminalList))"

    public func renewLeases(_ held: [UUID: Int], owner: String, lease: Duration) async throws -> Set<UUID> {
        guard !held.isEmpty else { return [] }
        let ids = Array(held.keys)
        let leaseEnd = leaseEnd
        return try await database.write { s in
            var current: [UUID: (epoch: Int, owner: String)] = [:]
            for chunk in stride(from: 0, to: ids.count, by: 500).map({ Array(ids[$0..<min($0 + 500, ids.count)]) }) {
                let list = SQLDialect.placeholders(chunk.count)
                try s.run(
                    "UPDATE sagas SET lease_until = \(leaseEnd) WHERE owner = ? AND state NOT IN (\(Self.terminalList)) AND id IN (\(list))",
                    [Millis.of(lease), owner] + chunk.map { $0 as any SQLBindable })
                for row in try s.rows("SELECT id, owner, epoch FROM sagas WHERE id IN (\(list))", chunk.map { $0 as any SQLBindable }) {
                    current[try row.uuid("id")] = (Int(try row.int("epoch")), try row.text("owner"))
                }
            }
            return Set(held.compactMap { id, epoch in
                current[id].map { $0.owner == owner && $0.epoch == epoch } == true ? nil : id
            })
        }
    }

    public func countUnfinished() async throws -> Int {
        let query = Self.countUnfinishedQuery
        return try await database.read(.primary) { s in
            Int(try s.row(query)?.int("n") ?? 0)
        }
    }

    public func postpone(sagaId: UUID, fence: SagaFence, delay: Duration, error: String, now: Date) async throws -> Bool {
        let leaseEnd = leaseEnd
        return try await database.write { s in
            try s.run(
                """
                UPDATE sagas SET lease_until = \(leaseEnd), last_error = ?, updated_at = ?
                WHERE id = ? AND owner = ? AND epoch = ? AND state NOT IN (\(Self.terminalList))
                """,
                [Millis.of(delay), String(error.prefix(2000)), now, sagaId, fence.owner, fence.epoch]).rows == 1
        }
    }

    public func flagForAttention(sagaId: UUID, fence: SagaFence, error: String, now: Date) async throws -> Bool {
        try await database.write { s in
            try s.run(
                """
                UPDATE sagas SET needs_attention = 1, last_error = ?, updated_at = ?
                WHERE id = ? AND owner = ? AND epoch = ? AND state NOT IN (\(Self.terminalList))
                """,
                [String(error.prefix(2000)), now, sagaId, fence.owner, fence.epoch]).rows == 1
        }
    }

    public func unfinished(needingAttention: Bool, limit: Int) async throws -> [Saga] {
        let query = Self.unfinishedQuery(needingAttention: needingAttention)
        return try await database.read(.primary) { s in try s.rows(query, [limit]).map(Self.saga) }
    }

    /// An operator may act on a saga that needs attention or whose owner went silent (or any, when forced).
    var stuck: String { "(needs_attention = 1 OR lease_until < \(database.dialect.nowMillis) OR ? = 1)" }

    public func retry(sagaId: UUID, force: Bool, now: Date) async throws -> Saga? {
        let (dbNow, stuck) = (database.dialect.nowMillis, stuck)
        return try await database.write { s in
            let changed = try s.run(
                """
                UPDATE sagas SET needs_attention = 0, attempts = 0, lease_until = \(dbNow) - 1, updated_at = ?
                WHERE id = ? AND state NOT IN (\(Self.terminalList)) AND \(stuck)
                """,
                [now, sagaId, force ? 1 : 0]).rows
            return changed == 1 ? try Self.fetchSaga(s, id: sagaId) : nil
        }
    }

    public func take(sagaId: UUID, owner: String, lease: Duration, force: Bool, now: Date) async throws -> Saga? {
        let (leaseEnd, stuck) = (leaseEnd, stuck)
        return try await database.write { s in
            let changed = try s.run(
                """
                UPDATE sagas SET owner = ?, epoch = epoch + 1, lease_until = \(leaseEnd), needs_attention = 0, updated_at = ?
                WHERE id = ? AND state NOT IN (\(Self.terminalList)) AND \(stuck)
                """,
                [owner, Millis.of(lease), now, sagaId, force ? 1 : 0]).rows
            return changed == 1 ? try Self.fetchSaga(s, id: sagaId) : nil
        }
    }

    // MARK: OutboxStore

    static func record(_ row: SQLRow) throws -> OutboxRecord {
        OutboxRecord(id: try row.int("id"), eventId: try row.uuid("event_id"), topic: try row.text("topic"), key: try row.text("key"),
                     payload: try row.text("payload"), createdAt: try row.date("created_at"), publishedAt: try row.optionalDate("published_at"))
    }

    public func unpublished(limit: Int) async throws -> [OutboxRecord] {
        try await database.read(.primary) { s in
            try s.rows("SELECT * FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT ?", [limit]).map(Self.record)
        }
    }

    public func backlog(cap: Int) async throws -> OutboxBacklog {
        try await database.read(.primary) { s in
            // Both walk the unpublished index only (SQLite: partial index; MariaDB: (published_at, id)).
            let count = try s.row("SELECT COUNT(*) AS n FROM (SELECT id FROM outbox WHERE published_at IS NULL LIMIT ?) AS waiting", [cap])?.int("n") ?? 0
            let oldest = try s.row("SELECT created_at FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT 1").map { try $0.date("created_at") }
            let latest = try s.row("SELECT MAX(id) AS id FROM outbox")?.optionalInt("id")
            return OutboxBacklog(count: Int(count), oldestCreatedAt: oldest, latestId: latest)
        }
    }

    public func records(after: Int64, limit: Int, sagaId: UUID?) async throws -> [OutboxRecord] {
        try await database.read(.primary) { s in
            if let sagaId {
                return try s.rows("SELECT * FROM outbox WHERE `key` = ? AND id > ? ORDER BY id LIMIT ?", [sagaId, after, limit]).map(Self.record)
            }
            return try s.rows("SELECT * FROM outbox WHERE id > ? ORDER BY id LIMIT ?", [after, limit]).map(Self.record)
        }
    }

    public func markPublished(ids: [Int64], at: Date) async throws {
        guard !ids.isEmpty else { return }
        try await database.write { s in
            try s.run("UPDATE outbox SET published_at = ? WHERE published_at IS NULL AND id IN (\(SQLDialect.placeholders(ids.count)))",
                      [at] + ids.map { $0 as any SQLBindable })
        }
    }

    // MARK: The relay's lease

    /// One round trip (MariaDB: autocommit, each statement its own): renew or take over the row; create it
    /// when there is none. Times are the database's, so the app servers' clocks need not agree.
    public func claimRelay(owner: String, lease: Duration) async throws -> Bool {
        let (now, insertIgnore) = (database.dialect.nowMillis, database.dialect.insertIgnore)
        return try await database.writeAutocommit { s in
            let results = try s.runBatch([
                SQLStatement("UPDATE relay_leases SET owner = ?, lease_until = \(now) + ? WHERE name = 'outbox' AND (owner = ? OR lease_until < \(now))",
                             [owner, Millis.of(lease), owner]),
                SQLStatement("\(insertIgnore) INTO relay_leases (name, owner, lease_until) VALUES ('outbox', ?, \(now) + ?)", [owner, Millis.of(lease)]),
            ])
            return results[0].rows == 1 || results[1].rows == 1
        }
    }

    public func releaseRelay(owner: String) async throws {
        try await database.writeAutocommit { s in
            _ = try s.run("UPDATE relay_leases SET lease_until = 0 WHERE name = 'outbox' AND owner = ?", [owner])
        }
    }
}

/// Openings of groups of two or more, by outcome (for tests), and the counter operators see.
final class SQLGroupedOpenings: Sendable {
    static let togetherTotal = Counter(label: "storefront_saga_openings_grouped_total", dimensions: [("outcome", "together")])
    static let aloneTotal = Counter(label: "storefront_saga_openings_grouped_total", dimensions: [("outcome", "alone")])
    let together = Atomic<Int>(0)
    let alone = Atomic<Int>(0)

    func count(together count: Int) {
        together.add(count, ordering: .relaxed)
        Self.togetherTotal.increment(by: count)
    }

    func count(alone count: Int) {
        alone.add(count, ordering: .relaxed)
        Self.aloneTotal.increment(by: count)
    }
}
