import Foundation
import GRDB
import StorefrontCore

/// The simulated payment provider's ledger (`payments` table).
public struct SQLitePaymentLedger: PaymentLedger {
    let database: SQLiteDatabase

    static func record(_ row: Row) -> PaymentRecord {
        PaymentRecord(idempotencyKey: row["idempotency_key"], status: PaymentRecord.Status(rawValue: row["status"]) ?? .declined,
                      amountMinor: row["amount_minor"], currency: row["currency"], reference: row["reference"], reason: row["reason"],
                      createdAt: Millis.date(row["created_at"]), updatedAt: Millis.date(row["updated_at"]))
    }

    static func fetch(_ db: Database, key: String) throws -> PaymentRecord? {
        try Row.fetchOne(db, sql: "SELECT * FROM payments WHERE idempotency_key = ?", arguments: [key]).map(record)
    }

    public func payment(idempotencyKey: String) async throws -> PaymentRecord? {
        try await database.writer.read { db in try Self.fetch(db, key: idempotencyKey) }
    }

    public func insertIfAbsent(_ r: PaymentRecord) async throws -> PaymentRecord {
        try await database.writer.write { db in
            try db.execute(
                sql: """
                    INSERT OR IGNORE INTO payments (idempotency_key, status, amount_minor, currency, reference, reason, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [r.idempotencyKey, r.status.rawValue, r.amountMinor, r.currency, r.reference, r.reason,
                            Millis.from(r.createdAt), Millis.from(r.updatedAt)])
            return try Self.fetch(db, key: r.idempotencyKey)!
        }
    }

    public func markRefunded(idempotencyKey: String, at: Date) async throws -> PaymentRecord? {
        try await database.writer.write { db in
            try db.execute(
                sql: "UPDATE payments SET status = 'REFUNDED', updated_at = ? WHERE idempotency_key = ? AND status = 'CHARGED'",
                arguments: [Millis.from(at), idempotencyKey])
            return try Self.fetch(db, key: idempotencyKey)
        }
    }

    public func chargedTotals() async throws -> (count: Int, amountMinor: Int64) {
        try await database.writer.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT COUNT(*) AS n, COALESCE(SUM(amount_minor), 0) AS total FROM payments WHERE status = 'CHARGED'")!
            return (row["n"], row["total"])
        }
    }
}
