import Foundation
import StorefrontApp
import StorefrontCore
import Testing

/// `StorefrontConfig.keys` is the parser: every listed key reaches its setting, nothing unlisted is read
/// from a file, and errors name the key.
@Suite("Configuration")
struct ConfigTests {
    /// One value for every key, different from the default.
    static let everyKey: [String: String] = [
        "STOREFRONT_HOST": "0.0.0.0", "STOREFRONT_PORT": "9090",
        "STOREFRONT_DATABASE_URL": "mysql://app:pw@db1:3306/shop", "STOREFRONT_DATABASE_REPLICA_URLS": " mysql://app:pw@db2:3306/shop , ,",
        "STOREFRONT_DATABASE_POOL_SIZE": "20", "STOREFRONT_DATABASE_REPLICA_MAX_LAG_SECONDS": "7", "STOREFRONT_DATABASE_CHECK_SECONDS": "3",
        "STOREFRONT_DATABASE_AUTO_PROMOTE_SECONDS": "4", "STOREFRONT_DATABASE_ADMIN_USER": "ops", "STOREFRONT_DATABASE_ADMIN_PASSWORD": "opspw",
        "STOREFRONT_REDIS_URL": "redis+cluster://r1:7000", "STOREFRONT_REDIS_CONNECTIONS": "8", "STOREFRONT_REDIS_TIMEOUT_MS": "500",
        "STOREFRONT_REDIS_TLS_CA_FILE": "/etc/ca.pem", "STOREFRONT_REDIS_KEY_PREFIX": "shop:",
        "STOREFRONT_REDIS_NEAR_CACHE_MS": "750", "STOREFRONT_REDIS_NEAR_CACHE_ENTRIES": "99", "STOREFRONT_KAFKA_BROKERS": "k1:9092,k2:9092", "STOREFRONT_INSTANCE_ID": "app-9",
        "STOREFRONT_ADMIN_TOKEN": "secret", "STOREFRONT_PURCHASE_MODE": "ATOMIC", "STOREFRONT_MAX_QTY": "5", "STOREFRONT_MAX_BODY_BYTES": "4096",
        "STOREFRONT_CACHE_TTL_SECONDS": "60", "STOREFRONT_CACHE_NEGATIVE_TTL_SECONDS": "1", "STOREFRONT_LOCK_TTL_MS": "1000", "STOREFRONT_SQLITE_MAX_BATCH": "8",
        "STOREFRONT_LOCK_WAIT_MS": "10", "STOREFRONT_SAGA_LEASE_SECONDS": "10", "STOREFRONT_RECOVERY_INTERVAL_SECONDS": "2",
        "STOREFRONT_STOCK_RECONCILE_SECONDS": "9", "STOREFRONT_PAYMENT_LATENCY_MS": "20", "STOREFRONT_PAYMENT_FAILURE_RATE": "0.1",
        "STOREFRONT_PAYMENT_DECLINE_RATE": "0.2", "STOREFRONT_PAYMENT_TIMEOUT_RATE": "0.3", "STOREFRONT_PAYMENT_HANG_RATE": "0.05",
        "STOREFRONT_PAYMENT_CALL_TIMEOUT_MS": "1500", "STOREFRONT_SAGA_DEADLINE_SECONDS": "45", "STOREFRONT_SAGA_MAX_ATTEMPTS": "4", "STOREFRONT_LOG_LEVEL": "Debug",
        "STOREFRONT_CONFIG_FILE": "",
    ]

    /// An update is invalidated a second time once a replica in read rotation must have applied it: its lag bound
    /// plus one lag check plus 5 s; without replicas (or on SQLite) there is no second invalidation.
    @Test func aSecondInvalidationOnlyWithReplicas() throws {
        #expect(try StorefrontConfig(values: Self.everyKey).catalogSettings.reinvalidateAfter == .seconds(7 + 3 + 5))
        var noReplicas = Self.everyKey
        noReplicas["STOREFRONT_DATABASE_REPLICA_URLS"] = ""
        #expect(try StorefrontConfig(values: noReplicas).catalogSettings.reinvalidateAfter == nil)
        #expect(try StorefrontConfig(values: [:]).catalogSettings.reinvalidateAfter == nil, "embedded (SQLite)")
    }

