import Foundation
import Logging
import MariaDB
import Metrics
import StorefrontCore
import StorefrontSQL
import Synchronization

/// Settings of the MariaDB engine.
public struct MariaDBSettings: Sendable {
    public var poolSize = 10
    /// How long a request waits for a pooled connection. Waiting is queueing (a burst is served in order);
    /// an unreachable primary is reported at once by the connect error, not by this timeout.
    public var acquireTimeout: Duration = .seconds(10)
    /// A replica more than this many seconds behind the primary is taken out of read rotation.
    public var replicaMaxLagSeconds = 5
    /// Attempts of a write transaction chosen as a deadlock victim (or timed out on a row lock).
    public var deadlockAttempts = 5
    /// Seconds clients are told to wait when the database is unreachable.
    public var retryAfterSeconds = 1
    /// Opt-in automatic promotion: after the primary was unreachable this long, promote the first configured
    /// replica (needs `admin`). nil = only `storefront db promote` promotes.
    public var autoPromoteAfter: Duration?
    /// The operations account (replication and read_only administration) for automatic promotion.
    public var admin: (user: String, password: String?)?

    public init() {}
}

/// The MariaDB engine: a primary for writes and fresh reads, replicas for product reads.
///
/// Routing: `write` and `read(.primary)` go to the primary; `read(.replica)` goes to a replica in rotation
/// (round robin), else to the primary ("no read replica" is not an outage). A replica that fails a read or
/// lags more than `replicaMaxLagSeconds` leaves rotation until `checkReplicas` finds it healthy again.
/// Connectivity failures become `StorefrontError.unavailable` (HTTP 503 + Retry-After), never a hang:
/// connect and read timeouts and the pool's acquire timeout bound every wait.
///
/// Failover: every configured server (primary and replicas) is a node. When the primary fails or turns
/// read-only, the engine looks for the one writable node (`@@read_only = 0`) and makes it the primary — after
/// `storefront db promote`, every app server switches without a restart. Two writable nodes are never
/// guessed between: writes keep failing (503) until an operator fences one.
public final class MariaDBDatabase: Sendable, HealthCheckable {
    public let settings: MariaDBSettings
    let logger: Logger
    /// One pool per configured server, for the engine's lifetime; index 0 is the configured primary.
    let nodes: [Replica]
    private let topology: Mutex<(primary: Int, generation: Int)>
    private let nextReplica = Atomic<Int>(0)
    private let discovering = Atomic<Bool>(false)
    private let lastDiscovery = Mutex<ContinuousClock.Instant?>(nil)
    private let deadlockRetries: Counter
    private let replicaFallbacks: Counter
    private let primarySwitches: Counter
    private let primaryDownSince = Mutex<ContinuousClock.Instant?>(nil)
    private let autoPromotions = Atomic<Int>(0)

    /// One server and, when it is a replica, whether reads may go to it.
    final class Replica: Sendable {
        let pool: MariaDBPool
        let state = Mutex<(inRotation: Bool, reason: String, lagSeconds: Int?)>((true, "not checked yet", nil))
        init(pool: MariaDBPool) { self.pool = pool }
        var inRotation: Bool { state.withLock { $0.inRotation } }
        var endpoint: String { pool.configuration.endpoint }
    }

    public init(primary: MariaDBConfiguration, replicas: [MariaDBConfiguration] = [], settings: MariaDBSettings = .init(),
                executor: MariaDBExecutor = .shared, logger: Logger = Logger(label: "storefront.mariadb")) {
        self.settings = settings
        self.logger = logger
        var pool = MariaDBPoolConfiguration()
        pool.maxConnections = settings.poolSize
        pool.acquireTimeout = settings.acquireTimeout
        nodes = ([primary] + replicas).enumerated().map { index, config in
            Replica(pool: MariaDBPool(configuration: config, pool: pool, executor: executor, logger: logger, label: "node\(index)"))
        }
        topology = Mutex((0, 0))
        deadlockRetries = Counter(label: "storefront_db_deadlock_retries_total")
        replicaFallbacks = Counter(label: "storefront_db_replica_fallbacks_total")
        primarySwitches = Counter(label: "storefront_db_primary_switches_total")
    }

