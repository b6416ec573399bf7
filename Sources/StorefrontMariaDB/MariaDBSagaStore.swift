import Foundation
import MariaDB
import StorefrontCore

/// `SagaStore` and `OutboxStore` on the MariaDB primary: every saga step is one InnoDB transaction that
/// locks the saga row, checks the expected state, performs the effect (the conditional reserve update of
/// DESIGN §2 included), appends the timeline entry and writes the outbox events.
public struct MariaDBSagaStore: SagaStore, OutboxStore {
    let database: MariaDBDatabase
    let topic: String

    static let terminalList = SagaState.terminal.map { "'\($0.rawValue)'" }.joined(separator: ", ")

    static func saga(_ row: MariaDBRow) throws -> Saga {
        guard let state = SagaState(rawValue: try row.decode("state")) else {
            throw MariaDBError(kind: .decoding, message: "unknown saga state \(row["state"])")
        }
        return Saga(
            id: try row.decode("id"), idempotencyKey: try row.decode("idempotency_key"), productId: try row.decode("product_id"),
            qty: try row.decode("qty"), amountMinor: try row.decode("amount_minor"), currency: try row.decode("currency"),
            mode: PurchaseMode(rawValue: try row.decode("mode")) ?? .lock, state: state,
            orderId: try row.decode("order_id"), paymentRef: try row.decode("payment_ref"), attempts: try row.decode("attempts"),
            owner: try row.decode("owner"), leaseUntil: try row.date("lease_until"), failureCode: try row.decode("failure_code"),
            lastError: try row.decode("last_error"), eventSequence: try row.decode("event_seq"),
            createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"))
    }

    static func fetchSaga(_ s: MariaDBSession, id: UUID, lock: Bool = false) throws -> Saga? {
        try s.query("SELECT * FROM sagas WHERE id = ?\(lock ? " FOR UPDATE" : "")", [id]).first.map(saga)
    }

    public func begin(_ new: NewSaga, now: Date) async throws -> BeginResult {
        do {
            return try await database.write { s in
                let ms = Millis.from(now)
                _ = try s.query(
                    """
                    INSERT INTO sagas (id, idempotency_key, product_id, qty, amount_minor, currency, mode, state, attempts,
                        owner, lease_until, event_seq, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, 'STARTED', 0, ?, ?, 0, ?, ?)
                    """,
                    [new.id, new.idempotencyKey, new.productId, new.qty, new.amountMinor, new.currency, new.mode.rawValue,
                     new.owner, Millis.from(new.leaseUntil), ms, ms] as [any MariaDBEncodable])
                var saga = try Self.fetchSaga(s, id: new.id)!
                try appendStep(s, saga: saga, step: .startSaga, status: .done, detail: "mode \(new.mode.rawValue)", at: ms)
                saga = try appendEvents(s, saga: saga, types: [.sagaStarted], reason: nil, now: now)
                return .created(saga)
            }
        } catch let error as MariaDBError where error.kind == .duplicateKey {
            guard let key = new.idempotencyKey, let existing = try await saga(idempotencyKey: key) else { throw error }
            return .existing(existing)
        }
    }

    public func apply(_ t: SagaTransition, sagaId: UUID, owner: String, now: Date, leaseUntil: Date) async throws -> TransitionResult {
        try await database.write { s in
            guard var saga = try Self.fetchSaga(s, id: sagaId, lock: true) else {
                throw SagaStoreInconsistency(sagaId: sagaId, detail: "no such saga")
            }
            guard saga.state == t.from else { return .stale(saga) }
            let ms = Millis.from(now)
            switch t.effect {
            case .none:
                break
            case .reserveInventory:
                let reserved = try s.query(
                    """
                    UPDATE products SET reserved = reserved + ?, version = version + 1, updated_at = ?
                    WHERE id = ? AND stock - reserved >= ?
                    """,
                    [saga.qty, ms, saga.productId, saga.qty]).affectedRows
                if reserved == 0 { return .rejected(saga) }
            case .createOrder:
                let id = try s.query(
                    """
                    INSERT INTO orders (saga_id, product_id, qty, amount_minor, currency, status, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, 'PENDING', ?, ?)
                    """,
                    [saga.id, saga.productId, saga.qty, saga.amountMinor, saga.currency, ms, ms] as [any MariaDBEncodable]).lastInsertID
                saga.orderId = Int64(id)
            case .recordPayment(let reference):
                saga.paymentRef = reference
            case .confirmOrder:
                try setOrderStatus(s, saga: saga, to: .confirmed, at: ms)
                _ = try s.query(
                    """
                    UPDATE products SET stock = stock - ?, reserved = reserved - ?, version = version + 1, updated_at = ?
                    WHERE id = ?
                    """,
                    [saga.qty, saga.qty, ms, saga.productId])
            case .cancelOrder:
                try setOrderStatus(s, saga: saga, to: .cancelled, at: ms)
            case .releaseInventory:
                _ = try s.query("UPDATE products SET reserved = reserved - ?, version = version + 1, updated_at = ? WHERE id = ?",
                                [saga.qty, ms, saga.productId])
            }
            let changed = try s.query(
                """
                UPDATE sagas SET state = ?, order_id = ?, payment_ref = ?, owner = ?, lease_until = ?,
                    failure_code = COALESCE(failure_code, ?), last_error = COALESCE(?, last_error), updated_at = ?
                WHERE id = ? AND state = ?
                """,
                [t.to.rawValue, saga.orderId, saga.paymentRef, owner, Millis.from(leaseUntil),
                 t.failureCode, t.status == .done ? nil : t.detail, ms, saga.id, t.from.rawValue] as [any MariaDBEncodable]).affectedRows
            guard changed == 1 else { throw SagaStoreInconsistency(sagaId: sagaId, detail: "state changed inside transaction") }
            saga = try Self.fetchSaga(s, id: sagaId)!
            try appendStep(s, saga: saga, step: t.step, status: t.status, detail: t.detail, at: ms)
            saga = try appendEvents(s, saga: saga, types: t.events, reason: t.status == .done ? nil : t.detail, now: now)
            return .applied(saga)
        }
    }

    private func setOrderStatus(_ s: MariaDBSession, saga: Saga, to status: OrderStatus, at ms: Int64) throws {
        guard let orderId = saga.orderId else { throw SagaStoreInconsistency(sagaId: saga.id, detail: "no order to update") }
        _ = try s.query("UPDATE orders SET status = ?, updated_at = ? WHERE id = ? AND status = 'PENDING'", [status.rawValue, ms, orderId])
    }

    private func appendStep(_ s: MariaDBSession, saga: Saga, step: SagaStepName, status: SagaStepStatus, detail: String?, at ms: Int64) throws {
        _ = try s.query("INSERT INTO saga_steps (saga_id, name, status, detail, at) VALUES (?, ?, ?, ?, ?)",
                        [saga.id, step.rawValue, status.rawValue, detail, ms] as [any MariaDBEncodable])
    }

    /// Writes the events to the outbox with the saga's next sequence numbers.
    private func appendEvents(_ s: MariaDBSession, saga: Saga, types: [SagaEventType], reason: String?, now: Date) throws -> Saga {
        guard !types.isEmpty else { return saga }
        var saga = saga
        for type in types {
            saga.eventSequence += 1
            let event = SagaEvent(type: type, saga: saga, sequence: saga.eventSequence, occurredAt: now, reason: reason)
            _ = try s.query("INSERT INTO outbox (event_id, topic, `key`, payload, created_at) VALUES (?, ?, ?, ?, ?)",
                            [event.eventId, topic, saga.id.uuidString, try event.jsonPayload(), Millis.from(now)] as [any MariaDBEncodable])
        }
        _ = try s.query("UPDATE sagas SET event_seq = ? WHERE id = ?", [saga.eventSequence, saga.id] as [any MariaDBEncodable])
        return saga
    }

    public func saga(id: UUID) async throws -> Saga? {
        try await database.read(.primary) { s in try Self.fetchSaga(s, id: id) }
    }

    public func saga(idempotencyKey: String) async throws -> Saga? {
        try await database.read(.primary) { s in try s.query("SELECT * FROM sagas WHERE idempotency_key = ?", [idempotencyKey]).first.map(Self.saga) }
    }

    public func steps(sagaId: UUID) async throws -> [SagaStep] {
        try await database.read(.primary) { s in
            try s.query("SELECT * FROM saga_steps WHERE saga_id = ? ORDER BY id", [sagaId]).rows.enumerated().map { index, row in
                SagaStep(sequence: index + 1, name: SagaStepName(rawValue: try row.decode("name")) ?? .failSaga,
                         status: SagaStepStatus(rawValue: try row.decode("status")) ?? .failed, detail: try row.decode("detail"),
                         at: try row.date("at"))
            }
        }
    }

    public func order(id: Int64) async throws -> Order? {
        try await database.read(.primary) { s in
            try s.query("SELECT * FROM orders WHERE id = ?", [id]).first.map { row in
                Order(id: try row.decode("id"), sagaId: try row.decode("saga_id"), productId: try row.decode("product_id"), qty: try row.decode("qty"),
                      amountMinor: try row.decode("amount_minor"), currency: try row.decode("currency"),
                      status: OrderStatus(rawValue: try row.decode("status")) ?? .pending,
                      createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"))
            }
        }
    }

    public func claimExpired(owner: String, now: Date, leaseUntil: Date, limit: Int) async throws -> [Saga] {
        try await database.write { s in
            let nowMs = Millis.from(now)
            // SKIP LOCKED: sagas another server is claiming (or stepping) right now are left to it.
            let rows = try s.query(
                """
                SELECT * FROM sagas WHERE lease_until < ? AND state NOT IN (\(Self.terminalList))
                ORDER BY lease_until LIMIT ? FOR UPDATE SKIP LOCKED
                """,
                [nowMs, limit]).rows
            var claimed: [Saga] = []
            for row in rows {
                var saga = try Self.saga(row)
                _ = try s.query("UPDATE sagas SET owner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ? WHERE id = ?",
                                [owner, Millis.from(leaseUntil), nowMs, saga.id] as [any MariaDBEncodable])
                saga.owner = owner
                saga.leaseUntil = Millis.date(Millis.from(leaseUntil))
                saga.attempts += 1
                saga.updatedAt = Millis.date(nowMs)
                claimed.append(saga)
            }
            return claimed
        }
    }

    public func renewLeases(ids: [UUID], owner: String, until: Date) async throws {
        guard !ids.isEmpty else { return }
        try await database.write { s in
            let marks = Array(repeating: "?", count: ids.count).joined(separator: ", ")
            _ = try s.query(
                "UPDATE sagas SET lease_until = ? WHERE owner = ? AND state NOT IN (\(Self.terminalList)) AND id IN (\(marks))",
                [Millis.from(until), owner] + ids.map { $0 as any MariaDBEncodable })
        }
    }

    public func countUnfinished() async throws -> Int {
        try await database.read(.primary) { s in
            try s.query("SELECT COUNT(*) AS n FROM sagas WHERE state NOT IN (\(Self.terminalList))").first?.decode("n") ?? 0
        }
    }

    // MARK: OutboxStore

    static func record(_ row: MariaDBRow) throws -> OutboxRecord {
        OutboxRecord(id: try row.decode("id"), eventId: try row.decode("event_id"), topic: try row.decode("topic"), key: try row.decode("key"),
                     payload: try row.decode("payload"), createdAt: try row.date("created_at"),
                     publishedAt: try row.decode("published_at", as: Int64?.self).map(Millis.date))
    }

    public func unpublished(limit: Int) async throws -> [OutboxRecord] {
        try await database.read(.primary) { s in
            try s.query("SELECT * FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT ?", [limit]).rows.map(Self.record)
        }
    }

    public func records(after: Int64, limit: Int, sagaId: UUID?) async throws -> [OutboxRecord] {
        try await database.read(.primary) { s in
            if let sagaId {
                return try s.query("SELECT * FROM outbox WHERE `key` = ? AND id > ? ORDER BY id LIMIT ?",
                                   [sagaId.uuidString, after, limit] as [any MariaDBEncodable]).rows.map(Self.record)
            }
            return try s.query("SELECT * FROM outbox WHERE id > ? ORDER BY id LIMIT ?", [after, limit]).rows.map(Self.record)
        }
    }

    public func markPublished(ids: [Int64], at: Date) async throws {
        guard !ids.isEmpty else { return }
        try await database.write { s in
            let marks = Array(repeating: "?", count: ids.count).joined(separator: ", ")
            _ = try s.query("UPDATE outbox SET published_at = ? WHERE published_at IS NULL AND id IN (\(marks))",
                            [Millis.from(at)] + ids.map { $0 as any MariaDBEncodable })
        }
    }
}
