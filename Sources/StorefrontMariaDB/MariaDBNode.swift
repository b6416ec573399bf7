import MariaDB
import Synchronization

/// One configured server and its connection pool, for the engine's lifetime. Whether it is the primary or a
/// replica is the topology's to say (it changes on failover), not the node's.
final class MariaDBNode: Sendable {
    let index: Int
    let pool: MariaDBPool

    init(index: Int, pool: MariaDBPool) {
        self.index = index
        self.pool = pool
    }

    var endpoint: String { pool.configuration.endpoint }

    private func probeConfiguration(_ timeout: Duration) -> MariaDBConfiguration {
        var config = pool.configuration
        config.connectTimeout = timeout
        config.readTimeout = timeout
        config.writeTimeout = timeout
        config.idleTransactionTimeout = nil
        return config
    }

    /// What the monitor asks every server each round.
    struct Probe: Sendable, Equatable {
        /// `@@global.read_only = 0`.
        var writable: Bool
        /// Its commits wait for a replica, with no fallback to asynchronous replication.
        var lossless: Bool
        /// Replicas connected that acknowledge its commits (semi-sync).
        var semiSyncReplicas: Int

        /// It can acknowledge a write: writable, and not waiting for a replica it does not have (a lossless
        /// primary without one blocks every commit — an old primary that woke up after a promotion, or a primary
        /// whose replica is gone).
        var acknowledgesWrites: Bool { writable && !(lossless && semiSyncReplicas == 0) }
    }

    /// Asks on a connection of its own, every wait bounded by `timeout` (a frozen server accepts connections
    /// and never answers; the pool's connections wait up to their read timeout). nil when it does not answer.
    func probe(timeout: Duration) async -> Probe? {
        try? await MariaDBConnection.withConnection(probeConfiguration(timeout), executor: pool.executor) { connection in
            try await connection.withSession { s in
                let row = try s.execute("""
                    SELECT @@global.read_only AS ro, \(MariaDBOperations.losslessSQL) AS lossless,
                        (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_CLIENTS') AS clients
                    """).rows[0]
                return Probe(writable: try row.decode("ro", as: String.self) == "0", lossless: try row.decode("lossless", as: String.self) == "1",
                             semiSyncReplicas: Int(try row.decode("clients", as: String?.self) ?? "0") ?? 0)
            }
        }
    }

    /// `SHOW SLAVE STATUS` reduced to what read rotation depends on (nil: not a replica). On a connection of
    /// its own with short timeouts, like `probe`: a frozen replica must not stall the monitor's round.
    func replicationStatus(timeout: Duration = .seconds(2)) async throws -> MariaDBTopology.ReplicationStatus? {
        guard let row = try await MariaDBConnection.withConnection(probeConfiguration(timeout), executor: pool.executor, { connection in
            try await connection.withSession { s in try s.execute("SHOW SLAVE STATUS").rows.first }
        }) else { return nil }
        let io = (try? row.decode("Slave_IO_Running", as: String.self)) ?? "No"
        let sql = (try? row.decode("Slave_SQL_Running", as: String.self)) ?? "No"
        let lag = (try? row.decode("Seconds_Behind_Master", as: String?.self)).flatMap { $0.flatMap(Int.init) }
        return .init(ioRunning: io == "Yes", sqlRunning: sql == "Yes", io: io, sql: sql, secondsBehind: lag)
    }
}

/// The topology, shared by the router (`MariaDBDatabase`) and the `MariaDBMonitor`.
final class SharedTopology: Sendable {
    private let state: Mutex<MariaDBTopology>

    init(_ topology: MariaDBTopology) { state = Mutex(topology) }

    func withLock<T>(_ body: (inout MariaDBTopology) -> T) -> T { state.withLock { body(&$0) } }
    var snapshot: MariaDBTopology { state.withLock { $0 } }
}
