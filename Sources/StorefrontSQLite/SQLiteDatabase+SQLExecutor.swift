import Foundation
import GRDB
import StorefrontCore
import StorefrontSQL

/// The SQL stores on the embedded file: reads and writes both run on GRDB's own threads; a write is one
/// transaction on the pool's single writer — or, when writes queue for it, one savepoint in a group-committed
/// transaction (`SQLiteGroupCommit`), all-or-nothing on its own all the same.
extension SQLiteDatabase: SQLExecutor {
    public var dialect: SQLDialect { .sqlite }

    public func read<T: Sendable>(_ consistency: ReadConsistency, _ body: @escaping @Sendable (any SQLStatements) throws -> T) async throws -> T {
        try await writer.read { db in try body(SQLiteStatements(db: db)) }
    }

    public func write<T: Sendable>(_ body: @escaping @Sendable (any SQLStatements) throws -> T) async throws -> T {
        try await groupCommit.write { db in try body(SQLiteStatements(db: db)) }
    }
}

/// `SQLStatements` on one GRDB connection, inside its block. Statements are prepared once per connection
/// and reused (`cachedStatement`; preparing each time — parse, plan, GRDB's authorizer — was a fifth of the
/// embedded server's CPU under purchase load). The stores' SQL is a fixed set of texts with `?` arguments,
/// except IN lists and multi-row VALUES whose length varies: those are cached up to `cachedPlaceholders`
/// arguments (a saga step's rows, short lists), so the cache (never evicted by GRDB) stays a few hundred
/// statements; longer ones (a relay batch, a seed) are prepared for their one use. One statement per text
/// (`cachedStatement` refuses several; the schema's scripts use `db.execute`).
struct SQLiteStatements: SQLStatements {
    let db: Database
    static let cachedPlaceholders = 40

    func statement(_ sql: String) throws -> Statement {
        var placeholders = 0
        for byte in sql.utf8 where byte == UInt8(ascii: "?") { placeholders += 1 }
        return placeholders <= Self.cachedPlaceholders ? try db.cachedStatement(sql: sql) : try db.makeStatement(sql: sql)
    }

    func run(_ sql: String, _ arguments: [SQLValue]) throws -> SQLChanges {
        do {
            try statement(sql).execute(arguments: Self.arguments(arguments))
        } catch let error as DatabaseError where error.isUniqueViolation {
            throw SQLUniqueViolation(error.description)
        }
        return SQLChanges(rows: db.changesCount, lastInsertID: db.lastInsertedRowID)
    }

    func rows(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
        let rows = try Row.fetchAll(statement(sql), arguments: Self.arguments(arguments))
        guard let first = rows.first else { return [] }
        let columns = SQLColumns(Array(first.columnNames))
        return rows.map { row in SQLRow(columns: columns, values: row.databaseValues.map(Self.value)) }
    }

    static func arguments(_ values: [SQLValue]) -> StatementArguments {
        // Through the existential initialiser: the generic one maps with a key path that the runtime
        // instantiates on every call (it showed in profiles).
        StatementArguments(values.map { value -> (any DatabaseValueConvertible)? in
            switch value {
            case .null: return nil
            case .int(let n): return n
            case .text(let s): return s
            }
        })
    }

    static func value(_ value: DatabaseValue) -> SQLValue {
        switch value.storage {
        case .null: return .null
        case .int64(let n): return .int(n)
        case .double(let d): return Int64(exactly: d).map(SQLValue.int) ?? .text(String(d))
        case .string(let s): return .text(s)
        case .blob(let data): return .text(String(decoding: data, as: UTF8.self))
        }
    }
}
