internal import CMariaDB
import Foundation
import NIOPosix
import Synchronization

/// The threads that run Connector/C's blocking calls, so they never block Swift's cooperative pool.
/// One call at a time per connection; size it at least as large as the connection pools that use it.
public final class MariaDBExecutor: Sendable {
    private let threads: NIOThreadPool

    public init(threads: Int) {
        self.threads = NIOThreadPool(numberOfThreads: threads)
        self.threads.start()
    }

    /// The process-wide executor (32 threads), started on first use.
    public static let shared = MariaDBExecutor(threads: 32)

    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await threads.runIfActive(body)
    }

    public func shutdown() async throws {
        try await threads.shutdownGracefully()
    }
}

/// `mysql_library_init` exactly once per process, before the first handle.
private let libraryReady: Bool = mysql_server_init(0, nil, nil) == 0

/// One client connection. Every call hops to the executor once; `withSession` runs a whole block of
/// statements (a transaction, typically) in that one hop. A connection serves one task at a time: a second
/// concurrent use fails with `.misuse` instead of corrupting the protocol. Not shared: a pool leases it.
public final class MariaDBConnection: @unchecked Sendable {
    // `handle` and `statements` are only touched on the executor while `busy` is held (or in close()).
    private let handle: UnsafeMutablePointer<MYSQL>
    private var statements: [String: UnsafeMutablePointer<MYSQL_STMT>] = [:]
    private let busy = Atomic<Bool>(false)
    private let closed = Atomic<Bool>(false)
    private let brokenFlag = Atomic<Bool>(false)
    let executor: MariaDBExecutor
    public let configuration: MariaDBConfiguration
    /// The server's id for this connection (`CONNECTION_ID()`, what `KILL` takes).
    public let serverConnectionID: UInt

    static let statementCacheLimit = 128

    private init(handle: UnsafeMutablePointer<MYSQL>, executor: MariaDBExecutor, configuration: MariaDBConfiguration) {
        self.handle = handle
        self.executor = executor
        self.configuration = configuration
        serverConnectionID = mysql_thread_id(handle)
    }

