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
            owner: try row.text("owner"), leaseUntil: try row.date("lease_until"), failureCode: try row.optionalText("failure_code").map(SagaFailureCode.init(rawValue:)),
            lastError: try row.optionalText("last_error"), eventSequence: Int(try row.int("event_seq")),
            createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"))
    }

    static func fetchSaga(_ s: any SQLStatements, id: UUID, lock: String = "") throws -> Saga? {
        try s.row("SELECT * FROM sagas WHERE id = ?\(lock)", [id]).map(saga)
    }

    public func begin(_ new: NewSaga, now: Date) async throws -> BeginResult {
        do {
            return try await database.write { [topic] s in
                try s.run(
                    """
                    INSERT INTO sagas (id, idempotency_key, product_id, qty, amount_minor, currency, mode, state, attempts,
                        owner, lease_until, event_seq, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, 'STARTED', 0, ?, ?, 0, ?, ?)
                    """,
                    [new.id, new.idempotencyKey, new.productId, new.qty, new.amountMinor, new.currency, new.mode.rawValue,
                     new.owner, new.leaseUntil, now, now])
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

    public func apply(_ t: SagaTransition, sagaId: UUID, owner: String, now: Date, leaseUntil: Date) async throws -> TransitionResult {
        let lock = database.dialect.forUpdate
        return try await database.write { [topic] s in
            guard var saga = try Self.fetchSaga(s, id: sagaId, lock: lock) else {
                throw SagaStoreInconsistency(sagaId: sagaId, detail: "no such saga")
            }
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
                UPDATE sagas SET state = ?, order_id = ?, payment_ref = ?, owner = ?, lease_until = ?,
                    failure_code = COALESCE(failure_code, ?), last_error = COALESCE(?, last_error), updated_at = ?
                WHERE id = ? AND state = ?
                """,
                [t.to.rawValue, saga.orderId, saga.paymentRef, owner, leaseUntil,
                 t.failureCode?.rawValue, t.status == .done ? nil : t.detail, now, saga.id, t.from.rawValue]).rows
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

    public func claimExpired(owner: String, now: Date, leaseUntil: Date, limit: Int) async throws -> [Saga] {
        let skipLocked = database.dialect.forUpdateSkipLocked
        return try await database.write { s in
            // SKIP LOCKED (MariaDB): sagas another server is claiming (or stepping) right now are left to it.
            // The UPDATE checks the claim's conditions again, for engines without row locks.
            let rows = try s.rows(
                """
                SELECT * FROM sagas WHERE lease_until < ? AND state NOT IN (\(Self.terminalList))
                ORDER BY lease_until LIMIT ?\(skipLocked)
                """,
                [now, limit])
            var claimed: [Saga] = []
            for row in rows {
                var saga = try Self.saga(row)
                let changed = try s.run(
                    """
                    UPDATE sagas SET owner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ?
                    WHERE id = ? AND state NOT IN (\(Self.terminalList)) AND lease_until < ?
                    """,
                    [owner, leaseUntil, now, saga.id, now]).rows
                guard changed == 1 else { continue }
                saga.owner = owner
                saga.leaseUntil = Millis.date(Millis.from(leaseUntil))
                saga.attempts += 1
                saga.updatedAt = Millis.date(Millis.from(now))
                claimed.append(saga)
            }
            return claimed
        }
    }

    public func renewLeases(ids: [UUID], owner: String, until: Date) async throws {
        guard !ids.isEmpty else { return }
        try await database.write { s in
            try s.run(
                "UPDATE sagas SET lease_until = ? WHERE owner = ? AND state NOT IN (\(Self.terminalList)) AND id IN (\(SQLDialect.placeholders(ids.count)))",
                [until, owner] + ids.map { $0 as any SQLBindable })
        }
    }

    public func countUnfinished() async throws -> Int {
        try await database.read(.primary) { s in
            Int(try s.row("SELECT COUNT(*) AS n FROM sagas WHERE state NOT IN (\(Self.terminalList))")?.int("n") ?? 0)
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
