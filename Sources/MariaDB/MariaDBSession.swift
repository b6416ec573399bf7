internal import CMariaDB
import Foundation
import NIOPosix
import Synchronization

/// Statements on a connection, inside `withSession` (on the executor's thread). Synchronous by design:
/// a transaction's statements run back to back without hopping threads. Do not let it escape the block.
public struct MariaDBSession {
    let connection: MariaDBConnection

    /// A prepared statement (cached), parameters bound by type, rows decoded by column type.
    public func query(_ sql: String, _ parameters: [any MariaDBEncodable] = []) throws -> MariaDBResult {
        try query(sql, parameters.map(\.mariaDBValue))
    }

    public func query(_ sql: String, _ parameters: [MariaDBValue]) throws -> MariaDBResult {
        let stmt = try connection.statement(sql)
        let expected = Int(mysql_stmt_param_count(stmt))
        guard expected == parameters.count else {
            throw MariaDBError.misuse("statement takes \(expected) parameters, got \(parameters.count): \(sql.prefix(80))")
        }
        var params = ParameterBuffers(parameters)
        defer { params.free() }
        let failed = params.binds.withUnsafeMutableBufferPointer { binds in
            (expected > 0 && mysql_stmt_bind_param(stmt, binds.baseAddress) != 0) || mysql_stmt_execute(stmt) != 0
        }
        if failed { throw MariaDBConnection.error(of: stmt) }
        guard let metadata = mysql_stmt_result_metadata(stmt) else {
            return MariaDBResult(rows: [], affectedRows: mysql_stmt_affected_rows(stmt), lastInsertID: mysql_stmt_insert_id(stmt))
        }
        defer {
            mysql_free_result(metadata)
            mysql_stmt_free_result(stmt)
        }
        if mysql_stmt_store_result(stmt) != 0 { throw MariaDBConnection.error(of: stmt) }
        let rows = try ResultReader(stmt: stmt, metadata: metadata).readAll()
        return MariaDBResult(rows: rows, affectedRows: mysql_stmt_affected_rows(stmt), lastInsertID: 0)
    }

    /// A statement through the text protocol (DDL, transaction control, SHOW …): every value is a string or
    /// NULL. Runs several `;`-separated statements only if the server allows multi-statements (it does not here).
    @discardableResult
    public func execute(_ sql: String) throws -> MariaDBResult {
        let mysql = connection.mysql
        if mysql_real_query(mysql, sql, UInt(sql.utf8.count)) != 0 { throw connection.lastError() }
        guard let result = mysql_store_result(mysql) else {
            if mysql_field_count(mysql) != 0 { throw connection.lastError() }
            return MariaDBResult(rows: [], affectedRows: mysql_affected_rows(mysql), lastInsertID: mysql_insert_id(mysql))
        }
        defer { mysql_free_result(result) }
        let count = Int(mysql_num_fields(result))
        let fields = mysql_fetch_fields(result)!
        let columns = MariaDBColumns((0..<count).map { String(cString: fields[$0].name) })
        var rows: [MariaDBRow] = []
        while let row = mysql_fetch_row(result) {
            let lengths = mysql_fetch_lengths(result)!
            let values: [MariaDBValue] = (0..<count).map { i in
                guard let cell = row[i] else { return .null }
                return .string(String(decoding: UnsafeRawBufferPointer(start: cell, count: Int(lengths[i])), as: UTF8.self))
            }
            rows.append(MariaDBRow(columns: columns, values: values))
        }
        return MariaDBResult(rows: rows, affectedRows: UInt64(rows.count), lastInsertID: 0)
    }

    /// START TRANSACTION, `body`, COMMIT; ROLLBACK when `body` throws (the rollback's own failure is ignored,
    /// the first error is thrown).
    public func transaction<T>(_ body: (MariaDBSession) throws -> T) throws -> T {
        try execute("START TRANSACTION")
        do {
            let result = try body(self)
            try execute("COMMIT")
            return result
        } catch {
            _ = try? execute("ROLLBACK")
            throw error
        }
    }
}

@available(*, unavailable, message: "a session belongs to the executor thread running its block")
extension MariaDBSession: Sendable {}