    /// Connects (on the executor), with utf8mb4, UTC session time zone and strict SQL mode.
    public static func connect(_ configuration: MariaDBConfiguration, executor: MariaDBExecutor = .shared) async throws -> MariaDBConnection {
        guard libraryReady else { throw MariaDBError(kind: .other, message: "mysql_library_init failed") }
        let raw = try await executor.run { () throws -> UInt in
            guard let mysql = mysql_init(nil) else { throw MariaDBError(kind: .other, message: "mysql_init: out of memory") }
            var connectTimeout = UInt32(clamping: configuration.connectTimeout.components.seconds)
            var readTimeout = UInt32(clamping: configuration.readTimeout.components.seconds)
            var writeTimeout = UInt32(clamping: configuration.writeTimeout.components.seconds)
            mysql_options(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &connectTimeout)
            mysql_options(mysql, MYSQL_OPT_READ_TIMEOUT, &readTimeout)
            mysql_options(mysql, MYSQL_OPT_WRITE_TIMEOUT, &writeTimeout)
            mysql_options(mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4")
            if let tls = configuration.tls {
                var on: my_bool = 1
                var verify: my_bool = tls.verifyServerCertificate ? 1 : 0
                mysql_ssl_set(mysql, nil, nil, tls.caFile, nil, nil)
                mysql_options(mysql, MYSQL_OPT_SSL_ENFORCE, &on)
                mysql_options(mysql, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify)
            }
            let connected = mysql_real_connect(
                mysql, configuration.unixSocket == nil ? configuration.host : nil, configuration.user, configuration.password,
                configuration.database, UInt32(configuration.port), configuration.unixSocket, UInt(CLIENT_FOUND_ROWS))
            guard connected != nil else {
                let error = Self.error(of: mysql)
                mysql_close(mysql)
                throw error
            }
            let setup = "SET SESSION time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO'"
            if mysql_real_query(mysql, setup, UInt(setup.utf8.count)) != 0 {
                let error = Self.error(of: mysql)
                mysql_close(mysql)
                throw error
            }
            return UInt(bitPattern: mysql)
        }
        return MariaDBConnection(handle: UnsafeMutablePointer(bitPattern: raw)!, executor: executor, configuration: configuration)
    }

    /// Connects, runs `body` and closes the connection — also when `body` throws (for one-off administrative
    /// work; the application uses a pool).
    public static func withConnection<T: Sendable>(_ configuration: MariaDBConfiguration, executor: MariaDBExecutor = .shared,
                                                   _ body: (MariaDBConnection) async throws -> T) async throws -> T {
        let connection = try await connect(configuration, executor: executor)
        do {
            let result = try await body(connection)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }

    /// True after an error that leaves the connection unusable (lost, killed, server gone) or after close.
    public var isBroken: Bool { brokenFlag.load(ordering: .relaxed) || closed.load(ordering: .relaxed) }

    /// Runs `body` on the executor with exclusive use of the connection.
    public func withSession<T: Sendable>(_ body: @escaping @Sendable (MariaDBSession) throws -> T) async throws -> T {
        guard !busy.exchange(true, ordering: .acquiring) else { throw MariaDBError.misuse("connection used by two tasks at once") }
        defer { busy.store(false, ordering: .releasing) }
        guard !closed.load(ordering: .relaxed) else { throw MariaDBError.misuse("connection is closed") }
        return try await executor.run {
            do {
                return try body(MariaDBSession(connection: self))
            } catch let error as MariaDBError {
                if error.breaksConnection { self.brokenFlag.store(true, ordering: .relaxed) }
                throw error
            }
        }
    }

    /// One prepared statement with parameters (cached per connection by its SQL text).
    public func query(_ sql: String, _ parameters: [any MariaDBEncodable] = []) async throws -> MariaDBResult {
        let values = parameters.map(\.mariaDBValue)
        return try await withSession { try $0.query(sql, values) }
    }

    /// `body` inside START TRANSACTION … COMMIT (ROLLBACK if it throws).
    public func transaction<T: Sendable>(_ body: @escaping @Sendable (MariaDBSession) throws -> T) async throws -> T {
        try await withSession { try $0.transaction(body) }
    }

    /// A round trip to the server (a broken connection becomes `isBroken`).
    public func ping() async throws {
        try await withSession { session in
            if mysql_ping(session.connection.handle) != 0 { throw session.connection.lastError() }
        }
    }

    /// Closes prepared statements and the connection (sends COM_QUIT). Idempotent.
    public func close() async {
        guard !closed.exchange(true, ordering: .relaxed) else { return }
        // Wait for a call in flight to finish: the handle must not be freed under it.
        while busy.load(ordering: .acquiring) { try? await Task.sleep(for: .milliseconds(1)) }
        let statements = self.statements.values.map { UInt(bitPattern: $0) }
        self.statements.removeAll()
        let handle = UInt(bitPattern: self.handle)
        _ = try? await executor.run {
            statements.forEach { mysql_stmt_close(UnsafeMutablePointer(bitPattern: $0)) }
            mysql_close(UnsafeMutablePointer(bitPattern: handle))
        }
    }

    // MARK: on the executor

    fileprivate func lastError() -> MariaDBError { Self.error(of: handle) }

    static func error(of mysql: UnsafeMutablePointer<MYSQL>) -> MariaDBError {
        MariaDBError(code: mysql_errno(mysql), sqlState: String(cString: mysql_sqlstate(mysql)), message: String(cString: mysql_error(mysql)))
    }

    static func error(of stmt: UnsafeMutablePointer<MYSQL_STMT>) -> MariaDBError {
        MariaDBError(code: mysql_stmt_errno(stmt), sqlState: String(cString: mysql_stmt_sqlstate(stmt)), message: String(cString: mysql_stmt_error(stmt)))
    }

    fileprivate func statement(_ sql: String) throws -> UnsafeMutablePointer<MYSQL_STMT> {
        if let stmt = statements[sql] { return stmt }
        if statements.count >= Self.statementCacheLimit {
            statements.values.forEach { mysql_stmt_close($0) }
            statements.removeAll()
        }
        guard let stmt = mysql_stmt_init(handle) else { throw lastError() }
        if mysql_stmt_prepare(stmt, sql, UInt(sql.utf8.count)) != 0 {
            let error = Self.error(of: stmt)
            mysql_stmt_close(stmt)
            throw error
        }
        var updateMaxLength: my_bool = 1
        mysql_stmt_attr_set(stmt, STMT_ATTR_UPDATE_MAX_LENGTH, &updateMaxLength)
        statements[sql] = stmt
        return stmt
    }

    fileprivate var mysql: UnsafeMutablePointer<MYSQL> { handle }
}

/// Statements on a connection, inside `withSession` (on the executor's thread). Synchronous by design:
/// a transaction's statements run back to back without hopping threads. Do not let it escape the block.
public struct MariaDBSession {
    fileprivate let connection: MariaDBConnection

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

/// Parameter binds and the memory they point to (freed after execute).
private struct ParameterBuffers {
    var binds: [MYSQL_BIND]
    private var allocations: [UnsafeMutableRawPointer] = []

    init(_ values: [MariaDBValue]) {
        binds = Array(repeating: MYSQL_BIND(), count: values.count)
        for (i, value) in values.enumerated() {
            switch value {
            case .null:
                binds[i].buffer_type = MYSQL_TYPE_NULL
            case .int(let n):
                bind(i, MYSQL_TYPE_LONGLONG, scalar: n)
            case .uint(let n):
                bind(i, MYSQL_TYPE_LONGLONG, scalar: n)
                binds[i].is_unsigned = 1
            case .double(let d):
                bind(i, MYSQL_TYPE_DOUBLE, scalar: d)
            case .decimal(let d):
                bind(i, MYSQL_TYPE_NEWDECIMAL, bytes: Array(d.text.utf8))
            case .string(let s):
                bind(i, MYSQL_TYPE_STRING, bytes: Array(s.utf8))
            case .bytes(let b):
                bind(i, MYSQL_TYPE_BLOB, bytes: b)
            case .dateTime(let d):
                var time = MYSQL_TIME()
                time.year = UInt32(d.year)
                time.month = UInt32(d.month)
                time.day = UInt32(d.day)
                time.hour = UInt32(d.hour)
                time.minute = UInt32(d.minute)
                time.second = UInt32(d.second)
                time.second_part = UInt(d.microsecond)
                time.time_type = MYSQL_TIMESTAMP_DATETIME
                bind(i, MYSQL_TYPE_DATETIME, scalar: time)
            }
        }
    }

    private mutating func bind<T>(_ i: Int, _ type: enum_field_types, scalar: T) {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<T>.size, alignment: MemoryLayout<T>.alignment)
        memory.initializeMemory(as: T.self, repeating: scalar, count: 1)
        allocations.append(memory)
        binds[i].buffer_type = type
        binds[i].buffer = memory
        binds[i].buffer_length = UInt(MemoryLayout<T>.size)
    }

    private mutating func bind(_ i: Int, _ type: enum_field_types, bytes: [UInt8]) {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
        bytes.withUnsafeBytes { memory.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(memory), byteCount: bytes.count) }
        let length = UnsafeMutablePointer<UInt>.allocate(capacity: 1)
        length.pointee = UInt(bytes.count)
        allocations.append(memory)
        allocations.append(UnsafeMutableRawPointer(length))
        binds[i].buffer_type = type
        binds[i].buffer = memory
        binds[i].buffer_length = UInt(bytes.count)
        binds[i].length = length
    }

    func free() { allocations.forEach { $0.deallocate() } }
}

/// Binds one buffer per column (sized from the result's max lengths) and decodes each fetched row.
private struct ResultReader {
    enum Kind { case signed, unsigned, double, decimal, text, bytes, dateTime, null }

