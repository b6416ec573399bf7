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

/// The MariaDB engine: a primary for writes and fresh reads, replicas for product reads. This type is the
/// router; what it believes about the servers is `MariaDBTopology` (a pure state machine), kept current by
/// `MariaDBMonitor`; the schema is applied by `MariaDBMigrator`.
///
/// Routing: `write` and `read(.primary)` go to the primary; `read(.replica)` goes to a replica in rotation
/// (round robin), else to the primary ("no read replica" is not an outage). A replica that fails a read or
/// lags more than `replicaMaxLagSeconds` leaves rotation until the monitor finds it healthy again.
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
    /// One node per configured server, for the engine's lifetime; index 0 is the configured primary.
    let nodes: [MariaDBNode]
    let topology: SharedTopology
    let monitor: MariaDBMonitor
    private let deadlockRetries = Counter(label: "storefront_db_deadlock_retries_total")
    private let replicaFallbacks = Counter(label: "storefront_db_replica_fallbacks_total")

    public init(primary: MariaDBConfiguration, replicas: [MariaDBConfiguration] = [], settings: MariaDBSettings = .init(),
                executor: MariaDBExecutor = .shared, logger: Logger = Logger(label: "storefront.mariadb")) {
        self.settings = settings
        self.logger = logger
        var pool = MariaDBPoolConfiguration()
        pool.maxConnections = settings.poolSize
        pool.acquireTimeout = settings.acquireTimeout
        nodes = ([primary] + replicas).enumerated().map { index, config in
            MariaDBNode(index: index, pool: MariaDBPool(configuration: config, pool: pool, executor: executor, logger: logger, label: "node\(index)"))
        }
        topology = SharedTopology(MariaDBTopology(nodeCount: nodes.count, maxLagSeconds: settings.replicaMaxLagSeconds,
                                                  autoPromoteAfter: settings.autoPromoteAfter))
        monitor = MariaDBMonitor(nodes: nodes, topology: topology, settings: settings, logger: logger)
    }

    /// `STOREFRONT_DATABASE_URL` + `STOREFRONT_DATABASE_REPLICA_URLS` (comma-separated).
    public convenience init(url: String, replicaURLs: [String], settings: MariaDBSettings = .init(), logger: Logger = Logger(label: "storefront.mariadb")) throws {
        self.init(primary: try MariaDBConfiguration(url: url), replicas: try replicaURLs.map { try MariaDBConfiguration(url: $0) },
                  settings: settings, logger: logger)
    }

    var primaryPool: MariaDBPool { nodes[topology.snapshot.primary].pool }
    /// The servers that are not the primary now.
    var replicas: [MariaDBNode] { topology.snapshot.replicas.map { nodes[$0] } }

    public var primaryEndpoint: String { primaryPool.configuration.endpoint }
    public var hasReplicas: Bool { nodes.count > 1 }
    /// How many automatic promotions this engine carried out (it won the election and promoted).
    public var automaticPromotions: Int { monitor.automaticPromotions }
    /// How many times this engine switched to another primary.
    public var primaryGeneration: Int { topology.snapshot.generation }
    /// Why every write is refused now, nil when writes are accepted: more than one server can acknowledge
    /// writes, or the primary waits for a replica it does not have (lossless semi-sync: every commit blocks).
    public var writesRefused: String? {
        let (conflict, blocked, primary) = topology.withLock { ($0.writableConflict, $0.primaryBlocked, $0.primary) }
        if let conflict { return "more than one writable database server: \(conflict.map { nodes[$0].endpoint })" }
        if blocked { return "the primary \(nodes[primary].endpoint) waits for a replica to acknowledge every commit, and none is connected" }
        return nil
    }

    // MARK: routing

    /// `body` in one transaction on the primary; deadlock victims are retried with bounded, jittered back-off.
    func write<T: Sendable>(_ body: @escaping @Sendable (MariaDBSession) throws -> T) async throws -> T {
        try await primaryWrite(transaction: true, body)
    }

    /// `body` on the primary in autocommit, each statement committed on its own: a write of one statement
    /// without the START TRANSACTION and COMMIT round trips. Same refusals and deadlock retries as `write`.
    func writeAutocommit<T: Sendable>(_ body: @escaping @Sendable (MariaDBSession) throws -> T) async throws -> T {
        try await primaryWrite(transaction: false, body)
    }

    private func primaryWrite<T: Sendable>(transaction: Bool, _ body: @escaping @Sendable (MariaDBSession) throws -> T) async throws -> T {
        // Two writable servers: a write to either could be lost or diverge; refuse rather than guess.
        // A primary waiting for a replica it does not have: every commit would block until one connects.
        guard topology.withLock({ $0.writableConflict == nil && !$0.primaryBlocked }) else {
            throw StorefrontError.unavailable("database", retryAfterSeconds: settings.retryAfterSeconds)
        }
        var attempt = 1
        while true {
            do {
                return try await mapped {
                    transaction ? try await self.primaryPool.transaction(body) : try await self.primaryPool.session(body)
                }
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
        if consistency == .replica, let index = topology.withLock({ $0.pickReplica() }) {
            let replica = nodes[index]
            do {
                return try await replica.pool.session(body)
            } catch let error as MariaDBError where error.kind != .decoding {
                // Any server-side failure on a replica (gone, overloaded, a table not replicated yet) is
                // retried on the primary; a replica that broke the connection also leaves rotation.
                if error.breaksConnection || error.kind == .poolExhausted, topology.withLock({ $0.readFailed(on: index, reason: "\(error)") }) {
                    logger.warning("replica out of read rotation", metadata: ["replica": "\(replica.endpoint)", "reason": "\(error)"])
                }
                replicaFallbacks.increment()
            }
        }
        return try await mapped { try await self.primaryPool.session(body) }
    }

    /// Connectivity problems (unreachable, lost, no pooled connection, a read-only primary) → 503. A primary
    /// that is gone or read-only also starts a search for the new one (in the background).
    private func mapped<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as MariaDBError where [.connectFailed, .connectionLost, .poolExhausted, .readOnly].contains(error.kind) {
            logger.warning("database unavailable", metadata: ["primary": "\(primaryEndpoint)", "error": "\(error)"])
            if error.kind != .poolExhausted, hasReplicas { Task { await self.monitor.discoverPrimary() } }
            if error.kind == .connectFailed || error.kind == .connectionLost {
                topology.withLock { $0.primaryUnreachable(at: .now) }
            }
            throw StorefrontError.unavailable("database", retryAfterSeconds: settings.retryAfterSeconds)
        }
    }

    // MARK: monitoring (carried out by `MariaDBMonitor`)

    /// Finds the writable server and makes it the primary (at most one search at a time, one a second).
    /// Returns true if the primary changed.
    @discardableResult
    public func discoverPrimary() async -> Bool { await monitor.discoverPrimary() }

    /// One monitoring round: the primary (discovery, opt-in automatic promotion) and the replicas' rotation.
    public func monitor() async { await monitor.round() }

    /// Puts replicas in or out of read rotation: running replication threads and at most
    /// `replicaMaxLagSeconds` behind.
    public func checkReplicas() async { await monitor.checkReplicas() }

    /// Replicas and whether each serves reads (for health and tests).
    public var replicaStatus: [(endpoint: String, inRotation: Bool, reason: String)] {
        let snapshot = topology.snapshot
        return snapshot.replicas.map { (nodes[$0].endpoint, snapshot.rotation[$0].inRotation, snapshot.rotation[$0].reason) }
    }

    // MARK: migrations

    /// Applies every migration not yet applied, under an advisory lock so concurrent starts do not race.
    public func migrate() async throws {
        try await mapped { try await MariaDBMigrator(primary: primaryPool).migrate() }
    }

    public func appliedMigrations() async throws -> [String] {
        try await mapped { try await MariaDBMigrator(primary: primaryPool).applied() }
    }

    // MARK: health, adapters, shutdown

    public var healthName: String { "database" }

    public func checkHealth() async throws {
        _ = try await read(.primary) { (s: MariaDBSession) in try s.query("SELECT 1", [] as [MariaDBValue]) }
    }

    /// The primary, as the health check just found it, and every replica as the monitor last saw it: in read
    /// rotation or not, why, and its lag (`Seconds_Behind_Master`). No probe of its own.
    public func healthNodes(checkError: (any Error)?) async -> [HealthNode] {
        let snapshot = topology.snapshot
        var primary = HealthNode(role: "primary", endpoint: nodes[snapshot.primary].endpoint, status: "up")
        if let checkError {
            primary.status = "down"
            primary.detail = "\(checkError)"
        } else if let refused = writesRefused {
            primary.status = "degraded"
            primary.detail = "writes refused: " + refused
        }
        return [primary] + snapshot.replicas.map { index in
            let rotation = snapshot.rotation[index]
            let status = rotation.inRotation ? "up" : rotation.reason.hasPrefix("unreachable") ? "down" : "degraded"
            return HealthNode(role: "replica", endpoint: nodes[index].endpoint, status: status, lagSeconds: rotation.lagSeconds,
                              detail: rotation.inRotation ? rotation.reason : "out of read rotation: " + rotation.reason)
        }
    }

    /// The read replicas as a non-critical health check: degraded when none is in rotation (reads then go
    /// to the primary), with each one's reason.
    public var replicaHealth: MariaDBReplicaHealth { MariaDBReplicaHealth(database: self) }

    /// Writes as a non-critical health check (views go on without them): degraded while they are refused.
    public var writeHealth: MariaDBWriteHealth { MariaDBWriteHealth(database: self) }

    public var products: SQLProductStore { SQLProductStore(database: self) }
    /// The saga store, with one product's concurrent openings grouped into one transaction (`groupOpenings`).
    public func sagas(topic: String = SagaEvent.defaultTopic, groupOpenings: Bool = true) -> SQLSagaStore {
        SQLSagaStore(database: self, topic: topic, groupOpenings: groupOpenings)
    }
    public var payments: SQLPaymentLedger { SQLPaymentLedger(database: self) }

    public func close() async {
        for node in nodes { await node.pool.close() }
    }
}

public struct MariaDBWriteHealth: HealthCheckable {
    let database: MariaDBDatabase
    public var healthName: String { "database_writes" }
    public var healthIsCritical: Bool { false }

    public func checkHealth() async throws {
        if let reason = database.writesRefused {
            throw StorefrontError.unavailable("writes refused: " + reason, retryAfterSeconds: database.settings.retryAfterSeconds)
        }
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
