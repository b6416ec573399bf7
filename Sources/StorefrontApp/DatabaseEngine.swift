import StorefrontCore
import StorefrontMariaDB
import StorefrontSQLite

/// A database engine as the rest of the app sees it: the ports over it, its health checks, the round its
/// monitor runs (if it has one), and how it closes. `STOREFRONT_DATABASE_URL` chooses one.
public protocol DatabaseEngine: Sendable {
    var products: any ProductStore { get }
    var sagas: any SagaStore & OutboxStore { get }
    var payments: any PaymentLedger { get }
    var healthChecks: [any HealthCheckable] { get }
    /// One round of the engine's monitor (primary discovery, replica rotation), run periodically by the app;
    /// nil when there is nothing to watch.
    var monitorRound: (@Sendable () async -> Void)? { get }
    /// The engine's own object (`SQLiteDatabase`, `MariaDBDatabase`), for operations and tests.
    var native: any Sendable { get }
    func appliedMigrations() async throws -> [String]
    func close() async
}

/// The embedded engine: one SQLite file.
struct EmbeddedEngine: DatabaseEngine {
    let database: SQLiteDatabase
    /// One saga store for the server's life (it holds the server's block of order ids).
    let sagas: any SagaStore & OutboxStore

    init(database: SQLiteDatabase) {
        self.database = database
        sagas = database.sagas()
    }

    var products: any ProductStore { database.products }
    var payments: any PaymentLedger { database.payments }
    var healthChecks: [any HealthCheckable] { [database] }
    var monitorRound: (@Sendable () async -> Void)? { nil }
    var native: any Sendable { database }
    func appliedMigrations() async throws -> [String] { try database.appliedMigrations() }
    func close() async { try? database.close() }
}

/// MariaDB: a primary and its replicas.
struct MariaDBEngine: DatabaseEngine {
    let database: MariaDBDatabase
    /// One saga store for the server's life (it holds the server's block of order ids).
    let sagas: any SagaStore & OutboxStore

    init(database: MariaDBDatabase) {
        self.database = database
        sagas = database.sagas()
    }

    var products: any ProductStore { database.products }
    var payments: any PaymentLedger { database.payments }
    var healthChecks: [any HealthCheckable] { database.hasReplicas ? [database, database.replicaHealth, database.writeHealth] : [database] }
    var monitorRound: (@Sendable () async -> Void)? {
        guard database.hasReplicas else { return nil }
        return { [database] in await database.monitor() }
    }
    var native: any Sendable { database }
    func appliedMigrations() async throws -> [String] { try await database.appliedMigrations() }
    func close() async { await database.close() }
}
