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
        try ensureNotEnded()
        try beginIfPending()
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

    /// One statement through the text protocol (DDL, transaction control, SHOW …): every value is a string or
    /// NULL. (The connection accepts several `;`-separated statements, for `batch`; `execute` reads one result.)
    @discardableResult
    public func execute(_ sql: String) throws -> MariaDBResult {
        try ensureNotEnded()
        try beginIfPending()
        return try send(sql, statements: 1)[0]
    }

    /// Statements that return no rows (or few), sent in ONE round trip (the text protocol's multi-statements)
    /// and answered in order. Each `?` outside quotes and backticks becomes its parameter as a literal: integers
    /// as digits, strings escaped for this connection (`mysql_real_escape_string`) and quoted, bytes as hex,
    /// NULL. The server stops at the first statement that fails: its error is thrown, and the ones after it
    /// did not run. A pending START TRANSACTION goes first in the same round trip.
    public func batch(_ statements: [(sql: String, parameters: [MariaDBValue])]) throws -> [MariaDBResult] {
        try batch(statements, requiringOneRow: [], commit: false)
    }

    /// The transaction's last statements and its COMMIT, in one round trip: `batch`, where each statement whose
    /// index is in `requiringOneRow` must match exactly one row (an UPDATE's rows matched: the connection uses
    /// CLIENT_FOUND_ROWS) — the first that does not rolls the transaction back in the server and stops the batch
    /// with `MariaDBGuardFailed`, before the statements after it and the COMMIT. Nothing may run after it in the
    /// transaction's block (it throws `.misuse`). A row lock the batch takes is held for the rest of the batch
    /// and the commit only — not for a round trip to the client and back.
    public func batchAndCommit(_ statements: [(sql: String, parameters: [MariaDBValue])], requiringOneRow: Set<Int>) throws -> [MariaDBResult] {
        guard connection.transactionOpen else { throw MariaDBError.misuse("batchAndCommit outside a transaction") }
        do {
            return try batch(statements, requiringOneRow: requiringOneRow, commit: true)
        } catch let error as MariaDBError where error.code == Self.guardErrorCode && error.message.hasPrefix(Self.guardMessage) {
            connection.endedByBatch = true  // rolled back in the server: no ROLLBACK follows, and nothing may run
            throw MariaDBGuardFailed(statement: Int(error.message.dropFirst(Self.guardMessage.count)) ?? -1)
        }
    }

    /// SIGNAL's error (ER_SIGNAL_EXCEPTION) and the message that names a guard's statement.
    static let guardErrorCode: UInt32 = 1644
    static let guardMessage = "storefront guard failed: statement "

    private func batch(_ statements: [(sql: String, parameters: [MariaDBValue])], requiringOneRow guarded: Set<Int>,
                       commit: Bool) throws -> [MariaDBResult] {
        guard !statements.isEmpty else { return [] }
        try ensureNotEnded()
        var text = ""
        var sent = 0
        var kept: [Int] = []  // which of the server's answers are the caller's statements'
        if connection.beginPending {
            connection.beginPending = false
            text = "START TRANSACTION;\n"
            sent = 1
        }
        for (index, statement) in statements.enumerated() {
            if index > 0 { text += ";\n" }
            try appendRendered(statement.sql, statement.parameters, to: &text)
            kept.append(sent)
            sent += 1
            if guarded.contains(index) {
                // A compound statement outside a stored program (MariaDB ≥ 10.1): an error stops the batch here. The
                // ROLLBACK first, in the server: the rows the transaction locked are free before the answer travels.
                text += ";\nIF ROW_COUNT() <> 1 THEN ROLLBACK; SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '\(Self.guardMessage)\(index)'; END IF"
                sent += 1
            }
        }
        if commit {
            text += ";\nCOMMIT"
            sent += 1
        }
        let answers = try send(text, statements: sent)
        if commit { connection.endedByBatch = true }
        return kept.map { answers[$0] }
    }

    /// Sends `sql` (`statements` statements) and reads every result; a failing statement's error is thrown once
    /// the connection is back in step (the server sends nothing after it).
    private func send(_ sql: String, statements: Int) throws -> [MariaDBResult] {
        let mysql = connection.mysql
        if mysql_real_query(mysql, sql, UInt(sql.utf8.count)) != 0 { throw connection.lastError() }
        var results: [MariaDBResult] = []
        while true {
            results.append(try storeResult(mysql))
            let next = mysql_next_result(mysql)
            if next < 0 { break }
            if next > 0 { throw connection.lastError() }
        }
        guard results.count == statements else {
            throw MariaDBError.misuse("sent \(statements) statements, the server answered \(results.count): \(sql.prefix(80))")
        }
        return results
    }

    /// `sql` with each placeholder replaced by its parameter as a literal.
    private func appendRendered(_ sql: String, _ parameters: [MariaDBValue], to text: inout String) throws {
        var quote: UInt8?  // inside '…', "…" or `…`
        var next = 0
        var chunkStart = sql.utf8.startIndex
        let utf8 = sql.utf8
        var i = utf8.startIndex
        while i < utf8.endIndex {
            let byte = utf8[i]
            if let open = quote {
                if byte == UInt8(ascii: "\\"), open != UInt8(ascii: "`") {
                    i = utf8.index(after: i)  // the escaped byte is skipped with it
                    if i < utf8.endIndex { i = utf8.index(after: i) }
                    continue
                }
                if byte == open { quote = nil }  // a doubled quote closes and reopens: the same
            } else if byte == UInt8(ascii: "'") || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "`") {
                quote = byte
            } else if byte == UInt8(ascii: "?") {
                guard next < parameters.count else {
                    throw MariaDBError.misuse("more placeholders than the \(parameters.count) parameters: \(sql.prefix(80))")
                }
                text += String(sql[chunkStart..<i])
                try appendLiteral(parameters[next], to: &text)
                next += 1
                chunkStart = utf8.index(after: i)
            }
            i = utf8.index(after: i)
        }
        guard quote == nil else { throw MariaDBError.misuse("unterminated quote: \(sql.prefix(80))") }
        guard next == parameters.count else {
            throw MariaDBError.misuse("statement takes \(next) parameters, got \(parameters.count): \(sql.prefix(80))")
        }
        text += String(sql[chunkStart...])
    }

    private func appendLiteral(_ value: MariaDBValue, to text: inout String) throws {
        switch value {
        case .null: text += "NULL"
        case .int(let n): text += String(n)
        case .uint(let n): text += String(n)
        case .decimal(let d): text += d.text
        case .double(let d):
            guard d.isFinite else { throw MariaDBError.misuse("a non-finite double cannot be a literal") }
            text += "\(d)"
        case .string(let string): text += try escaped(Array(string.utf8))
        case .dateTime(let t): text += try escaped(Array(t.description.utf8))
        case .bytes(let bytes):
            text += "X'"
            for byte in bytes {
                text += String(byte >> 4, radix: 16)
                text += String(byte & 0x0F, radix: 16)
            }
            text += "'"
        }
    }

    /// `'…'`, escaped by the client library for this connection's character set and SQL mode.
    private func escaped(_ bytes: [UInt8]) throws -> String {
        guard !bytes.isEmpty else { return "''" }
        var out = [CChar](repeating: 0, count: bytes.count * 2 + 1)
        let length = bytes.withUnsafeBufferPointer { from in
            from.withMemoryRebound(to: CChar.self) { from in
                mysql_real_escape_string(connection.mysql, &out, from.baseAddress!, UInt(bytes.count))
            }
        }
        guard length != UInt.max else { throw MariaDBError.misuse("a string could not be escaped") }
        let body = out.prefix(Int(length)).withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: UInt8.self) { String(decoding: $0, as: UTF8.self) }
        }
        return "'" + body + "'"
    }

    /// The current result of a text-protocol round trip: rows as strings or NULL, or what the statement changed.
    private func storeResult(_ mysql: UnsafeMutablePointer<MYSQL>) throws -> MariaDBResult {
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
    /// START TRANSACTION is not a round trip of its own: it is sent with the transaction's first statement (in the
    /// same round trip when that is a `batch`). A transaction that ran nothing sends nothing.
    /// A block that ends with `batchAndCommit` has committed already: no COMMIT follows it.
    public func transaction<T>(_ body: (MariaDBSession) throws -> T) throws -> T {
        connection.beginPending = true
        connection.transactionOpen = true
        connection.endedByBatch = false
        defer {
            connection.transactionOpen = false
            connection.endedByBatch = false
        }
        do {
            let result = try body(self)
            if connection.beginPending {
                connection.beginPending = false
            } else if !connection.endedByBatch {
                try execute("COMMIT")
            }
            return result
        } catch {
            if connection.beginPending {
                connection.beginPending = false
            } else if !connection.endedByBatch {
                _ = try? execute("ROLLBACK")
            }
            throw error
        }
    }

    /// Refuses a statement after `batchAndCommit` ended the transaction (it would run in autocommit, outside it).
    private func ensureNotEnded() throws {
        guard !connection.endedByBatch else {
            throw MariaDBError.misuse("the transaction ended with its last batch (committed, or rolled back by a guard)")
        }
    }

    /// Sends a START TRANSACTION that `transaction` deferred, before a statement that cannot carry it.
    private func beginIfPending() throws {
        guard connection.beginPending else { return }
        connection.beginPending = false
        _ = try send("START TRANSACTION", statements: 1)
    }
}

/// A statement of `batchAndCommit` that had to match one row matched none (or several): the batch stopped
/// after it and the transaction rolls back. `statement` is its index in the batch.
public struct MariaDBGuardFailed: Error, Equatable {
    public var statement: Int
    public init(statement: Int) { self.statement = statement }
}

@available(*, unavailable, message: "a session belongs to the executor thread running its block")
extension MariaDBSession: Sendable {}
