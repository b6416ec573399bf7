import Foundation
import MariaDB
import Synchronization
import StorefrontContracts
import Testing

/// The primary / replica / ops URLs of the MariaDB pair that `scripts/test-servers up` starts.
enum TestServers {
    static func url(_ variable: String) -> String? {
        try? StorefrontContracts.TestServers.required(variable)
    }

    static var primary: MariaDBConfiguration? { url("STOREFRONT_TEST_MARIADB_URL").flatMap { try? MariaDBConfiguration(url: $0) } }
    static var replica: MariaDBConfiguration? { url("STOREFRONT_TEST_MARIADB_REPLICA_URL").flatMap { try? MariaDBConfiguration(url: $0) } }
    static var ops: MariaDBConfiguration? { url("STOREFRONT_TEST_MARIADB_OPS_URL").flatMap { try? MariaDBConfiguration(url: $0) } }

    /// A fresh database (`storefront_t_…`) on the primary, replicated to the replica.
    static func freshDatabase() async throws -> MariaDBConfiguration? {
        guard var config = primary else { return nil }
        let name = "storefront_t_\(UUID().uuidString.prefix(8).lowercased())"
        let connection = try await MariaDBConnection.connect(config)
        _ = try await connection.withSession { try $0.execute("CREATE DATABASE \(name)") }
        await connection.close()
        config.database = name
        return config
    }
}

