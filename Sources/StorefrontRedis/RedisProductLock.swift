import RedisClient
import StorefrontCore

/// `ProductLock` on Redis: `SET lock:product:{id} <token> NX PX ttl`; release and extend only by the owner
/// (Lua compare-and-delete / compare-and-pexpire), so an expired holder can never free someone else's lock.
public struct RedisProductLock: ProductLock {
    let redis: RedisClient

    static let release = RedisScript("""
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """)
    static let extend = RedisScript("""
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
        return 0
        """)

    let keys: RedisKeys

    public init(redis: RedisClient, keys: RedisKeys) {
        self.redis = redis
        self.keys = keys
    }

    public func acquire(productId: Int64, token: String, ttl: Duration) async throws -> Bool {
        let key = keys.lock(productId)
        let reply = try await redis.send(["SET", .string(key), .string(token), "NX", "PX", RESPArgument(ttl.milliseconds)], key: key)
        return reply.string == "OK"
    }

    public func release(productId: Int64, token: String) async throws -> Bool {
        try await redis.eval(Self.release, keys: [keys.lock(productId)], arguments: [.string(token)]).int == 1
    }

    public func extend(productId: Int64, token: String, ttl: Duration) async throws -> Bool {
        try await redis.eval(Self.extend, keys: [keys.lock(productId)], arguments: [.string(token), RESPArgument(ttl.milliseconds)]).int == 1
    }
}