    let stmt: UnsafeMutablePointer<MYSQL_STMT>
    let kinds: [Kind]
    let columns: MariaDBColumns
    let count: Int

    init(stmt: UnsafeMutablePointer<MYSQL_STMT>, metadata: UnsafeMutablePointer<MYSQL_RES>) {
        self.stmt = stmt
        count = Int(mysql_num_fields(metadata))
        let fields = mysql_fetch_fields(metadata)!
        columns = MariaDBColumns((0..<count).map { String(cString: fields[$0].name) })
        kinds = (0..<count).map { i in
            let field = fields[i]
            switch field.type {
            case MYSQL_TYPE_TINY, MYSQL_TYPE_SHORT, MYSQL_TYPE_LONG, MYSQL_TYPE_INT24, MYSQL_TYPE_LONGLONG, MYSQL_TYPE_YEAR:
                return field.flags & UInt32(UNSIGNED_FLAG) != 0 ? .unsigned : .signed
            case MYSQL_TYPE_FLOAT, MYSQL_TYPE_DOUBLE: return .double
            case MYSQL_TYPE_DECIMAL, MYSQL_TYPE_NEWDECIMAL: return .decimal
            case MYSQL_TYPE_DATE, MYSQL_TYPE_DATETIME, MYSQL_TYPE_TIMESTAMP: return .dateTime
            case MYSQL_TYPE_NULL: return .null
            case MYSQL_TYPE_BIT: return .bytes
            default: return field.charsetnr == 63 ? .bytes : .text  // 63 = binary
            }
        }
        maxLengths = (0..<count).map { Int(fields[$0].max_length) }
    }

    private let maxLengths: [Int]