@Suite("MariaDB wrapper (real server)")
struct MariaDBConnectionTests {
    @Test func everyTypeRoundTrips() async throws {
        guard let config = try await TestServers.freshDatabase() else { return }
        let connection = try await MariaDBConnection.connect(config)
        defer { Task { await connection.close() } }
        _ = try await connection.withSession { s in
            try s.execute("""
                CREATE TABLE t (id BIGINT AUTO_INCREMENT PRIMARY KEY, i BIGINT, u BIGINT UNSIGNED, small SMALLINT, d DOUBLE,
                    money DECIMAL(20,4), name VARCHAR(100), body TEXT, raw VARBINARY(64), blob_ BLOB, at DATETIME(6), day DATE,
                    flag TINYINT(1)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
                """)
        }
        let at = MariaDBDateTime(year: 2026, month: 11, day: 25, hour: 17, minute: 4, second: 5, microsecond: 123_456)
        let money = MariaDBDecimal("-12345678901234.5678")!
        let longText = String(repeating: "ünïcødé 🛒 ", count: 2000)
        let values: [any MariaDBEncodable] = [
            Int64.min, UInt64.max, Int32(-32768), 0.1 + 0.2, money, "O'Brien \"quoted\" \\ 🛒", longText,
            [UInt8](arrayLiteral: 0, 1, 2, 255), [UInt8](repeating: 7, count: 5000), at, MariaDBDateTime(year: 1999, month: 12, day: 31), true,
        ]
        let inserted = try await connection.query(
            "INSERT INTO t (i, u, small, d, money, name, body, raw, blob_, at, day, flag) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
        #expect(inserted.affectedRows == 1)
        #expect(inserted.lastInsertID == 1)
        let nulls = try await connection.query(
            "INSERT INTO t (i, u, small, d, money, name, body, raw, blob_, at, day, flag) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            Array(repeating: MariaDBValue.null, count: 12))
        #expect(nulls.lastInsertID == 2)

        let rows = try await connection.query("SELECT * FROM t ORDER BY id").rows
        #expect(rows.count == 2)
        let row = try #require(rows.first)
        #expect(try row.decode("i") == Int64.min)
        #expect(try row.decode("u") == UInt64.max)
        #expect(try row.decode("small") == Int32(-32768))
        #expect(try row.decode("d") == 0.1 + 0.2)
        #expect(try row.decode("money", as: MariaDBDecimal.self) == money, "DECIMAL comes back exactly")
        #expect(try row.decode("money", as: MariaDBDecimal.self).decimal == Decimal(string: "-12345678901234.5678"))
        #expect(try row.decode("name") == "O'Brien \"quoted\" \\ 🛒")
        #expect(try row.decode("body") == longText)
        #expect(try row.decode("raw") == [UInt8]([0, 1, 2, 255]))
        #expect(try row.decode("blob_") == [UInt8](repeating: 7, count: 5000))
        #expect(try row.decode("at") == at)
        #expect(try row.decode("day") == MariaDBDateTime(year: 1999, month: 12, day: 31))
        #expect(try row.decode("flag") == true)
        #expect(row["raw"] == .bytes([0, 1, 2, 255]), "binary columns decode as bytes, not text")

        let empty = try #require(rows.last)
        for column in ["i", "u", "small", "d", "money", "name", "body", "raw", "blob_", "at", "day", "flag"] {
            #expect(empty[column] == .null, "\(column) NULL")
        }
        #expect(try empty.decode("name", as: String?.self) == nil)
        #expect(throws: MariaDBError.self) { try empty.decode("name", as: String.self) }

        // A Date round-trips through DATETIME(6) in UTC, to the microsecond.
        let now = Date(timeIntervalSince1970: 1_795_000_000.654321)
        let back = try await connection.query("SELECT CAST(? AS DATETIME(6)) AS at", [now]).rows[0]
        #expect(abs(try back.decode("at", as: Date.self).timeIntervalSince(now)) < 0.000_002)
    }

    @Test func serverErrorsAreClassified() async throws {
        guard let config = try await TestServers.freshDatabase(), let replicaBase = TestServers.replica else { return }
        let connection = try await MariaDBConnection.connect(config)
        _ = try await connection.withSession { s in
            try s.execute("CREATE TABLE k (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
            try s.execute("INSERT INTO k VALUES (1, 0), (2, 0)")
        }
        let duplicate = await #expect(throws: MariaDBError.self) { try await connection.query("INSERT INTO k VALUES (?, 0)", [1]) }
        #expect(duplicate?.kind == .duplicateKey)
        #expect(duplicate?.code == 1062)
        #expect(duplicate?.isRetryable == false)
        #expect(connection.isBroken == false, "a statement error leaves the connection usable")
        #expect(try await connection.query("SELECT COUNT(*) AS n FROM k").rows[0].decode("n") == 2)

        // The replica is read_only and the app user has no way around it.
        var replica = replicaBase
        replica.database = config.database
        try await eventually("the database reached the replica") {
            (try? await MariaDBConnection.connect(replica)) != nil
        }
        let onReplica = try await MariaDBConnection.connect(replica)
        let readOnly = await #expect(throws: MariaDBError.self) { try await onReplica.query("INSERT INTO k VALUES (?, 0)", [9]) }
        #expect(readOnly?.kind == .readOnly)
        await onReplica.close()

        var wrongPassword = config
        wrongPassword.password = "nope"
        let denied = await #expect(throws: MariaDBError.self) { try await MariaDBConnection.connect(wrongPassword) }
        #expect(denied?.kind == .accessDenied)

        var nowhere = config
        nowhere.port = 1
        let refused = await #expect(throws: MariaDBError.self) { try await MariaDBConnection.connect(nowhere) }
        #expect(refused?.kind == .connectFailed)

        let syntax = await #expect(throws: MariaDBError.self) { try await connection.query("SELEC 1") }
        #expect(syntax?.kind == .other)
        #expect(syntax?.code == 1064)
        await connection.close()
    }

    /// Two transactions lock two rows in opposite orders: InnoDB picks one as the victim, reported as a
    /// retryable deadlock; the other commits.
    @Test func deadlocksAreRetryable() async throws {
        guard let config = try await TestServers.freshDatabase() else { return }
        let a = try await MariaDBConnection.connect(config)
        let b = try await MariaDBConnection.connect(config)
        _ = try await a.withSession { s in
            try s.execute("CREATE TABLE k (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
            try s.execute("INSERT INTO k VALUES (1, 0), (2, 0)")
        }
        _ = try await a.withSession { try $0.execute("START TRANSACTION"); return try $0.query("UPDATE k SET v = 1 WHERE id = 1", []) }
        _ = try await b.withSession { try $0.execute("START TRANSACTION"); return try $0.query("UPDATE k SET v = 2 WHERE id = 2", []) }
        async let first = Result { try await a.withSession { try $0.query("UPDATE k SET v = 1 WHERE id = 2", []) } }
        try await Task.sleep(for: .milliseconds(200))  // a waits for b's row lock
        let second = await Result { try await b.withSession { try $0.query("UPDATE k SET v = 2 WHERE id = 1", []) } }
        let results = [await first, second]
        let errors = results.compactMap { result -> MariaDBError? in
            if case .failure(let error as MariaDBError) = result { return error }
            return nil
        }
        #expect(errors.count == 1)
        #expect(errors.first?.kind == .deadlock)
        #expect(errors.first?.isRetryable == true)
        for c in [a, b] { _ = try await c.withSession { try $0.execute("ROLLBACK") } }
        await a.close()
        await b.close()
    }

    /// A connection serves one task at a time: a second task gets `.misuse`, and the first is unharmed.
    @Test func aConnectionIsNeverSharedByTwoTasks() async throws {
        guard let config = TestServers.primary else { return }
        let connection = try await MariaDBConnection.connect(config)
        let slow = Task { try await connection.query("SELECT SLEEP(0.5) AS s, 1 AS one") }
        try await Task.sleep(for: .milliseconds(100))
        let refused = await #expect(throws: MariaDBError.self) { try await connection.query("SELECT 2") }
        #expect(refused?.kind == .misuse)
        #expect(try await slow.value.rows[0].decode("one") == 1)
        #expect(try await connection.query("SELECT 3 AS three").rows[0].decode("three") == 3, "usable again once free")
        await connection.close()
    }

    /// A row lock held longer than `innodb_lock_wait_timeout`: a retryable `.lockWaitTimeout`.
    @Test func lockWaitTimeoutsAreRetryable() async throws {
        guard let config = try await TestServers.freshDatabase() else { return }
        let holder = try await MariaDBConnection.connect(config)
        let waiter = try await MariaDBConnection.connect(config)
        _ = try await holder.withSession { s in
            try s.execute("CREATE TABLE k (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
            try s.execute("INSERT INTO k VALUES (1, 0)")
            try s.execute("START TRANSACTION")
            return try s.query("UPDATE k SET v = 1 WHERE id = 1", [])
        }
        let timedOut = await #expect(throws: MariaDBError.self) {
            try await waiter.withSession { s in
                try s.execute("SET SESSION innodb_lock_wait_timeout = 1")
                return try s.query("UPDATE k SET v = 2 WHERE id = 1", [])
            }
        }
        #expect(timedOut?.kind == .lockWaitTimeout)
        #expect(timedOut?.code == 1205)
        #expect(timedOut?.isRetryable == true)
        #expect(waiter.isBroken == false)
        _ = try await holder.withSession { try $0.execute("ROLLBACK") }
        await holder.close()
        await waiter.close()
    }

    /// A client frozen inside a transaction (SIGSTOP, a long GC pause) does not hold its row locks forever: the
    /// server kills the idle transaction's session after `idleTransactionTimeout`, and a waiter gets the row.
    @Test func aFrozenTransactionLosesItsLocks() async throws {
        guard var config = try await TestServers.freshDatabase() else { return }
        config.idleTransactionTimeout = .seconds(1)
        let frozen = try await MariaDBConnection.connect(config)
        let waiter = try await MariaDBConnection.connect(config)
        _ = try await frozen.withSession { s in
            try s.execute("CREATE TABLE k (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
            try s.execute("INSERT INTO k VALUES (1, 0)")
            try s.execute("START TRANSACTION")
            return try s.query("SELECT v FROM k WHERE id = 1 FOR UPDATE", [])
        }
        // The waiter would wait 10 s for the lock; it gets the row once the frozen session is killed.
        let started = ContinuousClock.now
        let updated = try await waiter.withSession { s in
            try s.execute("SET SESSION innodb_lock_wait_timeout = 10")
            return try s.query("UPDATE k SET v = 2 WHERE id = 1", []).affectedRows
        }
        #expect(updated == 1)
        #expect(ContinuousClock.now - started < .seconds(8))
        // The frozen client, waking up, finds its transaction gone rather than committing half of it.
        await #expect(throws: MariaDBError.self) { try await frozen.query("UPDATE k SET v = 3 WHERE id = 1") }
        #expect(frozen.isBroken)
        #expect(try await waiter.query("SELECT v FROM k WHERE id = 1").rows.first?.decode("v", as: Int.self) == 2)
        await frozen.close()
        await waiter.close()
    }

    @Test func transactionsCommitOrRollBack() async throws {
        guard let config = try await TestServers.freshDatabase() else { return }
        let connection = try await MariaDBConnection.connect(config)
        _ = try await connection.withSession { try $0.execute("CREATE TABLE k (id INT PRIMARY KEY) ENGINE=InnoDB") }
        struct Abort: Error {}
        await #expect(throws: Abort.self) {
            try await connection.transaction { s in
                _ = try s.query("INSERT INTO k VALUES (?)", [1])
                throw Abort()
            }
        }
        let id = try await connection.transaction { s in try s.query("INSERT INTO k VALUES (?)", [2]).affectedRows }
        #expect(id == 1)
        #expect(try await connection.query("SELECT id FROM k").rows.map { try $0.decode("id", as: Int.self) } == [2])
        // CLIENT_FOUND_ROWS: an UPDATE that matches a row counts it even if nothing changed.
        #expect(try await connection.query("UPDATE k SET id = 2 WHERE id = 2").affectedRows == 1)
        await connection.close()
    }

    /// `batch`: several statements in one round trip, answered in order; parameters become literals that say
    /// exactly what was bound (quotes, backslashes, a `?` and SQL inside strings, bytes, NULL); a failing
    /// statement stops the batch and throws, and the connection stays usable.
    @Test func batchesRunInOneRoundTripAndStopAtTheFirstFailure() async throws {
        guard let config = try await TestServers.freshDatabase() else { return }
        let connection = try await MariaDBConnection.connect(config)
        _ = try await connection.withSession {
            try $0.execute("CREATE TABLE b (id BIGINT AUTO_INCREMENT PRIMARY KEY, name TEXT, raw VARBINARY(16), n BIGINT UNIQUE) ENGINE=InnoDB")
        }
        let hostile = "O'Brien \"q\" \\ ?; DROP TABLE b; -- 🛒 ''"
        let questionsBefore = Int(try await connection.query("SHOW SESSION STATUS LIKE 'Questions'").rows[0].decode("Value", as: String.self)) ?? 0
        let results = try await connection.withSession { s in
            try s.batch([
                ("INSERT INTO b (name, raw, n) VALUES (?, ?, ?)", [.string(hostile), .bytes([0, 0x27, 0x5C, 0xFF]), .int(1)]),
                ("INSERT INTO b (name, raw, n) VALUES ('literal ? not a placeholder', ?, ?)", [.null, .int(-2)]),
                ("UPDATE b SET name = CONCAT(name, ?) WHERE n IN (?, ?)", [.string("!"), .int(1), .int(-2)]),
            ])
        }
        let questionsAfter = Int(try await connection.query("SHOW SESSION STATUS LIKE 'Questions'").rows[0].decode("Value", as: String.self)) ?? 0
        #expect(results.map(\.affectedRows) == [1, 1, 2])
        #expect(results.map(\.lastInsertID).prefix(2) == [1, 2])
        #expect(questionsAfter - questionsBefore == 4, "each statement ran once (and the SHOW)")
        let rows = try await connection.query("SELECT name, raw, n FROM b ORDER BY id").rows
        #expect(try rows.map { try $0.decode("name", as: String.self) } == [hostile + "!", "literal ? not a placeholder!"])
        #expect(rows[0]["raw"] == .bytes([0, 0x27, 0x5C, 0xFF]) && rows[1]["raw"] == .null)

        // The second statement breaks the unique key: the third never runs; the connection answers after.
        await #expect(throws: MariaDBError.self) {
            try await connection.withSession { s in
                try s.batch([
                    ("INSERT INTO b (name, n) VALUES (?, ?)", [.string("third"), .int(3)]),
                    ("INSERT INTO b (name, n) VALUES (?, ?)", [.string("dup"), .int(1)]),
                    ("INSERT INTO b (name, n) VALUES (?, ?)", [.string("never"), .int(4)]),
                ])
            }
        }
        #expect(try await connection.query("SELECT n FROM b ORDER BY n").rows.map { try $0.decode("n", as: Int.self) } == [-2, 1, 3])
        // A placeholder count that does not match is refused before anything is sent.
        await #expect(throws: MariaDBError.self) {
            try await connection.withSession { s in try s.batch([("INSERT INTO b (n) VALUES (?)", []), ("DELETE FROM b", [])]) }
        }
        #expect(try await connection.query("SELECT COUNT(*) AS c FROM b").rows[0].decode("c", as: Int.self) == 3)

        // In a transaction, START goes with the first batch; a failure rolls the whole transaction back.
        await #expect(throws: MariaDBError.self) {
            try await connection.transaction { s in
                _ = try s.batch([("INSERT INTO b (n) VALUES (?)", [.int(10)]), ("INSERT INTO b (n) VALUES (?)", [.int(11)])])
                _ = try s.batch([("INSERT INTO b (n) VALUES (?)", [.int(12)]), ("INSERT INTO b (n) VALUES (?)", [.int(1)])])
            }
        }
        #expect(try await connection.query("SELECT COUNT(*) AS c FROM b").rows[0].decode("c", as: Int.self) == 3)
        let committed = try await connection.transaction { s in
            try s.batch([("INSERT INTO b (n) VALUES (?)", [.int(20)]), ("INSERT INTO b (n) VALUES (?)", [.int(21)])]).count
        }
        #expect(committed == 2)
        #expect(try await connection.query("SELECT COUNT(*) AS c FROM b").rows[0].decode("c", as: Int.self) == 5)
        await connection.close()
    }

    /// `batchAndCommit`: the transaction's START, statements, guards and COMMIT in one round trip; a guard that
    /// matches no row stops the batch there (the statement after it never runs) and the transaction rolls back;
    /// nothing may run after the commit; outside a transaction it is refused.
    @Test func batchAndCommitEndsATransactionInOneRoundTripAndStopsAtAGuard() async throws {
        guard let config = try await TestServers.freshDatabase() else { return }
        let connection = try await MariaDBConnection.connect(config)
        let other = try await MariaDBConnection.connect(config)
        _ = try await connection.withSession {
            try $0.execute("CREATE TABLE g (id BIGINT PRIMARY KEY, stock BIGINT NOT NULL, note TEXT) ENGINE=InnoDB")
            try $0.execute("INSERT INTO g VALUES (1, 5, NULL), (2, 0, NULL)")
        }
        func questions(_ c: MariaDBConnection) async throws -> Int {
            Int(try await c.query("SHOW SESSION STATUS LIKE 'Questions'").rows[0].decode("Value", as: String.self)) ?? 0
        }
        func stock(_ id: Int) async throws -> Int { try await other.query("SELECT stock FROM g WHERE id = ?", [id]).rows[0].decode("stock", as: Int.self) }

        let before = try await questions(connection)
        let results = try await connection.transaction { s in
            try s.batchAndCommit([
                ("UPDATE g SET note = ? WHERE id = ?", [.string("it's sold"), .int(1)]),
                ("UPDATE g SET stock = stock - ? WHERE id = ? AND stock >= ?", [.int(2), .int(1), .int(2)]),
                ("UPDATE g SET note = ? WHERE id = ?", [.string("none"), .int(99)]),
            ], requiringOneRow: [1])
        }
        #expect(results.map(\.affectedRows) == [1, 1, 0], "one answer per statement given, none for the guards")
        let asked = try await questions(connection) - before
        #expect(asked == 7, "START, 3 statements, 1 guard, COMMIT and the SHOW — no COMMIT after them (\(asked))")
        #expect(try await stock(1) == 3, "committed: another connection sees it")

        // The guard of statement 1 matches nothing: statement 2 never runs, statement 0 is rolled back.
        await #expect(throws: MariaDBGuardFailed(statement: 1)) {
            try await connection.transaction { s in
                try s.batchAndCommit([
                    ("UPDATE g SET note = 'rolled back' WHERE id = ?", [.int(1)]),
                    ("UPDATE g SET stock = stock - ? WHERE id = ? AND stock >= ?", [.int(1), .int(2), .int(1)]),
                    ("INSERT INTO g VALUES (3, 1, 'never')", []),
                ], requiringOneRow: [0, 1])
            }
        }
        // … rolled back in the server, before the answer came back (its row locks are free at once): no ROLLBACK is
        // sent after it, and nothing may run after it in the block.
        let beforeGuard = try await questions(connection)
        let afterGuard = try await connection.transaction { s -> String in
            do {
                _ = try s.batchAndCommit([("UPDATE g SET stock = stock - 1 WHERE id = 2 AND stock >= 1", [])], requiringOneRow: [0])
                return "committed"
            } catch is MariaDBGuardFailed {
                do { try s.execute("SELECT 1") } catch let error as MariaDBError { return "\(error.kind)" }
                return "ran"
            }
        }
        #expect(afterGuard == "misuse")
        #expect(try await questions(connection) - beforeGuard == 4, "START, the UPDATE, its guard — no ROLLBACK — and the SHOW")
        #expect(try await connection.query("SELECT @@in_transaction AS t").rows[0].decode("t", as: Int.self) == 0,
                "the server rolled back by itself")
        #expect(try await other.query("SELECT note FROM g WHERE id = 1").rows[0].decode("note", as: String.self) == "it's sold")
        #expect(try await other.query("SELECT COUNT(*) AS c FROM g").rows[0].decode("c", as: Int.self) == 2)
        #expect(try await stock(2) == 0)
        // The row locks went with the rollback: another transaction takes them at once.
        _ = try await other.transaction { s in try s.batch([("UPDATE g SET note = 'free' WHERE id IN (1, 2)", [])]) }

