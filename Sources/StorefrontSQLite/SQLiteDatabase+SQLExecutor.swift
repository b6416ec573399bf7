import Foundation
import GRDB
import StorefrontCore
import StorefrontSQL

/// The SQL stores on the embedded file: reads and writes both run on GRDB's own threads; a write is one
/// transaction on the pool's single writer.
extension SQLiteDatabase: SQLExecutor {
    public var dialect: SQLDialect { .sqlite }

    public func read<T: Sendable>(_ consistency: ReadConsistency, _ body: @escaping @Sendable (any SQLStatements) throws -> T) async throws -> T {
        try await writer.read { db in try body(SQLiteStatements(db: db)) }
    }

    public func write<T: Sendable>(_ body: @escaping @Sendable (any SQLStatements) throws -> T) async throws -> T {
        try await writer.write { db in try body(SQLiteStatements(db: db)) }
    }
}

/// `SQLStatements` on one GRDB connection, inside its block. Statements are prepared once per connection
/// and reused (`cachedStatement`): the stores' SQL is a fixed set of texts with `?` arguments (an IN list's
/// length varies, bounded by its batch size), and preparing each time — parse, plan, GRDB's authorizer —
/// was a fifth of the embedded server's CPU under purchase load.
struct SQLiteStatements: SQLStatements {
    let db: Database

    func run(_ sql: String, _ arguments: [SQLValue]) throws -> SQLChanges {
        do {
            try db.cachedStatement(sql: sql).execute(arguments: Self.arguments(arguments))
        } catch let error as DatabaseError where error.isUniqueViolation {
            throw SQLUniqueViolation(error.description)
        }
        return SQLChanges(rows: db.changesCount, lastInsertID: db.lastInsertedRowID)
    }

    func rows(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
        let rows = try Row.fetchAll(db.cachedStatement(sql: sql), arguments: Self.arguments(arguments))
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