    func readAll() throws -> [MariaDBRow] {
        var binds = Array(repeating: MYSQL_BIND(), count: count)
        let isNull = UnsafeMutablePointer<my_bool>.allocate(capacity: max(count, 1))
        let lengths = UnsafeMutablePointer<UInt>.allocate(capacity: max(count, 1))
        let errors = UnsafeMutablePointer<my_bool>.allocate(capacity: max(count, 1))
        isNull.initialize(repeating: 0, count: max(count, 1))
        lengths.initialize(repeating: 0, count: max(count, 1))
        errors.initialize(repeating: 0, count: max(count, 1))
        var buffers: [UnsafeMutableRawPointer] = []
        defer {
            isNull.deallocate()
            lengths.deallocate()
            errors.deallocate()
            buffers.forEach { $0.deallocate() }
        }
        for i in 0..<count {
            let (type, size): (enum_field_types, Int) = switch kinds[i] {
            case .signed, .unsigned: (MYSQL_TYPE_LONGLONG, 8)
            case .double: (MYSQL_TYPE_DOUBLE, 8)
            case .dateTime: (MYSQL_TYPE_DATETIME, MemoryLayout<MYSQL_TIME>.size)
            case .decimal, .text, .null: (MYSQL_TYPE_STRING, max(maxLengths[i], 1))
            case .bytes: (MYSQL_TYPE_BLOB, max(maxLengths[i], 1))
            }
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
            buffers.append(buffer)
            binds[i].buffer_type = type
            binds[i].buffer = buffer
            binds[i].buffer_length = UInt(size)
            binds[i].is_unsigned = kinds[i] == .unsigned ? 1 : 0
            binds[i].is_null = isNull + i
            binds[i].length = lengths + i
            binds[i].error = errors + i
        }
        var rows: [MariaDBRow] = []
        try binds.withUnsafeMutableBufferPointer { binds in
            if count > 0, mysql_stmt_bind_result(stmt, binds.baseAddress) != 0 { throw MariaDBConnection.error(of: stmt) }
            while true {
                let rc = mysql_stmt_fetch(stmt)
                if rc == MYSQL_NO_DATA { break }
                if rc != 0 && rc != MYSQL_DATA_TRUNCATED { throw MariaDBConnection.error(of: stmt) }
                var values: [MariaDBValue] = []
                values.reserveCapacity(count)
                for i in 0..<count {
                    // The length is only meaningful for a non-NULL value (the library may leave it stale).
                    let null = isNull[i] != 0
                    values.append(try value(i, binds: binds, isNull: null, length: null ? 0 : Int(clamping: lengths[i])))
                    lengths[i] = 0
                }
                rows.append(MariaDBRow(columns: columns, values: values))
            }
        }
        return rows
    }

    private func value(_ i: Int, binds: UnsafeMutableBufferPointer<MYSQL_BIND>, isNull: Bool, length: Int) throws -> MariaDBValue {
        if isNull || kinds[i] == .null { return .null }
        let buffer = UnsafeRawPointer(binds[i].buffer!)
        switch kinds[i] {
        case .signed: return .int(buffer.loadUnaligned(as: Int64.self))
        case .unsigned: return .uint(buffer.loadUnaligned(as: UInt64.self))
        case .double: return .double(buffer.loadUnaligned(as: Double.self))
        case .dateTime:
            let t = buffer.loadUnaligned(as: MYSQL_TIME.self)
            return .dateTime(MariaDBDateTime(year: Int(t.year), month: Int(t.month), day: Int(t.day), hour: Int(t.hour),
                                             minute: Int(t.minute), second: Int(t.second), microsecond: Int(t.second_part)))
        case .decimal, .text, .bytes:
            var bytes: [UInt8]
            if length <= Int(binds[i].buffer_length) {
                bytes = Array(UnsafeRawBufferPointer(start: buffer, count: length))
            } else {
                // Longer than the max length reported: fetch this column again into a buffer that fits.
                bytes = [UInt8](repeating: 0, count: length)
                var column = MYSQL_BIND()
                var columnLength: UInt = 0
                let rc = bytes.withUnsafeMutableBytes { whole in
                    column.buffer_type = binds[i].buffer_type
                    column.buffer = whole.baseAddress
                    column.buffer_length = UInt(length)
                    return withUnsafeMutablePointer(to: &columnLength) { lengthPointer in
                        column.length = lengthPointer
                        return mysql_stmt_fetch_column(stmt, &column, UInt32(i), 0)
                    }
                }
                if rc != 0 { throw MariaDBConnection.error(of: stmt) }
            }
            switch kinds[i] {
            case .decimal:
                let text = String(decoding: bytes, as: UTF8.self)
                guard let decimal = MariaDBDecimal(text) else { throw MariaDBError.decoding("not a decimal: \(text)") }
                return .decimal(decimal)
            case .text: return .string(String(decoding: bytes, as: UTF8.self))
            default: return .bytes(bytes)
            }
        case .null: return .null
        }
    }
}