    /// `STOREFRONT_DATABASE_URL` + `STOREFRONT_DATABASE_REPLICA_URLS` (comma-separated).
    public convenience init(url: String, replicaURLs: [String], settings: MariaDBSettings = .init(), logger: Logger = Logger(label: "storefront.mariadb")) throws {
        self.init(primary: try MariaDBConfiguration(url: url), replicas: try replicaURLs.map { try MariaDBConfiguration(url: $0) },
                  settings: settings, logger: logger)
    }

    var primaryPool: MariaDBPool { nodes[topology.withLock { $0.primary }].pool }
    /// The servers that are not the primary now.
    var replicas: [Replica] {
        let primary = topology.withLock { $0.primary }
        return nodes.enumerated().filter { $0.offset != primary }.map(\.element)
    }

    public var primaryEndpoint: String { primaryPool.configuration.endpoint }
    public var hasReplicas: Bool { nodes.count > 1 }
    /// How many automatic promotions this engine carried out (it won the election and promoted).
    public var automaticPromotions: Int { autoPromotions.load(ordering: .relaxed) }
    /// How many times this engine switched to another primary.
    public var primaryGeneration: Int { topology.withLock { $0.generation } }

    // MARK: routing

    /// `body` in one transaction on the primary; deadlock victims are retried with bounded, jittered back-off.
    func write<T: Sendable>(_ body: @escaping @Sendable (MariaDBSession) throws -> T) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await mapped { try await self.primaryPool.transaction(body) }
            } catch let error as MariaDBError where error.isRetryable && attempt < settings.deadlockAttempts {
                deadlockRetries.increment()
                logger.debug("retrying a transaction", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
                let base = 5 << min(attempt - 1, 5)  // 5, 10, 20 … ms
                try await Task.sleep(for: .milliseconds(base + Int.random(in: 0...base)))
                attempt += 1
            }
        }
    }

    /// `body` (autocommit) where `consistency` says: a replica in rotation, or the primary.
    func read<T: Sendable>(_ consistency: ReadConsistency, _ body: @escaping @Sendable (MariaDBSession) throws -> T) async throws -> T {
        if consistency == .replica, let replica = pickReplica() {
            do {
                return try await replica.pool.session(body)
            } catch let error as MariaDBError where error.kind != .decoding {
                // Any server-side failure on a replica (gone, overloaded, a table not replicated yet) is
                // retried on the primary; a replica that broke the connection also leaves rotation.
                if error.breaksConnection || error.kind == .poolExhausted { takeOutOfRotation(replica, reason: "\(error)") }
                replicaFallbacks.increment()
            }
        }
        return try await mapped { try await self.primaryPool.session(body) }
    }

    private func pickReplica() -> Replica? {
        let healthy = replicas.filter(\.inRotation)
        guard !healthy.isEmpty else { return nil }
        return healthy[nextReplica.wrappingAdd(1, ordering: .relaxed).oldValue % healthy.count]
    }

    private func takeOutOfRotation(_ replica: Replica, reason: String) {
        let was = replica.state.withLock { s in defer { s = (false, reason, s.lagSeconds) }; return s.inRotation }
        if was { logger.warning("replica out of read rotation", metadata: ["replica": "\(replica.endpoint)", "reason": "\(reason)"]) }
    }

    /// Connectivity problems (unreachable, lost, no pooled connection, a read-only primary) → 503. A primary
    /// that is gone or read-only also starts a search for the new one (in the background).
    private func mapped<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as MariaDBError where [.connectFailed, .connectionLost, .poolExhausted, .readOnly].contains(error.kind) {
            logger.warning("database unavailable", metadata: ["primary": "\(primaryEndpoint)", "error": "\(error)"])
            if error.kind != .poolExhausted, hasReplicas { Task { await self.discoverPrimary() } }
            if error.kind == .connectFailed || error.kind == .connectionLost {
                primaryDownSince.withLock { if $0 == nil { $0 = .now } }
            }
            throw StorefrontError.unavailable("database", retryAfterSeconds: settings.retryAfterSeconds)
        }
    }

    /// Finds the writable server and makes it the primary. At most one search runs at a time, at most one a
    /// second. Returns true if the primary changed.
    @discardableResult
    public func discoverPrimary() async -> Bool {
        guard !discovering.exchange(true, ordering: .acquiring) else { return false }
        defer { discovering.store(false, ordering: .releasing) }
        let recent = lastDiscovery.withLock { last in
            if let last, ContinuousClock.now - last < .seconds(1) { return true }
            last = .now
            return false
        }
        guard !recent else { return false }
        let writable = await withTaskGroup(of: (Int, Bool?).self) { group in
            for (index, node) in nodes.enumerated() {
                group.addTask { (index, await Self.isWritable(node.pool)) }
            }
            var writable: [Int] = []
            for await (index, isWritable) in group where isWritable == true { writable.append(index) }
            return writable.sorted()
        }
        let current = topology.withLock { $0.primary }
        guard writable.count == 1, let next = writable.first else {
            if writable.count > 1 {
                logger.critical("more than one writable database server: not choosing; fence the old primary (storefront db fence)",
                                metadata: ["writable": "\(writable.map { nodes[$0].endpoint })"])
            }
            return false
        }
        guard next != current else { return false }
        topology.withLock { $0 = (next, $0.generation + 1) }
        for node in replicas { node.state.withLock { $0 = (false, "not checked since the primary changed", nil) } }
        primarySwitches.increment()
        logger.notice("database primary switched", metadata: ["from": "\(nodes[current].endpoint)", "to": "\(nodes[next].endpoint)"])
        return true
    }

    /// `@@global.read_only = 0` on that server; nil when it does not answer.
    static func isWritable(_ pool: MariaDBPool) async -> Bool? {
        let readOnly = try? await pool.session { s in try s.query("SELECT @@global.read_only AS ro").first?.decode("ro", as: Int.self) }
        return readOnly.flatMap { $0 }.map { $0 == 0 }
    }

    /// Checks the primary (gone or read-only → look for the new one; gone long enough and automatic
    /// promotion on → promote) and the replicas' rotation.
    public func monitor() async {
        if hasReplicas {
            let primaryOK = await Self.isWritable(primaryPool) == true
            let downFor: Duration? = primaryDownSince.withLock { since in
                if primaryOK { since = nil; return nil }
                if since == nil { since = .now }
                return ContinuousClock.now - since!
            }
            if !primaryOK, !(await discoverPrimary()), let after = settings.autoPromoteAfter, let downFor, downFor >= after {
                await autoPromote()
            }
        }
        await checkReplicas()
    }

    /// Automatic promotion with a single elected leader: the candidate is always the first configured replica
    /// (never another one, so two servers cannot pick two different replicas), and only the server holding
    /// the named lock `storefront_promotion` on that candidate promotes, after checking again that no server
    /// is writable. The others find the new primary by discovery.
    func autoPromote() async {
        guard let admin = settings.admin, nodes.count > 1 else { return }
        let operations = MariaDBOperations(nodes: nodes.map(\.pool.configuration), adminUser: admin.user, adminPassword: admin.password, logger: logger)
        let candidate = operations.nodes[1]
        do {
            // The named lock lives as long as this connection: closing it releases the lock.
            try await MariaDBConnection.withConnection(candidate) { lock in
                let got = try await lock.withSession { s in try s.query("SELECT GET_LOCK('storefront_promotion', 0) AS got").first?.decode("got", as: Int?.self) }
                guard got == 1 else { return }
                let writable = await operations.status().filter { $0.reachable && $0.readOnly == false }
                guard writable.isEmpty else {
                    logger.notice("automatic promotion not needed: a writable server exists", metadata: ["writable": "\(writable.map(\.endpoint))"])
                    return
                }
                logger.warning("primary unreachable: promoting automatically", metadata: ["candidate": "\(candidate.host):\(candidate.port)"])
                let promotion = try await operations.promote(candidate)
                autoPromotions.add(1, ordering: .relaxed)
                logger.notice("automatic promotion done", metadata: ["promoted": "\(promotion.promoted)", "gtid": "\(promotion.gtidPosition)"])
            }
            lastDiscovery.withLock { $0 = nil }
            await discoverPrimary()
        } catch {
            logger.error("automatic promotion failed", metadata: ["error": "\(error)"])
        }
    }

    /// Puts replicas in or out of read rotation: running replication threads and at most
    /// `replicaMaxLagSeconds` behind. Run periodically (the app does, every few seconds).
    public func checkReplicas() async {
        for replica in replicas {
            let verdict: (Bool, String, Int?)
            do {
                let status = try await replica.pool.session { s in try s.execute("SHOW SLAVE STATUS").rows.first }
                if let status {
                    let io = (try? status.decode("Slave_IO_Running", as: String.self)) ?? "No"
                    let sql = (try? status.decode("Slave_SQL_Running", as: String.self)) ?? "No"
                    let lag = (try? status.decode("Seconds_Behind_Master", as: String?.self)).flatMap { $0.flatMap(Int.init) }
                    if io != "Yes" || sql != "Yes" {
                        verdict = (false, "replication stopped (io \(io), sql \(sql))", lag)
                    } else if let lag, lag <= settings.replicaMaxLagSeconds {
                        verdict = (true, "replicating, \(lag) s behind", lag)
                    } else {
                        verdict = (false, "lagging \(lag.map { "\($0) s" } ?? "an unknown time") behind", lag)
                    }
                } else {
                    verdict = (false, "not a replica (no slave status)", nil)
                }
            } catch {
                verdict = (false, "unreachable: \(error)", nil)
            }
            let changed = replica.state.withLock { s in
                defer { s = (verdict.0, verdict.1, verdict.2) }
                return s.inRotation != verdict.0
            }
            if changed {
                logger.notice(verdict.0 ? "replica back in read rotation" : "replica out of read rotation",
                              metadata: ["replica": "\(replica.endpoint)", "reason": "\(verdict.1)"])
            }
        }
    }

    /// Replicas and whether each serves reads (for health and tests).
    public var replicaStatus: [(endpoint: String, inRotation: Bool, reason: String)] {
        replicas.map { r in r.state.withLock { (r.endpoint, $0.inRotation, $0.reason) } }
    }

    // MARK: migrations

    /// Applies every migration not yet applied, under an advisory lock so concurrent starts do not race.
    public func migrate() async throws {
        try await mapped {
            try await primaryPool.session { s in
                let lock = try s.query("SELECT GET_LOCK('storefront_migrate', 60) AS got", [] as [MariaDBValue]).rows.first?.decode("got", as: Int?.self)
                guard lock == 1 else { throw MariaDBError(kind: .lockWaitTimeout, message: "another server is migrating") }
                defer { _ = try? s.query("SELECT RELEASE_LOCK('storefront_migrate')", [] as [MariaDBValue]) }
                try s.execute(MariaDBSchema.bookkeeping)
                let applied = Set(try s.query("SELECT id FROM schema_migrations", [] as [MariaDBValue]).rows.map { try $0.decode("id", as: String.self) })
                for migration in MariaDBSchema.migrations where !applied.contains(migration.id) {
                    for statement in migration.statements { try s.execute(statement) }
                    _ = try s.query("INSERT INTO schema_migrations (id, applied_at) VALUES (?, ?)",
                                    [migration.id, Millis.from(Date())] as [any MariaDBEncodable])
                }
            }
        }
    }

    public func appliedMigrations() async throws -> [String] {
        try await read(.primary) { s in
            try s.query("SELECT id FROM schema_migrations ORDER BY id", [] as [MariaDBValue]).rows.map { try $0.decode("id") }
        }
    }

    // MARK: health, adapters, shutdown

    public var healthName: String { "database" }

    public func checkHealth() async throws {
        _ = try await read(.primary) { s in try s.query("SELECT 1", [] as [MariaDBValue]) }
    }

    /// The read replicas as a non-critical health check: degraded when none is in rotation (reads then go
    /// to the primary), with each one's reason.
    public var replicaHealth: MariaDBReplicaHealth { MariaDBReplicaHealth(database: self) }

    public var products: SQLProductStore { SQLProductStore(database: self) }
    public func sagas(topic: String = SagaEvent.defaultTopic) -> SQLSagaStore { SQLSagaStore(database: self, topic: topic) }
    public var payments: SQLPaymentLedger { SQLPaymentLedger(database: self) }

    public func close() async {
        await primaryPool.close()
        for replica in replicas { await replica.pool.close() }
    }
}

public struct MariaDBReplicaHealth: HealthCheckable {
    let database: MariaDBDatabase
    public var healthName: String { "database_replicas" }
    public var healthIsCritical: Bool { false }

    public func checkHealth() async throws {
        let status = database.replicaStatus
        guard !status.isEmpty, !status.contains(where: \.inRotation) else { return }
        throw StorefrontError.unavailable(
            "no replica in read rotation (reads use the primary): " + status.map { "\($0.endpoint): \($0.reason)" }.joined(separator: "; "),
            retryAfterSeconds: 5)
    }
}
