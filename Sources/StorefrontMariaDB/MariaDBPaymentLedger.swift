import Foundation
import MariaDB
import StorefrontCore

/// The simulated payment provider's ledger (`payments` table) on the primary.
public struct MariaDBPaymentLedger: PaymentLedger {
    let database: MariaDBDatabase

    static func record(_ row: MariaDBRow) throws -> PaymentRecord {
        PaymentRecord(idempotencyKey: try row.decode("idempotency_key"),
                      status: PaymentRecord.Status(rawValue: try row.decode("status")) ?? .declined,
                      amountMinor: try row.decode("amount_minor"), currency: try row.decode("currency"), reference: try row.decode("reference"),
                      reason: try row.decode("reason"), createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"))
    }

    static func fetch(_ s: MariaDBSession, key: String) throws -> PaymentRecord? {
        try s.query("SELECT * FROM payments WHERE idempotency_key = ?", [key]).first.map(record)
    }

    public func payment(idempotencyKey: String) async throws -> PaymentRecord? {
        try await database.read(.primary) { s in try Self.fetch(s, key: idempotencyKey) }
    }

    public func insertIfAbsent(_ r: PaymentRecord) async throws -> PaymentRecord {
        try await database.write { s in
            _ = try s.query(
                """
                INSERT IGNORE INTO payments (idempotency_key, status, amount_minor, currency, reference, reason, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [r.idempotencyKey, r.status.rawValue, r.amountMinor, r.currency, r.reference, r.reason,
                 Millis.from(r.createdAt), Millis.from(r.updatedAt)] as [any MariaDBEncodable])
            return try Self.fetch(s, key: r.idempotencyKey)!
        }
    }

    public func markRefunded(idempotencyKey: String, at: Date) async throws -> PaymentRecord? {
        try await database.write { s in
            _ = try s.query("UPDATE payments SET status = 'REFUNDED', updated_at = ? WHERE idempotency_key = ? AND status = 'CHARGED'",
                            [Millis.from(at), idempotencyKey] as [any MariaDBEncodable])
            return try Self.fetch(s, key: idempotencyKey)
        }
    }

    public func chargedTotals() async throws -> (count: Int, amountMinor: Int64) {
        try await database.read(.primary) { s in
            let row = try s.query("SELECT COUNT(*) AS n, COALESCE(SUM(amount_minor), 0) AS total FROM payments WHERE status = 'CHARGED'").first!
            return (try row.decode("n"), try row.decode("total"))
        }
    }
}