        // Nothing runs after the commit; outside a transaction the call is refused; the connection stays usable.
        await #expect(throws: MariaDBError.self) {
            try await connection.transaction { s in
                _ = try s.batchAndCommit([("UPDATE g SET stock = stock + 1 WHERE id = 2", [])], requiringOneRow: [0])
                try s.execute("UPDATE g SET stock = 100 WHERE id = 2")
            }
        }
        #expect(try await stock(2) == 1, "the batch committed; the statement after it did not run")
        await #expect(throws: MariaDBError.self) {
            try await connection.withSession { s in try s.batchAndCommit([("UPDATE g SET stock = 0", [])], requiringOneRow: []) }
        }
        #expect(try await connection.query("SELECT COUNT(*) AS c FROM g").rows[0].decode("c", as: Int.self) == 2)
        await connection.close()
        await other.close()
    }

    /// A connection killed on the server reports `.connectionLost` and is marked broken.
    @Test func aKilledConnectionIsBroken() async throws {
        guard let config = TestServers.primary else { return }
        let victim = try await MariaDBConnection.connect(config)
        let killer = try await MariaDBConnection.connect(config)
        _ = try await killer.withSession { try $0.execute("KILL \(victim.serverConnectionID)") }
        let lost = await #expect(throws: MariaDBError.self) { try await victim.query("SELECT 1") }
        #expect(lost?.kind == .connectionLost)
        #expect(victim.isBroken)
        await victim.close()
        await killer.close()
    }

    @Test func urlsParse() throws {
        let c = try MariaDBConfiguration(url: "mysql://app:p%40ss@db.example:3307/shop?read-timeout=9&tls=true&tls-ca=/ca.pem")
        #expect(c.user == "app")
        #expect(c.password == "p@ss")
        #expect(c.host == "db.example")
        #expect(c.port == 3307)
        #expect(c.database == "shop")
        #expect(c.readTimeout == .seconds(9))
        #expect(c.tls == .init(caFile: "/ca.pem"))
        #expect(c.endpoint == "db.example:3307/shop")
        let socket = try MariaDBConfiguration(url: "mariadb://root@localhost/?socket=/run/mysqld/mysqld.sock")
        #expect(socket.unixSocket == "/run/mysqld/mysqld.sock")
        #expect(socket.database == nil)
        #expect(throws: MariaDBError.self) { try MariaDBConfiguration(url: "postgres://a@b/c") }
        #expect(throws: MariaDBError.self) { try MariaDBConfiguration(url: "mysql://host/db") }
        #expect(throws: MariaDBError.self) { try MariaDBConfiguration(url: "mysql://a@b/c?bogus=1") }
    }
}

