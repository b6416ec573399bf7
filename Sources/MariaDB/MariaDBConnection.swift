internal import CMariaDB
import Foundation
import NIOPosix
import Synchronization

/// `mysql_library_init` exactly once per process, before the first handle.
private let libraryReady: Bool = mysql_server_init(0, nil, nil) == 0

/// One client connection. Every call hops to the executor once; `withSession` runs a whole block of
/// statements (a transaction, typically) in that one hop. A connection serves one task at a time: a second
/// concurrent use fails with `.misuse` instead of corrupting the protocol. Not shared: a pool leases it.
public final class MariaDBConnection: @unchecked Sendable {
    // `handle` and `statements` are only touched on the executor while `busy` is held (or in close()).
    private let handle: UnsafeMutablePointer<MYSQL>
    private var statements: [String: UnsafeMutablePointer<MYSQL_STMT>] = [:]
    /// A transaction was asked for and START TRANSACTION not sent yet: it goes with the first statement
    /// (`MariaDBSession.transaction`). Only touched on the executor while `busy` is held.
    var beginPending = false
    /// Inside `MariaDBSession.transaction`; and whether its last batch ended it (committed it, or a guard rolled it
    /// back in the server): nothing more may run in it (same rules).
    var transactionOpen = false
    var endedByBatch = false
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

    /// Connects (on the executor), with utf8mb4, UTC session time zone, strict SQL mode and the idle-transaction timeout.
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
                configuration.database, UInt32(configuration.port), configuration.unixSocket,
                UInt(CLIENT_FOUND_ROWS) | UInt(CLIENT_MULTI_STATEMENTS))
            guard connected != nil else {
                let error = Self.error(of: mysql)
                mysql_close(mysql)
                throw error
            }
            var setup = "SET SESSION time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO'"
            // A lock wait gives up well before the client's read timeout: a batch that carries its COMMIT must fail
            // on the server (rolled back, retryable) rather than time out here while the server goes on to commit.
            setup += ", innodb_lock_wait_timeout = \(max(configuration.readTimeout.components.seconds / 2, 1))"
            if let idle = configuration.idleTransactionTimeout {
                setup += ", idle_transaction_timeout = \(max(idle.components.seconds, 1))"
            }
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
            self.beginPending = false
            self.transactionOpen = false
            self.endedByBatch = false
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

    func lastError() -> MariaDBError { Self.error(of: handle) }

    static func error(of mysql: UnsafeMutablePointer<MYSQL>) -> MariaDBError {
        MariaDBError(code: mysql_errno(mysql), sqlState: String(cString: mysql_sqlstate(mysql)), message: String(cString: mysql_error(mysql)))
    }

    static func error(of stmt: UnsafeMutablePointer<MYSQL_STMT>) -> MariaDBError {
        MariaDBError(code: mysql_stmt_errno(stmt), sqlState: String(cString: mysql_stmt_sqlstate(stmt)), message: String(cString: mysql_stmt_error(stmt)))
    }

    func statement(_ sql: String) throws -> UnsafeMutablePointer<MYSQL_STMT> {
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

    var mysql: UnsafeMutablePointer<MYSQL> { handle }
}
