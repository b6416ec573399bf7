import Foundation
import GRDB
import StorefrontCore

/// `SagaStore` and `OutboxStore` on SQLite: every saga step is one write transaction that checks the
/// expected state, performs the effect, appends the timeline entry and writes the outbox events.
public struct SQLiteSagaStore: SagaStore, OutboxStore {
    let database: SQLiteDatabase
    let topic: String

    static let terminalList = SagaState.terminal.map { "'\($0.rawValue)'" }.joined(separator: ", ")

    static func saga(_ row: Row) -> Saga {
        Saga(
            id: UUID(uuidString: row["id"])!, idempotencyKey: row["idempotency_key"], productId: row["product_id"],
            qty: row["qty"], amountMinor: row["amount_minor"], currency: row["currency"],
            mode: PurchaseMode(rawValue: row["mode"]) ?? .lock, state: SagaState(rawValue: row["state"])!,
            orderId: row["order_id"], paymentRef: row["payment_ref"], attempts: row["attempts"], owner: row["owner"],
            leaseUntil: Millis.date(row["lease_until"]), failureCode: row["failure_code"], lastError: row["last_error"],
            eventSequence: row["event_seq"], createdAt: Millis.date(row["created_at"]), updatedAt: Millis.date(row["updated_at"]))
    }

    static func fetchSaga(_ db: Database, id: UUID) throws -> Saga? {
        try Row.fetchOne(db, sql: "SELECT * FROM sagas WHERE id = ?", arguments: [id.uuidString]).map(saga)
    }

    public func begin(_ new: NewSaga, now: Date) async throws -> BeginResult {
        do {
            return try await database.writer.write { db in
                let ms = Millis.from(now)
                try db.execute(
                    sql: """
                        INSERT INTO sagas (id, idempotency_key, product_id, qty, amount_minor, currency, mode, state, attempts,
                            owner, lease_until, event_seq, created_at, updated_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, 'STARTED', 0, ?, ?, 0, ?, ?)
                        """,
                    arguments: [new.id.uuidString, new.idempotencyKey, new.productId, new.qty, new.amountMinor, new.currency,
                                new.mode.rawValue, new.owner, Millis.from(new.leaseUntil), ms, ms])
                var saga = try Self.fetchSaga(db, id: new.id)!
                try appendStep(db, saga: saga, step: .startSaga, status: .done, detail: "mode \(new.mode.rawValue)", at: ms)
                saga = try appendEvents(db, saga: saga, types: [.sagaStarted], reason: nil, now: now)
                return .created(saga)
            }
        } catch let error as DatabaseError where error.isUniqueViolation {
            guard let key = new.idempotencyKey, let existing = try await saga(idempotencyKey: key) else { throw error }
            return .existing(existing)
        }
    }

