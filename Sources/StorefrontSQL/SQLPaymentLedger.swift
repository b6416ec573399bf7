import Foundation
import StorefrontCore

/// The simulated payment provider's ledger (`payments` table), on the primary.
public struct SQLPaymentLedger: PaymentLedger {
    let database: any SQLExecutor

    public init(database: any SQLExecutor) {
        self.database = database
    }

    static func record(_ row: SQLRow) throws -> PaymentRecord {
        PaymentRecord(idempotencyKey: try row.text("idempotency_key"), status: try row.value("status", fallback: .declined),
                      amountMinor: try row.int("amount_minor"), currency: try row.text("currency"), reference: try row.text("reference"),
                      reason: try row.optionalText("reason"), createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"))
    }

    static func fetch(_ s: any SQLStatements, key: String) throws -> PaymentRecord? {
        try s.row("SELECT * FROM payments WHERE idempotency_key = ?", [key]).map(record)
    }

    public func payment(idempotencyKey: String) async throws -> PaymentRecord? {
        try await database.read(.primary) { s in try Self.fetch(s, key: idempotencyKey) }
    }

    public func insertIfAbsent(_ r: PaymentRecord) async throws -> (record: PaymentRecord, inserted: Bool) {
        let insertIgnore = database.dialect.insertIgnore
        // Autocommit: the insert is one statement, and the read of an ignored key's row sees it committed
        // (an insert racing on the same key waits for the other's commit before it is ignored).
        return try await database.writeAutocommit { s in
            let inserted = try s.run(
                """
                \(insertIgnore) INTO payments (idempotency_key, status, amount_minor, currency, reference, reason, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [r.idempotencyKey, r.status.rawValue, r.amountMinor, r.currency, r.reference, r.reason, r.createdAt, r.updatedAt]).rows == 1
            // Inserted: the row is `r` (not read back, one statement less); ignored: the key's first record.
            guard inserted else {
                guard let existing = try Self.fetch(s, key: r.idempotencyKey) else {
                    throw LedgerInconsistency(description: "payment \(r.idempotencyKey) was neither inserted nor found")
                }
                return (existing, false)
            }
            var stored = r
            stored.createdAt = Millis.date(Millis.from(r.createdAt))
            stored.updatedAt = Millis.date(Millis.from(r.updatedAt))
            return (stored, true)
        }
    }

    public func markRefunded(idempotencyKey: String, at: Date) async throws -> PaymentRecord? {
        try await database.write { s in
            try s.run("UPDATE payments SET status = 'REFUNDED', updated_at = ? WHERE idempotency_key = ? AND status = 'CHARGED'",
                      [at, idempotencyKey])
            return try Self.fetch(s, key: idempotencyKey)
        }
    }

    public func chargedTotals() async throws -> (count: Int, amountMinor: Int64) {
        try await database.read(.primary) { s in
            let row = try s.row("SELECT COUNT(*) AS n, COALESCE(SUM(amount_minor), 0) AS total FROM payments WHERE status = 'CHARGED'")!
            return (Int(try row.int("n")), try row.int("total"))
        }
    }
}

/// The ledger's insert was ignored, yet no row holds the key (a constraint the insert's IGNORE swallowed): a
/// server error, never a client's.
struct LedgerInconsistency: Error, CustomStringConvertible {
    let description: String
}
