import Foundation

/// All settings, read from `STOREFRONT_*` environment variables and optionally a `KEY=VALUE` file
/// (`STOREFRONT_CONFIG_FILE` or `--config`); the environment wins over the file. Empty engine settings mean
/// the embedded adapters.
public struct StorefrontConfig: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// `sqlite:///path.db` (embedded) or `mysql://user:pass@host:port/db` (MariaDB primary).
    public var databaseURL = "sqlite://storefront.db"
    public var databaseReplicaURLs: [String] = []
    public var databasePoolSize = 10
    public var databaseReplicaMaxLagSeconds = 5
    public var databaseCheckSeconds = 2
    public var databaseAutoPromoteSeconds = 0
    public var databaseAdminUser: String?
    public var databaseAdminPassword: String?
    public var redisURL: String?
    public var redisConnections = 4
    public var redisTimeoutMilliseconds = 2000
    public var redisTLSCAFile: String?
    public var kafkaBrokers: String?
    public var instanceID: String
    public var adminToken: String?
    public var purchaseMode = PurchaseMode.lock
    public var maxQty: Int64 = 100
    public var maxBodyBytes = 16 * 1024
    public var cacheTTLSeconds = 300
    public var cacheNegativeTTLSeconds = 5
    public var lockTTLMilliseconds = 30_000
    public var lockWaitMilliseconds = 0
    public var sagaLeaseSeconds = 30
    public var recoveryIntervalSeconds = 5
    public var stockReconcileSeconds = 30
    public var paymentLatencyMilliseconds = 0
    public var paymentFailureRate = 0.0
    public var paymentDeclineRate = 0.0
    public var paymentTimeoutRate = 0.0
    public var logLevel = "info"

    public init(instanceID: String = StorefrontConfig.defaultInstanceID()) {
        self.instanceID = instanceID
    }

    public static func defaultInstanceID() -> String {
        "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    }

    /// Every key this program understands, with a one-line description (used by docs and `--help`).
    public static let keys: [(key: String, help: String)] = [
        ("STOREFRONT_HOST", "address to listen on (default 127.0.0.1)"),
        ("STOREFRONT_PORT", "port to listen on (default 8080)"),
        ("STOREFRONT_DATABASE_URL", "sqlite:///path/to/file.db (default sqlite://storefront.db in the working directory) or mysql://user:pass@host:port/db (MariaDB primary)"),
        ("STOREFRONT_DATABASE_REPLICA_URLS", "comma-separated mysql:// read replicas (MariaDB engine)"),
        ("STOREFRONT_DATABASE_POOL_SIZE", "connections per MariaDB server (default 10)"),
        ("STOREFRONT_DATABASE_REPLICA_MAX_LAG_SECONDS", "a replica further behind leaves read rotation (default 5)"),
        ("STOREFRONT_DATABASE_CHECK_SECONDS", "how often replicas' lag and the primary are checked (default 2)"),
        ("STOREFRONT_DATABASE_AUTO_PROMOTE_SECONDS", "promote the first replica automatically after the primary was unreachable this long; 0 = off (default)"),
        ("STOREFRONT_DATABASE_ADMIN_USER", "operations account for storefront db promote/fence and automatic promotion"),
        ("STOREFRONT_DATABASE_ADMIN_PASSWORD", "its password"),
        ("STOREFRONT_REDIS_URL", "redis://… for the Redis engine; empty = in-process cache, lock and counter"),
        ("STOREFRONT_REDIS_CONNECTIONS", "multiplexed connections per Redis node (default 4)"),
        ("STOREFRONT_REDIS_TIMEOUT_MS", "deadline of one Redis command and of connecting (default 2000)"),
        ("STOREFRONT_REDIS_TLS_CA_FILE", "PEM file of CA certificates to trust for rediss:// (default: the system's)"),
        ("STOREFRONT_KAFKA_BROKERS", "host:port,… for the Kafka relay; empty = events stay in the outbox table"),
        ("STOREFRONT_INSTANCE_ID", "this server's name as saga owner (default host-pid)"),
        ("STOREFRONT_ADMIN_TOKEN", "bearer token for /admin; unset = admin endpoints answer 401"),
        ("STOREFRONT_PURCHASE_MODE", "lock (seed flow) or atomic (flash sale)"),
        ("STOREFRONT_MAX_QTY", "largest qty per purchase (default 100)"),
        ("STOREFRONT_MAX_BODY_BYTES", "largest request body (default 16384)"),
        ("STOREFRONT_CACHE_TTL_SECONDS", "product cache TTL, ±10% jitter (default 300)"),
        ("STOREFRONT_CACHE_NEGATIVE_TTL_SECONDS", "how long unknown ids are cached as absent (default 5)"),
        ("STOREFRONT_LOCK_TTL_MS", "product lock TTL (default 30000)"),
        ("STOREFRONT_LOCK_WAIT_MS", "wait for a busy lock before 409 product_busy (default 0)"),
        ("STOREFRONT_SAGA_LEASE_SECONDS", "saga lease; another server may take over after it (default 30)"),
        ("STOREFRONT_RECOVERY_INTERVAL_SECONDS", "how often expired sagas are looked for (default 5)"),
        ("STOREFRONT_STOCK_RECONCILE_SECONDS", "period of the sweep that corrects cached stock counters from the database (default 30)"),
        ("STOREFRONT_PAYMENT_LATENCY_MS", "simulated payment provider: added latency (default 0)"),
        ("STOREFRONT_PAYMENT_FAILURE_RATE", "simulated payment provider: outage probability 0–1 (default 0)"),
        ("STOREFRONT_PAYMENT_DECLINE_RATE", "simulated payment provider: decline probability 0–1 (default 0)"),
        ("STOREFRONT_PAYMENT_TIMEOUT_RATE", "simulated payment provider: charge-then-timeout probability 0–1 (default 0)"),
        ("STOREFRONT_LOG_LEVEL", "trace, debug, info, notice, warning, error, critical (default info)"),
        ("STOREFRONT_CONFIG_FILE", "a file of KEY=VALUE lines read before the environment"),
    ]

    /// Builds the configuration from a file (if any) and the environment.
    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment, file: String? = nil) throws -> StorefrontConfig {
        var values: [String: String] = [:]
        if let path = file ?? environment["STOREFRONT_CONFIG_FILE"], !path.isEmpty {
            values = try parseFile(path)
        }
        for (key, value) in environment where key.hasPrefix("STOREFRONT_") {
            values[key] = value
        }
        return try StorefrontConfig(values: values)
    }

    /// Parses `KEY=VALUE` lines; `#` starts a comment; unknown keys are an error (typos must not pass silently).
    public static func parseFile(_ path: String) throws -> [String: String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigError("cannot read config file \(path)")
        }
        var values: [String: String] = [:]
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let eq = line.firstIndex(of: "=") else { throw ConfigError("\(path):\(number + 1): expected KEY=VALUE") }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            guard keys.contains(where: { $0.key == key }) else { throw ConfigError("\(path):\(number + 1): unknown setting \(key)") }
            values[key] = value
        }
        return values
    }

    public init(values: [String: String]) throws {
        self.init(instanceID: Self.defaultInstanceID())
        func string(_ key: String) -> String? {
            guard let v = values[key]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
            return v
        }
        func int(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let s = string(key) else { return nil }
            guard let v = Int(s), range.contains(v) else { throw ConfigError("\(key) must be an integer in \(range.lowerBound)…\(range.upperBound), got '\(s)'") }
            return v
        }
        func rate(_ key: String) throws -> Double? {
            guard let s = string(key) else { return nil }
            guard let v = Double(s), (0...1).contains(v) else { throw ConfigError("\(key) must be a number between 0 and 1, got '\(s)'") }
            return v
        }
        if let v = string("STOREFRONT_HOST") { host = v }
        if let v = try int("STOREFRONT_PORT", 0...65535) { port = v }
        if let v = string("STOREFRONT_DATABASE_URL") { databaseURL = v }
        if let v = string("STOREFRONT_DATABASE_REPLICA_URLS") {
            databaseReplicaURLs = v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        if let v = try int("STOREFRONT_DATABASE_POOL_SIZE", 1...500) { databasePoolSize = v }
        if let v = try int("STOREFRONT_DATABASE_REPLICA_MAX_LAG_SECONDS", 0...86_400) { databaseReplicaMaxLagSeconds = v }
        if let v = try int("STOREFRONT_DATABASE_CHECK_SECONDS", 1...3_600) { databaseCheckSeconds = v }
        if let v = try int("STOREFRONT_DATABASE_AUTO_PROMOTE_SECONDS", 0...86_400) { databaseAutoPromoteSeconds = v }
        databaseAdminUser = string("STOREFRONT_DATABASE_ADMIN_USER")
        databaseAdminPassword = string("STOREFRONT_DATABASE_ADMIN_PASSWORD")
        redisURL = string("STOREFRONT_REDIS_URL")
        if let v = try int("STOREFRONT_REDIS_CONNECTIONS", 1...256) { redisConnections = v }
        if let v = try int("STOREFRONT_REDIS_TIMEOUT_MS", 10...60_000) { redisTimeoutMilliseconds = v }
        redisTLSCAFile = string("STOREFRONT_REDIS_TLS_CA_FILE")
        kafkaBrokers = string("STOREFRONT_KAFKA_BROKERS")
        if let v = string("STOREFRONT_INSTANCE_ID") { instanceID = v }
        adminToken = string("STOREFRONT_ADMIN_TOKEN")
        if let v = string("STOREFRONT_PURCHASE_MODE") {
            guard let mode = PurchaseMode(rawValue: v.lowercased()) else { throw ConfigError("STOREFRONT_PURCHASE_MODE must be lock or atomic, got '\(v)'") }
            purchaseMode = mode
        }
        if let v = try int("STOREFRONT_MAX_QTY", 1...1_000_000) { maxQty = Int64(v) }
        if let v = try int("STOREFRONT_MAX_BODY_BYTES", 256...10_485_760) { maxBodyBytes = v }
        if let v = try int("STOREFRONT_CACHE_TTL_SECONDS", 1...86_400) { cacheTTLSeconds = v }
        if let v = try int("STOREFRONT_CACHE_NEGATIVE_TTL_SECONDS", 0...3_600) { cacheNegativeTTLSeconds = v }
        if let v = try int("STOREFRONT_LOCK_TTL_MS", 100...600_000) { lockTTLMilliseconds = v }
        if let v = try int("STOREFRONT_LOCK_WAIT_MS", 0...60_000) { lockWaitMilliseconds = v }
        if let v = try int("STOREFRONT_SAGA_LEASE_SECONDS", 1...3_600) { sagaLeaseSeconds = v }
        if let v = try int("STOREFRONT_RECOVERY_INTERVAL_SECONDS", 1...3_600) { recoveryIntervalSeconds = v }
        if let v = try int("STOREFRONT_STOCK_RECONCILE_SECONDS", 1...86_400) { stockReconcileSeconds = v }
        if let v = try int("STOREFRONT_PAYMENT_LATENCY_MS", 0...60_000) { paymentLatencyMilliseconds = v }
        if let v = try rate("STOREFRONT_PAYMENT_FAILURE_RATE") { paymentFailureRate = v }
        if let v = try rate("STOREFRONT_PAYMENT_DECLINE_RATE") { paymentDeclineRate = v }
        if let v = try rate("STOREFRONT_PAYMENT_TIMEOUT_RATE") { paymentTimeoutRate = v }
        if let v = string("STOREFRONT_LOG_LEVEL") {
            let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
            guard levels.contains(v.lowercased()) else { throw ConfigError("STOREFRONT_LOG_LEVEL must be one of \(levels.joined(separator: ", "))") }
            logLevel = v.lowercased()
        }
        guard databaseAutoPromoteSeconds == 0 || databaseAdminUser != nil else {
            throw ConfigError("STOREFRONT_DATABASE_AUTO_PROMOTE_SECONDS needs STOREFRONT_DATABASE_ADMIN_USER (the operations account)")
        }
        guard paymentFailureRate + paymentDeclineRate <= 1 else {
            throw ConfigError("STOREFRONT_PAYMENT_FAILURE_RATE + STOREFRONT_PAYMENT_DECLINE_RATE must not exceed 1")
        }
        guard recoveryIntervalSeconds * 2 <= sagaLeaseSeconds || sagaLeaseSeconds < 2 else {
            throw ConfigError("STOREFRONT_RECOVERY_INTERVAL_SECONDS must be at most half of STOREFRONT_SAGA_LEASE_SECONDS (leases are renewed by that loop)")
        }
    }

    public var paymentBehavior: SimulatedPaymentGateway.Behavior {
        .init(latency: .milliseconds(paymentLatencyMilliseconds), failureRate: paymentFailureRate,
              declineRate: paymentDeclineRate, timeoutAfterChargeRate: paymentTimeoutRate)
    }

    public var sagaSettings: SagaSettings { SagaSettings(leaseDuration: .seconds(sagaLeaseSeconds)) }

    public var purchaseSettings: PurchaseSettings {
        PurchaseSettings(mode: purchaseMode, maxQty: maxQty, lockTTL: .milliseconds(lockTTLMilliseconds),
                         lockWait: .milliseconds(lockWaitMilliseconds))
    }

    public var catalogSettings: CatalogSettings {
        CatalogSettings(ttl: .seconds(cacheTTLSeconds), negativeTTL: .seconds(cacheNegativeTTLSeconds))
    }
}

/// A configuration value is missing or wrong; the message names the setting.
public struct ConfigError: Error, Sendable, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
