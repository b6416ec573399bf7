import Foundation
import StorefrontCore

/// `SagaStore` and `OutboxStore` on the primary: every saga step is one transaction that locks the saga row,
/// checks the expected state, performs the effect (the conditional reserve update of DESIGN §2 included),
/// appends the timeline entry and writes the outbox events.
public struct SQLSagaStore: SagaStore, OutboxStore {
    let database: any SQLExecutor
    let topic: String

    public init(database: any SQLExecutor, topic: String = SagaEvent.defaultTopic) {
        self.database = database
        self.topic = topic
    }

    static let terminalList = SagaState.terminal.map { "'\($0.rawValue)'" }.joined(separator: ", ")

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

    public func begin(_ new: NewSaga, now: Date) async throws -> BeginResult {
        let leaseEnd = leaseEnd
        do {
            return try await database.write { [topic] s in
                try s.run(
                    """
                    INSERT INTO sagas (id, idempotency_key, product_id, qty, amount_minor, currency, mode, state, attempts,
                        owner, epoch, lease_until, event_seq, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, 'STARTED', 0, ?, 1, \(leaseEnd), 0, ?, ?)
                    """,
                    [new.id, new.idempotencyKey, new.productId, new.qty, new.amountMinor, new.currency, new.mode.rawValue,
                     new.owner, Millis.of(new.lease), now, now])
                var saga = try Self.fetchSaga(s, id: new.id)!
                try Self.appendStep(s, saga: saga, step: .startSaga, status: .done, detail: "mode \(new.mode.rawValue)", at: now)
                saga = try Self.appendEvents(s, topic: topic, saga: saga, types: [.sagaStarted], reason: nil, now: now)
                return .created(saga)
            }
        } catch let error as SQLUniqueViolation {
            guard let key = new.idempotencyKey, let existing = try await saga(idempotencyKey: key) else { throw error }
            return .existing(existing)
        }
    }

    public func apply(_ t: SagaTransition, sagaId: UUID, fence: SagaFence, lease: Duration, now: Date) async throws -> TransitionResult {
        let lock = database.dialect.forUpdate
        let leaseEnd = leaseEnd
        return try await database.write { [topic] s in
            guard var saga = try Self.fetchSaga(s, id: sagaId, lock: lock) else {
                throw SagaStoreInconsistency(sagaId: sagaId, detail: "no such saga")
            }
            guard saga.fence == fence else { return .fenced(saga) }
            guard saga.state == t.from else { return .stale(saga) }
            switch t.effect {
            case .none:
                break
            case .reserveInventory:
                let reserved = try s.run(
                    """
                    UPDATE products SET reserved = reserved + ?, version = version + 1, updated_at = ?
                    WHERE id = ? AND stock - reserved >= ?
                    """,
                    [saga.qty, now, saga.productId, saga.qty]).rows
                if reserved == 0 { return .rejected(saga) }
            case .createOrder:
                saga.orderId = try s.run(
                    """
                    INSERT INTO orders (saga_id, product_id, qty, amount_minor, currency, status, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, 'PENDING', ?, ?)
                    """,
                    [saga.id, saga.productId, saga.qty, saga.amountMinor, saga.currency, now, now]).lastInsertID
            case .recordPayment(let reference):
                saga.paymentRef = reference
            case .confirmOrder:
                try Self.setOrderStatus(s, saga: saga, to: .confirmed, at: now)
                try s.run(
                    """
                    UPDATE products SET stock = stock - ?, reserved = reserved - ?, version = version + 1, updated_at = ?
                    WHERE id = ?
                    """,
                    [saga.qty, saga.qty, now, saga.productId])
            case .cancelOrder:
                try Self.setOrderStatus(s, saga: saga, to: .cancelled, at: now)
            case .releaseInventory:
                try s.run("UPDATE products SET reserved = reserved - ?, version = version + 1, updated_at = ? WHERE id = ?",
                          [saga.qty, now, saga.productId])
            }
            let changed = try s.run(
                """
                UPDATE sagas SET state = ?, order_id = ?, payment_ref = ?, lease_until = \(leaseEnd),
                    failure_code = COALESCE(failure_code, ?), last_error = COALESCE(?, last_error), updated_at = ?
                WHERE id = ? AND state = ? AND owner = ? AND epoch = ?
                """,
                [t.to.rawValue, saga.orderId, saga.paymentRef, Millis.of(lease),
                 t.failureCode?.rawValue, t.status == .done ? nil : t.detail, now, saga.id, t.from.rawValue, fence.owner, fence.epoch]).rows
            guard changed == 1 else { throw SagaStoreInconsistency(sagaId: sagaId, detail: "state changed inside transaction") }
            saga = try Self.fetchSaga(s, id: sagaId)!
            try Self.appendStep(s, saga: saga, step: t.step, status: t.status, detail: t.detail, at: now)
            saga = try Self.appendEvents(s, topic: topic, saga: saga, types: t.events, reason: t.status == .done ? nil : t.detail, now: now)
            return .applied(saga)
        }
    }

