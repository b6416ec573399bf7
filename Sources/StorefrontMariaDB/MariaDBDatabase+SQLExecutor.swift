import Foundation
import MariaDB
import StorefrontCore
import StorefrontSQL

/// The SQL stores on MariaDB: `read` and `write` are the engine's routing (replica rotation with fallback to
/// the primary, deadlock retries, outages as 503), run on the executor's threads.
extension MariaDBDatabase: SQLExecutor {
    public var dialect: SQLDialect { .mariaDB }

    public func read<T: Sendable>(_ consistency: ReadConsistency, _ body: @escaping @Sendable (any SQLStatements) throws -> T) async throws -> T {
        try await read(consistency) { (s: MariaDBSession) in try body(MariaDBStatements(session: s)) }
    }

    public func write<T: Sendable>(_ body: @escaping @Sendable (any SQLStatements) throws -> T) async throws -> T {
        try await write { (s: MariaDBSession) in try body(MariaDBStatements(session: s)) }
    }

    public func writeAutocommit<T: Sendable>(_ body: @escaping @Sendable (any SQLStatements) throws -> T) async throws -> T {
        try await writeAutocommit { (s: MariaDBSession) in try body(MariaDBStatements(session: s)) }
    }
}

/// `SQLStatements` on one session (prepared statements, binary protocol).
struct MariaDBStatements: SQLStatements {
    let session: MariaDBSession

    func run(_ sql: String, _ arguments: [SQLValue]) throws -> SQLChanges {
        Self.changes(try query(sql, arguments))
    }

    func rows(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
        Self.rows(try query(sql, arguments).rows)
    }

    func rowsBatch(_ queries: [SQLStatement]) throws -> [[SQLRow]] {
        if queries.count == 1 { return [try rows(queries[0].sql, queries[0].arguments)] }  // prepared, cached
        return try session.batch(Self.texts(queries)).map { Self.rows($0.rows) }
    }

    func runBatch(_ statements: [SQLStatement]) throws -> [SQLChanges] {
        if statements.count == 1 { return [try run(statements[0].sql, statements[0].arguments)] }  // prepared, cached
        return try mapped { try session.batch(Self.texts(statements)).map(Self.changes) }
    }

    func runBatchAndCommit(_ statements: [SQLStatement], requiringOneRow: Set<Int>) throws -> [SQLChanges] {
        try mapped { try session.batchAndCommit(Self.texts(statements), requiringOneRow: requiringOneRow).map(Self.changes) }
    }

    private func query(_ sql: String, _ arguments: [SQLValue]) throws -> MariaDBResult {
        try mapped { try session.query(sql, arguments.map(Self.value)) }
    }

    /// The driver's errors the stores act on, as the SQL layer's.
    private func mapped<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let failed as MariaDBGuardFailed {
            throw SQLGuardFailed(statement: failed.statement)
        } catch let error as MariaDBError where error.kind == .duplicateKey {
            throw SQLUniqueViolation(error.message)
        }
    }

    static func texts(_ statements: [SQLStatement]) -> [(sql: String, parameters: [MariaDBValue])] {
        statements.map { ($0.sql, $0.arguments.map(Self.value)) }
    }

    static func changes(_ result: MariaDBResult) -> SQLChanges {
        SQLChanges(rows: Int(result.affectedRows), lastInsertID: Int64(result.lastInsertID))
    }

    static func rows(_ result: [MariaDBRow]) -> [SQLRow] {
        guard let first = result.first else { return [] }
        let columns = SQLColumns(first.columnNames)
        return result.map { row in SQLRow(columns: columns, values: row.values.map(Self.value)) }
    }

    static func value(_ value: SQLValue) -> MariaDBValue {
        switch value {
        case .null: return .null
        case .int(let n): return .int(n)
        case .text(let s): return .string(s)
        }
    }

    static func value(_ value: MariaDBValue) -> SQLValue {
        switch value {
        case .null: return .null
        case .int(let n): return .int(n)
        case .uint(let n): return Int64(exactly: n).map(SQLValue.int) ?? .text(String(n))
        case .double(let d): return Int64(exactly: d).map(SQLValue.int) ?? .text(String(d))
        case .decimal(let d): return Int64(d.text).map(SQLValue.int) ?? .text(d.text)
        case .string(let s): return .text(s)
        case .bytes(let b): return .text(String(decoding: b, as: UTF8.self))
        case .dateTime(let t): return .text(t.description)
        }
    }
}