    @Test func everyListedKeyReachesItsSetting() throws {
        #expect(Set(StorefrontConfig.keys.map(\.name)) == Set(Self.everyKey.keys), "the test covers exactly the listed keys")
        #expect(StorefrontConfig.keys.count == Set(StorefrontConfig.keys.map(\.name)).count, "no key listed twice")
        #expect(StorefrontConfig.keys.allSatisfy { $0.name.hasPrefix("STOREFRONT_") && !$0.help.isEmpty })
        let c = try StorefrontConfig(values: Self.everyKey)
        #expect(c.host == "0.0.0.0" && c.port == 9090 && c.databaseURL == "mysql://app:pw@db1:3306/shop")
        #expect(c.mariadb.replicaURLs == ["mysql://app:pw@db2:3306/shop"] && c.mariadb.poolSize == 20 && c.mariadb.replicaMaxLagSeconds == 7)
        #expect(c.mariadb.checkSeconds == 3 && c.mariadb.autoPromoteSeconds == 4 && c.mariadb.adminUser == "ops" && c.mariadb.adminPassword == "opspw")
        #expect(c.redis.url == "redis+cluster://r1:7000" && c.redis.connections == 8 && c.redis.timeoutMilliseconds == 500)
        #expect(c.redis.tlsCAFile == "/etc/ca.pem" && c.redis.keys.prefix == "shop:" && c.kafka.brokers == "k1:9092,k2:9092")
        #expect(c.instanceID == "app-9" && c.adminToken == "secret" && c.purchaseMode == .atomic && c.maxQty == 5 && c.maxBodyBytes == 4096)
        #expect(c.cacheTTLSeconds == 60 && c.cacheNegativeTTLSeconds == 1 && c.lockTTLMilliseconds == 1000 && c.lockWaitMilliseconds == 10)
        #expect(c.sagaLeaseSeconds == 10 && c.recoveryIntervalSeconds == 2 && c.stockReconcileSeconds == 9)
        #expect(c.paymentLatencyMilliseconds == 20 && c.paymentFailureRate == 0.1 && c.paymentDeclineRate == 0.2 && c.paymentTimeoutRate == 0.3)
        #expect(c.logLevel == "debug" && c.sqliteMaxBatch == 8)
        #expect(c.paymentHangRate == 0.05 && c.sagaSettings.providerTimeout == .milliseconds(1500) && c.sagaSettings.deadline == .seconds(45))
        #expect(c.sagaSettings.maxRecoveryAttempts == 4 && c.sagaSettings.recoveryBackoff == .seconds(2))
        #expect(c.mariadb.settings.autoPromoteAfter == .seconds(4) && c.mariadb.settings.admin?.user == "ops")
        #expect(c.redis.nearCache == .init(ttl: .milliseconds(750), capacity: 99) && c.redis.keys.invalidations == "shop:products:invalidated")
        #expect(try StorefrontConfig(values: ["STOREFRONT_REDIS_NEAR_CACHE_MS": "0"]).redis.nearCache == nil, "0 turns it off")
        #expect(StorefrontConfig(instanceID: "x").redis.nearCache == .init(ttl: .seconds(5), capacity: 10_000), "on by default")
    }

    @Test func emptyValuesKeepDefaults() throws {
        let c = try StorefrontConfig(values: ["STOREFRONT_PORT": " ", "STOREFRONT_REDIS_URL": "", "STOREFRONT_INSTANCE_ID": "x"])
        #expect(c.port == 8080 && c.redis.url == nil && c.databaseURL == "sqlite://storefront.db" && c.mariadb.replicaURLs.isEmpty)
    }

    @Test func errorsNameTheSetting() throws {
        #expect(throws: ConfigError("STOREFRONT_PORT must be an integer in 0…65535, got '70000'")) {
            try StorefrontConfig(values: ["STOREFRONT_PORT": "70000"])
        }
        #expect(throws: ConfigError("STOREFRONT_REDIS_CONNECTIONS must be an integer in 1…256, got 'many'")) {
            try StorefrontConfig(values: ["STOREFRONT_REDIS_CONNECTIONS": "many"])
        }
        #expect(throws: ConfigError("STOREFRONT_PAYMENT_DECLINE_RATE must be a number between 0 and 1, got '2'")) {
            try StorefrontConfig(values: ["STOREFRONT_PAYMENT_DECLINE_RATE": "2"])
        }
        #expect(throws: ConfigError("STOREFRONT_PURCHASE_MODE must be lock or atomic, got 'bogus'")) {
            try StorefrontConfig(values: ["STOREFRONT_PURCHASE_MODE": "bogus"])
        }
        #expect(throws: ConfigError("STOREFRONT_REDIS_KEY_PREFIX: Redis key prefix \"shop{1}\": at most 64 characters of A–Z, a–z, 0–9, ':', '_', '.', '-'")) {
            try StorefrontConfig(values: ["STOREFRONT_REDIS_KEY_PREFIX": "shop{1}"])
        }
        #expect(try StorefrontConfig(values: ["STOREFRONT_REDIS_KEY_PREFIX": "shop-eu:"]).redis.keys.stock(7) == "shop-eu:product:{7}:stock")
        #expect(try StorefrontConfig(values: [:]).redis.keys.prefix == "storefront:")
        #expect(try StorefrontConfig(values: ["STOREFRONT_REDIS_KEY_PREFIX": "none"]).redis.keys.stock(7) == "product:{7}:stock")
        #expect(throws: ConfigError("STOREFRONT_DATABASE_AUTO_PROMOTE_SECONDS needs STOREFRONT_DATABASE_ADMIN_USER (the operations account)")) {
            try StorefrontConfig(values: ["STOREFRONT_DATABASE_AUTO_PROMOTE_SECONDS": "3"])
        }
    }

    @Test func aFileMayOnlyNameListedKeysAndTheEnvironmentWins() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("storefront-config-\(UUID().uuidString).conf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "# comment\nSTOREFRONT_PORT=9001\nSTOREFRONT_REDIS_URL = \"redis://file:6379\"\n".write(toFile: path, atomically: true, encoding: .utf8)
        let c = try StorefrontConfig.load(environment: ["STOREFRONT_PORT": "9002", "HOME": "/root"], file: path)
        #expect(c.port == 9002, "the environment wins")
        #expect(c.redis.url == "redis://file:6379", "quotes are stripped")
        try "STOREFRONT_REDIS_URLS=redis://typo\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ConfigError("\(path):1: unknown setting STOREFRONT_REDIS_URLS")) { try StorefrontConfig.load(environment: [:], file: path) }
    }
}
