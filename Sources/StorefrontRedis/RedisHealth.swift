import RedisClient
import StorefrontCore

/// `/health/ready` entry for Redis.
public struct RedisHealth: HealthCheckable {
    let redis: RedisClient
    public init(redis: RedisClient) { self.redis = redis }
    public var healthName: String { "redis" }
    public func checkHealth() async throws { try await redis.ping() }
}
