import Foundation
import StorefrontCore
import StorefrontKafka
import StorefrontMariaDB
import StorefrontRedis

/// All settings, read from `STOREFRONT_*` environment variables and optionally a `KEY=VALUE` file
/// (`STOREFRONT_CONFIG_FILE` or `--config`); the environment wins over the file. Each engine's settings live
/// with its adapter (`MariaDBEngineConfig`, `RedisEngineConfig`, `KafkaEngineConfig`); empty engine
/// settings mean the embedded adapters. `keys` is the one list of settings: it is the parser and the help.
public struct StorefrontConfig: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// `sqlite:///path.db` (embedded) or `mysql://user:pass@host:port/db` (MariaDB primary).
    public var databaseURL = "sqlite://storefront.db"
    public var mariadb = MariaDBEngineConfig()
    public var redis = RedisEngineConfig()
    public var kafka = KafkaEngineConfig()
    public var instanceID: String
    public var adminToken: String?
    public var purchaseMode = PurchaseMode.lock
    public var maxQty: Int64 = 100
    public var maxBodyBytes = 16 * 1024
    public var cacheTTLSeconds = 300
    public var cacheNegativeTTLSeconds = 5
    public var lockTTLMilliseconds = 30_000
    public var sqliteMaxBatch = 64
    public var lockWaitMilliseconds = 0
    public var sagaLeaseSeconds = 30
    public var recoveryIntervalSeconds = 5
    public var stockReconcileSeconds = 30
    public var paymentLatencyMilliseconds = 0
    public var paymentFailureRate = 0.0
    public var paymentDeclineRate = 0.0
    public var paymentTimeoutRate = 0.0
    public var paymentHangRate = 0.0
    public var paymentCallTimeoutMilliseconds = 5_000
    public var sagaDeadlineSeconds = 15
    public var sagaMaxAttempts = 8
    public var logLevel = "info"

    public init(instanceID: String = StorefrontConfig.defaultInstanceID()) {
        self.instanceID = instanceID
    }

    public static func defaultInstanceID() -> String {
        "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    }

    static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// Every setting this program understands, in the order the docs list them.
    public static var keys: [ConfigKey<StorefrontConfig>] {
        [
            .text("STOREFRONT_HOST", "address to listen on (default 127.0.0.1)", \.host),
            .int("STOREFRONT_PORT", "port to listen on (default 8080)", 0...65535, \.port),
            .text("STOREFRONT_DATABASE_URL",
                  "sqlite:///path/to/file.db (default sqlite://storefront.db in the working directory) or mysql://user:pass@host:port/db (MariaDB primary)",
                  \.databaseURL),
        ]
        + MariaDBEngineConfig.keys.map { $0.lifted(\.mariadb) }
        + RedisEngineConfig.keys.map { $0.lifted(\.redis) }
        + KafkaEngineConfig.keys.map { $0.lifted(\.kafka) }
        + [
            .text("STOREFRONT_INSTANCE_ID", "this server's name as saga owner (default host-pid)", \.instanceID),
            .text("STOREFRONT_ADMIN_TOKEN", "bearer token for /admin; unset = admin endpoints answer 401", \.adminToken),
            ConfigKey("STOREFRONT_PURCHASE_MODE", "lock (seed flow) or atomic (flash sale)") { config, value in
                guard let mode = PurchaseMode(rawValue: value.lowercased()) else {
                    throw ConfigError("STOREFRONT_PURCHASE_MODE must be lock or atomic, got '\(value)'")
                }
                config.purchaseMode = mode
            },
            .int("STOREFRONT_MAX_QTY", "largest qty per purchase (default 100)", 1...1_000_000, \.maxQty),
            .int("STOREFRONT_MAX_BODY_BYTES", "largest request body (default 16384)", 256...10_485_760, \.maxBodyBytes),
            .int("STOREFRONT_CACHE_TTL_SECONDS", "product cache TTL, ±10% jitter (default 300)", 1...86_400, \.cacheTTLSeconds),
            .int("STOREFRONT_CACHE_NEGATIVE_TTL_SECONDS", "how long unknown ids are cached as absent (default 5)", 0...3_600, \.cacheNegativeTTLSeconds),
            .int("STOREFRONT_SQLITE_MAX_BATCH", "embedded database: most writes group-committed in one transaction (default 64; 1 commits each alone)",
                 1...1_000, \.sqliteMaxBatch),
            .int("STOREFRONT_LOCK_TTL_MS", "product lock TTL (default 30000)", 100...600_000, \.lockTTLMilliseconds),
            .int("STOREFRONT_LOCK_WAIT_MS", "wait for a busy lock before 409 product_busy (default 0)", 0...60_000, \.lockWaitMilliseconds),
            .int("STOREFRONT_SAGA_LEASE_SECONDS", "saga lease; another server may take over after it (default 30)", 1...3_600, \.sagaLeaseSeconds),
            .int("STOREFRONT_RECOVERY_INTERVAL_SECONDS", "how often expired sagas are looked for (default 5)", 1...3_600, \.recoveryIntervalSeconds),
            .int("STOREFRONT_STOCK_RECONCILE_SECONDS", "period of the sweep that corrects cached stock counters from the database (default 30)",
                 1...86_400, \.stockReconcileSeconds),
            .int("STOREFRONT_PAYMENT_LATENCY_MS", "simulated payment provider: added latency (default 0)", 0...60_000, \.paymentLatencyMilliseconds),
            .rate("STOREFRONT_PAYMENT_FAILURE_RATE", "simulated payment provider: outage probability 0–1 (default 0)", \.paymentFailureRate),
            .rate("STOREFRONT_PAYMENT_DECLINE_RATE", "simulated payment provider: decline probability 0–1 (default 0)", \.paymentDeclineRate),
            .rate("STOREFRONT_PAYMENT_TIMEOUT_RATE", "simulated payment provider: charge-then-timeout probability 0–1 (default 0)", \.paymentTimeoutRate),
            .rate("STOREFRONT_PAYMENT_HANG_RATE", "simulated payment provider: probability a charge or refund never answers (default 0)", \.paymentHangRate),
            .int("STOREFRONT_PAYMENT_CALL_TIMEOUT_MS", "longest wait for one payment provider call (default 5000)", 10...600_000,
                 \.paymentCallTimeoutMilliseconds),
            .int("STOREFRONT_SAGA_DEADLINE_SECONDS", "a saga not paid this long after it started compensates (default 15)", 1...86_400,
                 \.sagaDeadlineSeconds),
            .int("STOREFRONT_SAGA_MAX_ATTEMPTS", "recovery attempts before a saga is left to a person (default 8)", 1...1_000, \.sagaMaxAttempts),
            ConfigKey("STOREFRONT_LOG_LEVEL", "trace, debug, info, notice, warning, error, critical (default info)") { config, value in
                guard logLevels.contains(value.lowercased()) else {
                    throw ConfigError("STOREFRONT_LOG_LEVEL must be one of \(logLevels.joined(separator: ", "))")
                }
                config.logLevel = value.lowercased()
            },
            ConfigKey("STOREFRONT_CONFIG_FILE", "a file of KEY=VALUE lines read before the environment") { _, _ in },
        ]
    }

    /// Builds the configuration from a file (if any) and the environment.
    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment, file: String? = nil) throws -> StorefrontConfig {
        try StorefrontConfig(values: ConfigSource.values(environment: environment, file: file, known: Set(keys.map(\.name))))
    }

    /// Parses `KEY=VALUE` lines; unknown keys are an error (typos must not pass silently).
    public static func parseFile(_ path: String) throws -> [String: String] {
        try ConfigSource.parseFile(path, known: Set(keys.map(\.name)))
    }

    /// Every listed key present in `values`, then the rules across settings. Unlisted keys are ignored here
    /// (the environment holds other programs' variables too; a config file is checked by `parseFile`).
    public init(values: [String: String]) throws {
        self.init(instanceID: Self.defaultInstanceID())
        for key in Self.keys {
            if let value = values[key.name] { try key.apply(value, to: &self) }
        }
        try mariadb.validate()
        guard paymentFailureRate + paymentDeclineRate <= 1 else {
            throw ConfigError("STOREFRONT_PAYMENT_FAILURE_RATE + STOREFRONT_PAYMENT_DECLINE_RATE must not exceed 1")
        }
    }

    public var paymentBehavior: SimulatedPaymentGateway.Behavior {
        .init(latency: .milliseconds(paymentLatencyMilliseconds), failureRate: paymentFailureRate,
              declineRate: paymentDeclineRate, timeoutAfterChargeRate: paymentTimeoutRate, hangRate: paymentHangRate)
    }

    public var sagaSettings: SagaSettings {
        SagaSettings(leaseDuration: .seconds(sagaLeaseSeconds), providerTimeout: .milliseconds(paymentCallTimeoutMilliseconds),
                     deadline: .seconds(sagaDeadlineSeconds), maxRecoveryAttempts: sagaMaxAttempts,
                     recoveryBackoff: .seconds(max(recoveryIntervalSeconds, 1)))
    }

    public var purchaseSettings: PurchaseSettings {
        PurchaseSettings(mode: purchaseMode, maxQty: maxQty, lockTTL: .milliseconds(lockTTLMilliseconds),
                         lockWait: .milliseconds(lockWaitMilliseconds))
    }

    public var catalogSettings: CatalogSettings {
        // With MariaDB replicas, views read a replica: an update is invalidated again once a replica still in read
        // rotation has applied it — its lag bound, one lag check, and 5 s for what the monitor's reading misses (lag
        // in whole seconds, a round slowed by a node's 2 s probe timeouts, the view's own read and fill).
        let replicas = (databaseURL.hasPrefix("mysql:") || databaseURL.hasPrefix("mariadb:")) && !mariadb.replicaURLs.isEmpty
        return CatalogSettings(ttl: .seconds(cacheTTLSeconds), negativeTTL: .seconds(cacheNegativeTTLSeconds),
                               reinvalidateAfter: replicas ? .seconds(mariadb.replicaMaxLagSeconds + mariadb.checkSeconds + 5) : nil)
    }
}