@Suite("MariaDB pool (real server)")
struct MariaDBPoolTests {
    @Test func concurrentTransactionsShareABoundedPool() async throws {
        guard let config = try await TestServers.freshDatabase() else { return }
        var settings = MariaDBPoolConfiguration()
        settings.maxConnections = 6
        settings.acquireTimeout = .seconds(60)  // a bound on the pool, not a speed test (the machine may be busy)
        let pool = MariaDBPool(configuration: config, pool: settings)
        _ = try await pool.session { s in
            try s.execute("CREATE TABLE c (id INT PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB")
            try s.execute("INSERT INTO c VALUES (1, 0)")
        }
        let peak = Peak()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<200 {
                group.addTask {
                    _ = try await pool.transaction { s in
                        let n: Int = try s.query("SELECT n FROM c WHERE id = 1 FOR UPDATE", []).rows[0].decode("n")
                        return try s.query("UPDATE c SET n = ? WHERE id = 1", [n + 1]).affectedRows
                    }
                    peak.record(pool.openConnections)
                }
            }
            try await group.waitForAll()
        }
        #expect(try await pool.query("SELECT n FROM c").rows[0].decode("n") == 200, "no lost update")
        #expect(peak.value.load(ordering: .relaxed) <= 6)
        #expect(pool.openConnections <= 6)
        await pool.close()
    }

    /// The pool's only connection is killed on the server while idle: the next lease pings it, discards
    /// it and opens a new one; the caller never sees the dead connection.
    @Test func aKilledIdleConnectionIsReplaced() async throws {
        guard let config = TestServers.primary else { return }
        var settings = MariaDBPoolConfiguration()
        settings.maxConnections = 1
        settings.pingAfterIdle = .zero
        let pool = MariaDBPool(configuration: config, pool: settings)
        let before = try await pool.withConnection { $0.serverConnectionID }
        let killer = try await MariaDBConnection.connect(config)
        _ = try await killer.withSession { try $0.execute("KILL \(before)") }
        await killer.close()
        let (after, answer) = try await pool.withConnection { c in (c.serverConnectionID, try await c.query("SELECT 41 + 1 AS n").rows[0]) }
        #expect(after != before)
        #expect(try answer.decode("n", as: Int.self) == 42)
        #expect(pool.openConnections == 1)
        await pool.close()
    }

    /// A broken connection returned by a caller is discarded and its slot reused.
    @Test func aConnectionThatBreaksInUseIsDiscarded() async throws {
        guard let config = TestServers.primary else { return }
        var settings = MariaDBPoolConfiguration()
        settings.maxConnections = 1
        let pool = MariaDBPool(configuration: config, pool: settings)
        let killer = try await MariaDBConnection.connect(config)
        let lost = await #expect(throws: MariaDBError.self) {
            try await pool.withConnection { c in
                _ = try await killer.withSession { try $0.execute("KILL \(c.serverConnectionID)") }
                return try await c.query("SELECT 1")
            }
        }
        #expect(lost?.kind == .connectionLost)
        #expect(pool.openConnections == 0)
        #expect(try await pool.query("SELECT 1 AS one").rows[0].decode("one") == 1)
        await killer.close()
        await pool.close()
    }

    @Test func waitersTimeOutWhenThePoolIsExhausted() async throws {
        guard let config = TestServers.primary else { return }
        var settings = MariaDBPoolConfiguration()
        settings.maxConnections = 1
        settings.acquireTimeout = .milliseconds(200)
        let pool = MariaDBPool(configuration: config, pool: settings)
        let held = try await pool.lease()
        let error = await #expect(throws: MariaDBError.self) { try await pool.query("SELECT 1") }
        #expect(error?.kind == .poolExhausted)
        // Returned: the next waiter gets it.
        let waiting = Task { try await pool.query("SELECT 2 AS two") }
        try await Task.sleep(for: .milliseconds(50))
        pool.release(held)
        #expect(try await waiting.value.rows[0].decode("two") == 2)
        await pool.close()
    }
}