    private static func setOrderStatus(_ s: any SQLStatements, saga: Saga, to status: OrderStatus, at now: Date) throws {
        guard let orderId = saga.orderId else { throw SagaStoreInconsistency(sagaId: saga.id, detail: "no order to update") }
        try s.run("UPDATE orders SET status = ?, updated_at = ? WHERE id = ? AND status = 'PENDING'", [status.rawValue, now, orderId])
    }

    private static func appendStep(_ s: any SQLStatements, saga: Saga, step: SagaStepName, status: SagaStepStatus, detail: String?,
                                   at now: Date) throws {
        try s.run("INSERT INTO saga_steps (saga_id, name, status, detail, at) VALUES (?, ?, ?, ?, ?)",
                  [saga.id, step.rawValue, status.rawValue, detail, now])
    }

    /// Writes the events to the outbox with the saga's next sequence numbers.
    private static func appendEvents(_ s: any SQLStatements, topic: String, saga: Saga, types: [SagaEventType], reason: String?,
                                     now: Date) throws -> Saga {
        guard !types.isEmpty else { return saga }
        var saga = saga
        for type in types {
            saga.eventSequence += 1
            let event = SagaEvent(type: type, saga: saga, sequence: saga.eventSequence, occurredAt: now, reason: reason)
            try s.run("INSERT INTO outbox (event_id, topic, `key`, payload, created_at) VALUES (?, ?, ?, ?, ?)",
                      [event.eventId, topic, saga.id, try event.jsonPayload(), now])
        }
        try s.run("UPDATE sagas SET event_seq = ? WHERE id = ?", [saga.eventSequence, saga.id])
        return saga
    }

    public func saga(id: UUID) async throws -> Saga? {
        try await database.read(.primary) { s in try Self.fetchSaga(s, id: id) }
    }

    public func saga(idempotencyKey: String) async throws -> Saga? {
        try await database.read(.primary) { s in try s.row("SELECT * FROM sagas WHERE idempotency_key = ?", [idempotencyKey]).map(Self.saga) }
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
        let skipLocked = database.dialect.forUpdateSkipLocked
        let (dbNow, leaseEnd) = (database.dialect.nowMillis, leaseEnd)
        return try await database.write { s in
            // SKIP LOCKED (MariaDB): sagas another server is claiming (or stepping) right now are left to it.
            // The UPDATE checks the claim's conditions again, for engines without row locks. Expiry is judged
            // by the database's clock.
            let rows = try s.rows(
                """
                SELECT id FROM sagas WHERE lease_until < \(dbNow) AND state NOT IN (\(Self.terminalList)) AND needs_attention = 0
                ORDER BY lease_until LIMIT ?\(skipLocked)
                """,
                [limit])
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
        try await database.read(.primary) { s in
            Int(try s.row("SELECT COUNT(*) AS n FROM sagas WHERE state NOT IN (\(Self.terminalList))")?.int("n") ?? 0)
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
        try await database.read(.primary) { s in
            try s.rows(
                """
                SELECT * FROM sagas WHERE state NOT IN (\(Self.terminalList))\(needingAttention ? " AND needs_attention = 1" : "")
                ORDER BY created_at, id LIMIT ?
                """,
                [limit]).map(Self.saga)
        }
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
}
