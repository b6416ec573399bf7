import Logging
import MariaDB
import StorefrontCore
import StorefrontMariaDB
import StorefrontSQLite

/// The database engine chosen by `STOREFRONT_DATABASE_URL`, opened and migrated, with its ports.
public struct StorefrontDatabase: Sendable {
    public let engine: any DatabaseEngine
    public let products: any ProductStore
    public let sagas: any SagaStore & OutboxStore
    public let payments: any PaymentLedger

    init(engine: any DatabaseEngine) {
        self.engine = engine
        products = engine.products
        sagas = engine.sagas
        payments = engine.payments
    }

    public var health: [any HealthCheckable] { engine.healthChecks }

    /// The database alone, for one-shot commands (`migrate`, `seed`, `events`): opened (migrations applied),
    /// handed to `body`, and closed when `body` ends — no cache, lock, Kafka producer or HTTP server.
    public static func with<T: Sendable>(
        _ config: StorefrontConfig, logger: Logger, _ body: (StorefrontDatabase) async throws -> T
    ) async throws -> T {
        let database = try await open(config, logger: logger)
        do {
            let result = try await body(database)
            await database.close()
            return result
        } catch {
            await database.close()
            throw error
        }
    }

    /// Opens the engine and applies pending migrations.
    static func open(_ config: StorefrontConfig, logger: Logger) async throws -> StorefrontDatabase {
        let url = config.databaseURL
        if url.hasPrefix("sqlite:") {
            let db = try SQLiteDatabase(path: try SQLiteDatabase.path(fromURL: url), maxBatch: config.sqliteMaxBatch)
            try db.migrate()
            return StorefrontDatabase(engine: EmbeddedEngine(database: db))
        }
        if url.hasPrefix("mysql:") || url.hasPrefix("mariadb:") {
            let settings = config.mariadb.settings
            let db: MariaDBDatabase
            do {
                db = try MariaDBDatabase(url: url, replicaURLs: config.mariadb.replicaURLs, settings: settings, logger: logger)
            } catch let error as MariaDBError {
                throw ConfigError("STOREFRONT_DATABASE_URL / STOREFRONT_DATABASE_REPLICA_URLS: \(error.message)")
            }
            await db.discoverPrimary()  // after a failover the configured primary may no longer be the primary
            do {
                try await db.migrate()
            } catch StorefrontError.unavailable {
                await db.close()
                throw StartupError(
                    "cannot reach a writable MariaDB primary at \(db.primaryEndpoint) (STOREFRONT_DATABASE_URL \(Redact.url(url))"
                    + (config.mariadb.replicaURLs.isEmpty ? "" : ", or a writable server among STOREFRONT_DATABASE_REPLICA_URLS")
                    + "): check that MariaDB runs there and accepts connections from this host; the log line above has the driver's error")
            }
            await db.checkReplicas()
            return StorefrontDatabase(engine: MariaDBEngine(database: db))
        }
        throw ConfigError("STOREFRONT_DATABASE_URL must start with sqlite: or mysql:// (got \(url.prefix(8))…)")
    }

    public func appliedMigrations() async throws -> [String] { try await engine.appliedMigrations() }

    public func close() async { await engine.close() }
}
