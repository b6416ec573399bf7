import Logging
import MariaDB
import StorefrontCore
import StorefrontMariaDB
import StorefrontSQLite

/// The database engine chosen by `STOREFRONT_DATABASE_URL`: the embedded SQLite file, or a MariaDB
/// primary (+ replicas). Both expose the same ports.
public struct StorefrontDatabase: Sendable {
    public let products: any ProductStore
    public let sagas: any SagaStore & OutboxStore
    public let payments: any PaymentLedger
    public let health: [any HealthCheckable]
    /// Set for the embedded engine.
    public let sqlite: SQLiteDatabase?
    /// Set for the MariaDB engine.
    public let mariadb: MariaDBDatabase?

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
            let db = try SQLiteDatabase(path: try SQLiteDatabase.path(fromURL: url))
            try db.migrate()
            return StorefrontDatabase(products: db.products, sagas: db.sagas(), payments: db.payments, health: [db], sqlite: db, mariadb: nil)
        }
        if url.hasPrefix("mysql:") || url.hasPrefix("mariadb:") {
            var settings = MariaDBSettings()
            settings.poolSize = config.databasePoolSize
            settings.replicaMaxLagSeconds = config.databaseReplicaMaxLagSeconds
            if config.databaseAutoPromoteSeconds > 0, let user = config.databaseAdminUser {
                settings.autoPromoteAfter = .seconds(config.databaseAutoPromoteSeconds)
                settings.admin = (user, config.databaseAdminPassword)
            }
            let db: MariaDBDatabase
            do {
                db = try MariaDBDatabase(url: url, replicaURLs: config.databaseReplicaURLs, settings: settings, logger: logger)
            } catch let error as MariaDBError {
                throw ConfigError("STOREFRONT_DATABASE_URL / STOREFRONT_DATABASE_REPLICA_URLS: \(error.message)")
            }
            await db.discoverPrimary()  // after a failover the configured primary may no longer be the primary
            try await db.migrate()
            await db.checkReplicas()
            return StorefrontDatabase(products: db.products, sagas: db.sagas(), payments: db.payments,
                                      health: db.hasReplicas ? [db, db.replicaHealth] : [db], sqlite: nil, mariadb: db)
        }
        throw ConfigError("STOREFRONT_DATABASE_URL must start with sqlite: or mysql:// (got \(url.prefix(8))…)")
    }

    public func appliedMigrations() async throws -> [String] {
        if let sqlite { return try sqlite.appliedMigrations() }
        return try await mariadb?.appliedMigrations() ?? []
    }

    public func close() async {
        try? sqlite?.close()
        await mariadb?.close()
    }
}