func eventually(_ what: String, timeout: Duration = .seconds(10), _ condition: () async -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !(await condition()) {
        guard ContinuousClock.now < deadline else { Issue.record("timed out waiting until \(what)"); return }
        try await Task.sleep(for: .milliseconds(50))
    }
}

/// The highest value seen.
final class Peak: Sendable {
    let value = Atomic<Int>(0)
    func record(_ new: Int) {
        var current = value.load(ordering: .relaxed)
        while new > current {
            let (exchanged, original) = value.compareExchange(expected: current, desired: new, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}

@Suite("MariaDB transports and pool lifetime (real server)")
struct MariaDBTransportTests {
    /// TLS against the test primary (certificate signed by the test CA), verified: the session is encrypted.
    @Test func tlsWithAVerifiedCertificate() async throws {
        guard var config = TestServers.primary, let ca = TestServers.url("STOREFRONT_TEST_MARIADB_TLS_CA"),
              let otherCA = TestServers.url("STOREFRONT_TEST_OTHER_CA") else { return }
        config.tls = .init(caFile: ca, verifyServerCertificate: true)
        let connection = try await MariaDBConnection.connect(config)
        let cipher = try await connection.withSession { try $0.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'").rows[0].decode("Value", as: String.self) }
        #expect(!cipher.isEmpty, "the session is encrypted")
        await connection.close()
        // A CA that did not sign the server's certificate is refused.
        config.tls = .init(caFile: otherCA, verifyServerCertificate: true)
        await #expect(throws: MariaDBError.self) { try await MariaDBConnection.connect(config) }
    }

    /// The unix socket of the test primary.
    @Test func unixSocket() async throws {
        guard var config = TestServers.primary, let socket = TestServers.url("STOREFRONT_TEST_MARIADB_SOCKET") else { return }
        config.unixSocket = socket
        config.host = "localhost"
        let connection = try await MariaDBConnection.connect(config)
        #expect(try await connection.query("SELECT 7 * 6 AS n").rows[0].decode("n") == 42)
        await connection.close()
        let url = try MariaDBConfiguration(url: "mysql://app:apppass@localhost/storefront?socket=\(socket)")
        #expect(url.unixSocket == socket)
    }

    /// Idle connections older than the idle timeout are closed; the next lease opens a new one.
    @Test func idleConnectionsTimeOut() async throws {
        guard let config = TestServers.primary else { return }
        var settings = MariaDBPoolConfiguration()
        settings.idleTimeout = .milliseconds(100)
        let pool = MariaDBPool(configuration: config, pool: settings)
        let first = try await pool.withConnection { $0.serverConnectionID }
        #expect(pool.idleConnections == 1)
        try await Task.sleep(for: .milliseconds(300))
        let second = try await pool.withConnection { $0.serverConnectionID }
        #expect(second != first, "the idle one was closed, a new one opened")
        #expect(pool.openConnections == 1)
        await pool.close()
    }
}
