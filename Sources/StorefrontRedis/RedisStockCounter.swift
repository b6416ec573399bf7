import RedisClient
import StorefrontCore

/// `StockCounter` on Redis (`product:{id}:stock`). Every conditional change is one Lua script, so it is atomic;
/// decrement and give-back never create a missing key (a missing key means "reconcile from the database").
public struct RedisStockCounter: StockCounter {
    let redis: RedisClient

    /// Returns {1, remaining} when reserved, {0, current} when too few, {-1, 0} when the key is missing.
    static let reserve = RedisScript("""
        local v = redis.call('GET', KEYS[1])
        if not v then return {-1, 0} end
        v = tonumber(v)
        local qty = tonumber(ARGV[1])
        if v >= qty then return {1, redis.call('DECRBY', KEYS[1], qty)} end
        return {0, v}
        """)
    static let addIfPresent = RedisScript("""
        if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBY', KEYS[1], ARGV[1]) end
        return false
        """)

    /// 1 when the counter held ARGV[1] and is now ARGV[2]; 0 otherwise (changed, or missing).
    static let compareAndSet = RedisScript("""
        if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end
        return 0
        """)

    let keys: RedisKeys

    public init(redis: RedisClient, keys: RedisKeys) {
        self.redis = redis
        self.keys = keys
    }

    public func get(productId: Int64) async throws -> Int64? {
        let key = keys.stock(productId)
        return try await redis.send(["GET", .string(key)], key: key).int
    }

    public func set(productId: Int64, value: Int64) async throws {
        let key = keys.stock(productId)
        try await redis.send(["SET", .string(key), RESPArgument(value)], key: key)
    }

    public func setIfAbsent(productId: Int64, value: Int64) async throws {
        let key = keys.stock(productId)
        try await redis.send(["SET", .string(key), RESPArgument(value), "NX"], key: key)
    }

    public func compareAndSet(productId: Int64, expected: Int64, value: Int64) async throws -> Bool {
        let reply = try await redis.eval(Self.compareAndSet, keys: [keys.stock(productId)],
                                         arguments: [RESPArgument(expected), RESPArgument(value)])
        return reply.int == 1
    }

    public func reserve(productId: Int64, qty: Int64) async throws -> CounterReservation {
        let reply = try await redis.eval(Self.reserve, keys: [keys.stock(productId)], arguments: [RESPArgument(qty)])
        guard let pair = reply.array, pair.count == 2, let status = pair[0].int, let value = pair[1].int else {
            throw RedisClientError.unexpectedReply("reserve: \(reply)")
        }
        switch status {
        case 1: return .reserved(remaining: value)
        case 0: return .insufficient(available: value)
        default: return .missing
        }
    }

    public func decrement(productId: Int64, by qty: Int64) async throws {
        _ = try await redis.eval(Self.addIfPresent, keys: [keys.stock(productId)], arguments: [RESPArgument(-qty)])
    }

    public func giveBack(productId: Int64, qty: Int64) async throws {
        _ = try await redis.eval(Self.addIfPresent, keys: [keys.stock(productId)], arguments: [RESPArgument(qty)])
    }

    public func forget(productId: Int64) async throws {
        let key = keys.stock(productId)
        try await redis.send(["DEL", .string(key)], key: key)
    }
}