    public func apply(_ t: SagaTransition, sagaId: UUID, owner: String, now: Date, leaseUntil: Date) async throws -> TransitionResult {
        try await database.writer.write { db in
            guard var saga = try Self.fetchSaga(db, id: sagaId) else {
                throw SagaStoreInconsistency(sagaId: sagaId, detail: "no such saga")
            }
            guard saga.state == t.from else { return .stale(saga) }
            let ms = Millis.from(now)
            switch t.effect {
            case .none:
                break
            case .reserveInventory:
                try db.execute(
                    sql: """
                        UPDATE products SET reserved = reserved + ?, version = version + 1, updated_at = ?
                        WHERE id = ? AND stock - reserved >= ?
                        """,
                    arguments: [saga.qty, ms, saga.productId, saga.qty])
                if db.changesCount == 0 { return .rejected(saga) }
            case .createOrder:
                try db.execute(
                    sql: """
                        INSERT INTO orders (saga_id, product_id, qty, amount_minor, currency, status, created_at, updated_at)
                        VALUES (?, ?, ?, ?, ?, 'PENDING', ?, ?)
                        """,
                    arguments: [saga.id.uuidString, saga.productId, saga.qty, saga.amountMinor, saga.currency, ms, ms])
                saga.orderId = db.lastInsertedRowID
            case .recordPayment(let reference):
                saga.paymentRef = reference
            case .confirmOrder:
                try setOrderStatus(db, saga: saga, to: .confirmed, at: ms)
                try db.execute(
                    sql: """
                        UPDATE products SET stock = stock - ?, reserved = reserved - ?, version = version + 1, updated_at = ?
                        WHERE id = ?
                        """,
                    arguments: [saga.qty, saga.qty, ms, saga.productId])
            case .cancelOrder:
                try setOrderStatus(db, saga: saga, to: .cancelled, at: ms)
            case .releaseInventory:
                try db.execute(
                    sql: "UPDATE products SET reserved = reserved - ?, version = version + 1, updated_at = ? WHERE id = ?",
                    arguments: [saga.qty, ms, saga.productId])
            }
            try db.execute(
                sql: """
                    UPDATE sagas SET state = ?, order_id = ?, payment_ref = ?, owner = ?, lease_until = ?,
                        failure_code = COALESCE(failure_code, ?), last_error = COALESCE(?, last_error), updated_at = ?
                    WHERE id = ? AND state = ?
                    """,
                arguments: [t.to.rawValue, saga.orderId, saga.paymentRef, owner, Millis.from(leaseUntil),
                            t.failureCode, t.status == .done ? nil : t.detail, ms, saga.id.uuidString, t.from.rawValue])
            guard db.changesCount == 1 else { throw SagaStoreInconsistency(sagaId: sagaId, detail: "state changed inside transaction") }
            saga = try Self.fetchSaga(db, id: sagaId)!
            try appendStep(db, saga: saga, step: t.step, status: t.status, detail: t.detail, at: ms)
            saga = try appendEvents(db, saga: saga, types: t.events, reason: t.status == .done ? nil : t.detail, now: now)
            return .applied(saga)
        }
    }

    private func setOrderStatus(_ db: Database, saga: Saga, to status: OrderStatus, at ms: Int64) throws {
        guard let orderId = saga.orderId else { throw SagaStoreInconsistency(sagaId: saga.id, detail: "no order to update") }
        try db.execute(
            sql: "UPDATE orders SET status = ?, updated_at = ? WHERE id = ? AND status = 'PENDING'",
            arguments: [status.rawValue, ms, orderId])
    }

    private func appendStep(_ db: Database, saga: Saga, step: SagaStepName, status: SagaStepStatus, detail: String?, at ms: Int64) throws {
        try db.execute(
            sql: "INSERT INTO saga_steps (saga_id, name, status, detail, at) VALUES (?, ?, ?, ?, ?)",
            arguments: [saga.id.uuidString, step.rawValue, status.rawValue, detail, ms])
    }

    /// Writes the events to the outbox with the saga's next sequence numbers.
    private func appendEvents(_ db: Database, saga: Saga, types: [SagaEventType], reason: String?, now: Date) throws -> Saga {
        guard !types.isEmpty else { return saga }
        var saga = saga
        for type in types {
            saga.eventSequence += 1
            let event = SagaEvent(type: type, saga: saga, sequence: saga.eventSequence, occurredAt: now, reason: reason)
            try db.execute(
                sql: "INSERT INTO outbox (event_id, topic, key, payload, created_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [event.eventId.uuidString, topic, saga.id.uuidString, try event.jsonPayload(), Millis.from(now)])
        }
        try db.execute(sql: "UPDATE sagas SET event_seq = ? WHERE id = ?", arguments: [saga.eventSequence, saga.id.uuidString])
        return saga
    }

    public func saga(id: UUID) async throws -> Saga? {
        try await database.writer.read { db in try Self.fetchSaga(db, id: id) }
    }

    public func saga(idempotencyKey: String) async throws -> Saga? {
        try await database.writer.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM sagas WHERE idempotency_key = ?", arguments: [idempotencyKey]).map(Self.saga)
        }
    }

