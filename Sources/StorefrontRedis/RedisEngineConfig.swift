import RedisClient
import StorefrontCore

/// The Redis engine's settings (`STOREFRONT_REDIS_*`). No URL = the in-process cache, lock and counter.
public struct RedisEngineConfig: Sendable, Equatable {
    public var url: String?
    public var connections = 4
    public var timeoutMilliseconds = 2000
    public var tlsCAFile: String?
    /// Every key this deployment writes starts with it.
    public var keys = try! RedisKeys()
    /// Life of a near-cache copy of a product in each app server (0 = no near cache).
    public var nearCacheMilliseconds = 5000
    public var nearCacheEntries = 10_000

    public init() {}

    public static var keys: [ConfigKey<Self>] {
        [
            .text("STOREFRONT_REDIS_URL", "redis://… for the Redis engine; empty = in-process cache, lock and counter", \.url),
            .int("STOREFRONT_REDIS_CONNECTIONS", "multiplexed connections per Redis node (default 4)", 1...256, \.connections),
            .int("STOREFRONT_REDIS_TIMEOUT_MS", "deadline of one Redis command and of connecting (default 2000)", 10...60_000, \.timeoutMilliseconds),
            .text("STOREFRONT_REDIS_TLS_CA_FILE", "PEM file of CA certificates to trust for rediss:// (default: the system's)", \.tlsCAFile),
            ConfigKey("STOREFRONT_REDIS_KEY_PREFIX",
                      "prefix of every Redis key, so deployments sharing one Redis never read each other's (default storefront:; none = no prefix)") { settings, value in
                do { settings.keys = try RedisKeys(prefix: value == "none" ? "" : value) } catch { throw ConfigError("STOREFRONT_REDIS_KEY_PREFIX: \(error)") }
            },
            .int("STOREFRONT_REDIS_NEAR_CACHE_MS",
                 "life of each app server's in-memory copy of a cached product, dropped at once by the invalidations every server broadcasts (sharded Pub/Sub, Redis ≥ 7); 0 = no near cache (default 5000)",
                 0...300_000, \.nearCacheMilliseconds),
            .int("STOREFRONT_REDIS_NEAR_CACHE_ENTRIES", "most products in the near cache (default 10000)", 1...10_000_000, \.nearCacheEntries),
        ]
    }

    /// The near cache's settings, or nil when it is off.
    public var nearCache: NearProductCache.Settings? {
        nearCacheMilliseconds > 0 ? .init(ttl: .milliseconds(nearCacheMilliseconds), capacity: nearCacheEntries) : nil
    }

    /// The client configuration for `url` (nil without one).
    public func clientConfiguration(clientName: String) throws -> RedisConfiguration? {
        guard let url else { return nil }
        var config = try RedisConfiguration(url: url)
        config.clientName = clientName
        config.connectionsPerNode = connections
        config.commandTimeout = .milliseconds(timeoutMilliseconds)
        config.connectTimeout = .milliseconds(timeoutMilliseconds)
        config.tlsCAFile = tlsCAFile
        return config
    }
}
