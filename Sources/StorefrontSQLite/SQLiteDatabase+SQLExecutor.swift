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

/// `SQLStatements` on one GRDB connection, inside its block.
struct SQLiteStatements: SQLStatements {
    let db: Database

    func run(_ sql: String, _ arguments: [SQLValue]) throws -> SQLChanges {
        do {
            try db.execute(sql: sql, arguments: Self.arguments(arguments))
        } catch let error as DatabaseError where error.isUniqueViolation {
            throw SQLUniqueViolation(error.description)
        }
        return SQLChanges(rows: db.changesCount, lastInsertID: db.lastInsertedRowID)
    }

    func rows(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
        let rows = try Row.fetchAll(db, sql: sql, arguments: Self.arguments(arguments))
        guard let first = rows.first else { return [] }
        let columns = SQLColumns(Array(first.columnNames))
        return rows.map { row in SQLRow(columns: columns, values: row.databaseValues.map(Self.value)) }
    }

    static func arguments(_ values: [SQLValue]) -> StatementArguments {
        StatementArguments(values.map { value -> DatabaseValue in
            switch value {
            case .null: return .null
            case .int(let n): return n.databaseValue
            case .text(let s): return s.databaseValue
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
