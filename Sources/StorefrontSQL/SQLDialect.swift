/// The few places where SQLite's and MariaDB's SQL differ. Identifiers that are keywords (`key`) are quoted
/// with backticks, which both accept.
public struct SQLDialect: Sendable {
    /// `INSERT IGNORE` / `INSERT OR IGNORE`: skip rows whose unique key exists.
    public var insertIgnore: String
    /// Appended to a SELECT that reads a row the transaction will update (`FOR UPDATE` on InnoDB; empty on
    /// SQLite, whose write transactions are serialized).
    public var forUpdate: String
    /// Appended to a SELECT that claims rows: rows other transactions hold locked are skipped, not waited for.
    public var forUpdateSkipLocked: String
    /// Most parameters one statement may bind.
    public var maxParameters: Int
    /// The database server's current time in UTC milliseconds since 1970 (leases are judged by it, so the app
    /// servers' clocks never decide who owns a saga).
    public var nowMillis: String

    public init(insertIgnore: String, forUpdate: String, forUpdateSkipLocked: String, maxParameters: Int, nowMillis: String) {
        self.insertIgnore = insertIgnore
        self.forUpdate = forUpdate
        self.forUpdateSkipLocked = forUpdateSkipLocked
        self.maxParameters = maxParameters
        self.nowMillis = nowMillis
    }

    public static let sqlite = SQLDialect(insertIgnore: "INSERT OR IGNORE", forUpdate: "", forUpdateSkipLocked: "", maxParameters: 32_766,
                                          nowMillis: "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)")
    public static let mariaDB = SQLDialect(insertIgnore: "INSERT IGNORE", forUpdate: " FOR UPDATE",
                                           forUpdateSkipLocked: " FOR UPDATE SKIP LOCKED", maxParameters: 65_535,
                                           nowMillis: "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)")

    /// `?, ?, ?` for an IN list.
    public static func placeholders(_ count: Int) -> String {
        Array(repeating: "?", count: count).joined(separator: ", ")
    }
}