    public func steps(sagaId: UUID) async throws -> [SagaStep] {
        try await database.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM saga_steps WHERE saga_id = ? ORDER BY id", arguments: [sagaId.uuidString])
                .enumerated().map { index, row in
                    SagaStep(sequence: index + 1, name: SagaStepName(rawValue: row["name"]) ?? .failSaga,
                             status: SagaStepStatus(rawValue: row["status"]) ?? .failed, detail: row["detail"], at: Millis.date(row["at"]))
                }
        }
    }

    public func order(id: Int64) async throws -> Order? {
        try await database.writer.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM orders WHERE id = ?", arguments: [id]).map { row in
                Order(id: row["id"], sagaId: UUID(uuidString: row["saga_id"])!, productId: row["product_id"], qty: row["qty"],
                      amountMinor: row["amount_minor"], currency: row["currency"],
                      status: OrderStatus(rawValue: row["status"]) ?? .pending,
                      createdAt: Millis.date(row["created_at"]), updatedAt: Millis.date(row["updated_at"]))
            }
        }
    }

    public func claimExpired(owner: String, now: Date, leaseUntil: Date, limit: Int) async throws -> [Saga] {
        try await database.writer.write { db in
            let nowMs = Millis.from(now)
            let ids = try String.fetchAll(
                db, sql: "SELECT id FROM sagas WHERE state NOT IN (\(Self.terminalList)) AND lease_until < ? ORDER BY lease_until LIMIT ?",
                arguments: [nowMs, limit])
            var claimed: [Saga] = []
            for id in ids {
                try db.execute(
                    sql: """
                        UPDATE sagas SET owner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ?
                        WHERE id = ? AND state NOT IN (\(Self.terminalList)) AND lease_until < ?
                        """,
                    arguments: [owner, Millis.from(leaseUntil), nowMs, id, nowMs])
                if db.changesCount == 1, let saga = try Row.fetchOne(db, sql: "SELECT * FROM sagas WHERE id = ?", arguments: [id]).map(Self.saga) {
                    claimed.append(saga)
                }
            }
            return claimed
        }
    }

    public func renewLeases(ids: [UUID], owner: String, until: Date) async throws {
        guard !ids.isEmpty else { return }
        try await database.writer.write { db in
            for id in ids {
                try db.execute(
                    sql: "UPDATE sagas SET lease_until = ? WHERE id = ? AND owner = ? AND state NOT IN (\(Self.terminalList))",
                    arguments: [Millis.from(until), id.uuidString, owner])
            }
        }
    }

    public func countUnfinished() async throws -> Int {
        try await database.writer.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sagas WHERE state NOT IN (\(Self.terminalList))") ?? 0
        }
    }

    // MARK: OutboxStore

    static func record(_ row: Row) -> OutboxRecord {
        OutboxRecord(id: row["id"], eventId: UUID(uuidString: row["event_id"])!, topic: row["topic"], key: row["key"],
                     payload: row["payload"], createdAt: Millis.date(row["created_at"]),
                     publishedAt: (row["published_at"] as Int64?).map(Millis.date))
    }

    public func unpublished(limit: Int) async throws -> [OutboxRecord] {
        try await database.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT ?", arguments: [limit]).map(Self.record)
        }
    }

    public func records(after: Int64, limit: Int, sagaId: UUID?) async throws -> [OutboxRecord] {
        try await database.writer.read { db in
            if let sagaId {
                return try Row.fetchAll(db, sql: "SELECT * FROM outbox WHERE key = ? AND id > ? ORDER BY id LIMIT ?",
                                        arguments: [sagaId.uuidString, after, limit]).map(Self.record)
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM outbox WHERE id > ? ORDER BY id LIMIT ?", arguments: [after, limit]).map(Self.record)
        }
    }

    public func markPublished(ids: [Int64], at: Date) async throws {
        guard !ids.isEmpty else { return }
        try await database.writer.write { db in
            for id in ids {
                try db.execute(sql: "UPDATE outbox SET published_at = ? WHERE id = ? AND published_at IS NULL", arguments: [Millis.from(at), id])
            }
        }
    }
}
