import StorefrontCore

/// The MariaDB engine's settings besides the primary's URL (`STOREFRONT_DATABASE_*`).
public struct MariaDBEngineConfig: Sendable, Equatable {
    public var replicaURLs: [String] = []
    public var poolSize = 10
    public var replicaMaxLagSeconds = 5
    public var checkSeconds = 2
    public var autoPromoteSeconds = 0
    public var adminUser: String?
    public var adminPassword: String?

    public init() {}

    public static var keys: [ConfigKey<Self>] {
        [
            .list("STOREFRONT_DATABASE_REPLICA_URLS", "comma-separated mysql:// read replicas (MariaDB engine)", \.replicaURLs),
            .int("STOREFRONT_DATABASE_POOL_SIZE", "connections per MariaDB server (default 10)", 1...500, \.poolSize),
            .int("STOREFRONT_DATABASE_REPLICA_MAX_LAG_SECONDS", "a replica further behind leaves read rotation (default 5)", 0...86_400,
                 \.replicaMaxLagSeconds),
            .int("STOREFRONT_DATABASE_CHECK_SECONDS", "how often replicas' lag and the primary are checked (default 2)", 1...3_600, \.checkSeconds),
            .int("STOREFRONT_DATABASE_AUTO_PROMOTE_SECONDS",
                 "promote the first replica automatically after the primary was unreachable this long; 0 = off (default)", 0...86_400,
                 \.autoPromoteSeconds),
            .text("STOREFRONT_DATABASE_ADMIN_USER", "operations account for storefront db promote/fence and automatic promotion", \.adminUser),
            .text("STOREFRONT_DATABASE_ADMIN_PASSWORD", "its password", \.adminPassword),
        ]
    }

    /// Rules across settings.
    public func validate() throws {
        guard autoPromoteSeconds == 0 || adminUser != nil else {
            throw ConfigError("STOREFRONT_DATABASE_AUTO_PROMOTE_SECONDS needs STOREFRONT_DATABASE_ADMIN_USER (the operations account)")
        }
    }

    /// The engine's settings.
    public var settings: MariaDBSettings {
        var settings = MariaDBSettings()
        settings.poolSize = poolSize
        settings.replicaMaxLagSeconds = replicaMaxLagSeconds
        if autoPromoteSeconds > 0, let adminUser {
            settings.autoPromoteAfter = .seconds(autoPromoteSeconds)
            settings.admin = (adminUser, adminPassword)
        }
        return settings
    }
}
