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
    /// Statements that return no rows, run in order — sent together where the engine can (MariaDB: one round
    /// trip). The first that fails throws (a unique-key violation as `SQLUniqueViolation`); those after it
    /// did not run. One result per statement.
    func runBatch(_ statements: [SQLStatement]) throws -> [SQLChanges]
    /// A write transaction's last statements: `runBatch`, where each statement whose index is in
    /// `requiringOneRow` must match exactly one row — the first that does not throws `SQLGuardFailed` (those
    /// after it did not run, and the block's transaction rolls back). Where the engine can (MariaDB) the COMMIT
    /// goes in the same round trip: nothing may run after it in the block.
    func runBatchAndCommit(_ statements: [SQLStatement], requiringOneRow: Set<Int>) throws -> [SQLChanges]
    /// Queries that return rows (a few), run in order — sent together where the engine can (MariaDB: one round
    /// trip; values come as text, which the same `SQLRow` accessors read). One result per query.
    func rowsBatch(_ queries: [SQLStatement]) throws -> [[SQLRow]]
}

/// One statement of a batch.
public struct SQLStatement {
    public var sql: String
    public var arguments: [SQLValue]

    public init(_ sql: String, _ arguments: [any SQLBindable] = []) {
        self.sql = sql
        self.arguments = arguments.map(\.sqlValue)
    }
}

extension SQLStatements {
    /// One after the other (an engine in-process has no round trips to save).
    public func runBatch(_ statements: [SQLStatement]) throws -> [SQLChanges] {
        try statements.map { try run($0.sql, $0.arguments) }
    }

    /// One after the other.
    public func rowsBatch(_ queries: [SQLStatement]) throws -> [[SQLRow]] {
        try queries.map { try rows($0.sql, $0.arguments) }
    }

    /// One after the other, each guard checked as it runs; the block's end commits.
    public func runBatchAndCommit(_ statements: [SQLStatement], requiringOneRow: Set<Int>) throws -> [SQLChanges] {
        try statements.enumerated().map { index, statement in
            let changes = try run(statement.sql, statement.arguments)
            if requiringOneRow.contains(index), changes.rows != 1 { throw SQLGuardFailed(statement: index) }
            return changes
        }
    }

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

/// A statement of `runBatchAndCommit` that had to match one row did not (its index in the batch).
public struct SQLGuardFailed: Error, Equatable {
    public var statement: Int
    public init(statement: Int) { self.statement = statement }
}

/// An INSERT hit a unique key (or primary key) that exists.
public struct SQLUniqueViolation: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
