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

    /// `@@global.read_only = 0` on this server; nil when it does not answer.
    func isWritable() async -> Bool? {
        let readOnly = try? await pool.session { s in try s.query("SELECT @@global.read_only AS ro").first?.decode("ro", as: Int.self) }
        return readOnly.flatMap { $0 }.map { $0 == 0 }
    }

    /// `SHOW SLAVE STATUS` reduced to what read rotation depends on (nil: not a replica).
    func replicationStatus() async throws -> MariaDBTopology.ReplicationStatus? {
        guard let row = try await pool.session({ s in try s.execute("SHOW SLAVE STATUS").rows.first }) else { return nil }
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
