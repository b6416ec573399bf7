import Foundation
import StorefrontCore

/// What an UPDATE, INSERT or DELETE did.
public struct SQLChanges: Sendable {
    /// Rows matched (an UPDATE that sets a value to itself still counts), inserted or deleted.
    public var rows: Int
    /// The AUTO_INCREMENT / rowid of the row an INSERT created (0 when it created none).
    public var lastInsertID: Int64

    public init(rows: Int, lastInsertID: Int64) {
        self.rows = rows
        self.lastInsertID = lastInsertID
    }
}

/// Statements inside one `read` or `write` block of an `SQLExecutor`. Synchronous by design: the block runs
/// on the engine's own thread (never Swift's cooperative pool) and its statements run back to back. It must
/// not escape the block.
public protocol SQLStatements {
    /// A statement that returns no rows. A unique-key violation is thrown as `SQLUniqueViolation`.
    @discardableResult
    func run(_ sql: String, _ arguments: [SQLValue]) throws -> SQLChanges
    /// A statement that returns rows.
    func rows(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow]
}

extension SQLStatements {
    @discardableResult
    public func run(_ sql: String, _ arguments: [any SQLBindable] = []) throws -> SQLChanges {
        try run(sql, arguments.map(\.sqlValue))
    }

    public func rows(_ sql: String, _ arguments: [any SQLBindable] = []) throws -> [SQLRow] {
        try rows(sql, arguments.map(\.sqlValue))
    }

    public func row(_ sql: String, _ arguments: [any SQLBindable] = []) throws -> SQLRow? {
        try rows(sql, arguments.map(\.sqlValue)).first
    }
}

/// An INSERT hit a unique key (or primary key) that exists.
public struct SQLUniqueViolation: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// An engine the SQL stores run on: SQLite (embedded) or MariaDB (primary + replicas). The engine owns
/// connections, routing, retries of deadlock victims and the mapping of outages to
/// `StorefrontError.unavailable`; the stores own the SQL.
public protocol SQLExecutor: Sendable {
    /// What differs between the engines' SQL.
    var dialect: SQLDialect { get }
    /// `body` without a transaction, where `consistency` says (a replica may lag).
    func read<T: Sendable>(_ consistency: ReadConsistency, _ body: @escaping @Sendable (any SQLStatements) throws -> T) async throws -> T
    /// `body` in one transaction on the primary: committed when it returns, rolled back when it throws.
    func write<T: Sendable>(_ body: @escaping @Sendable (any SQLStatements) throws -> T) async throws -> T
}

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

    public init(insertIgnore: String, forUpdate: String, forUpdateSkipLocked: String, maxParameters: Int) {
        self.insertIgnore = insertIgnore
        self.forUpdate = forUpdate
        self.forUpdateSkipLocked = forUpdateSkipLocked
        self.maxParameters = maxParameters
    }

    public static let sqlite = SQLDialect(insertIgnore: "INSERT OR IGNORE", forUpdate: "", forUpdateSkipLocked: "", maxParameters: 32_766)
    public static let mariaDB = SQLDialect(insertIgnore: "INSERT IGNORE", forUpdate: " FOR UPDATE",
                                           forUpdateSkipLocked: " FOR UPDATE SKIP LOCKED", maxParameters: 65_535)

    /// `?, ?, ?` for an IN list.
    public static func placeholders(_ count: Int) -> String {
        Array(repeating: "?", count: count).joined(separator: ", ")
    }
}
