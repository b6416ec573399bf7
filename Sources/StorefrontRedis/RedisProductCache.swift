import Foundation
import RedisClient
import StorefrontCore

/// `ProductCache` on Redis: `product:{id}:details` holds the product as JSON (or an absent marker), with a TTL.
public struct RedisProductCache: ProductCache {
    let redis: RedisClient
    static let absentMarker = "{\"absent\":true}"

    let keys: RedisKeys

    public init(redis: RedisClient, keys: RedisKeys) {
        self.redis = redis
        self.keys = keys
    }

    public func get(id: Int64) async throws -> CacheLookup {
        let key = keys.details(id)
        let reply = try await redis.send(["GET", .string(key)], key: key)
        guard let text = reply.string else { return .miss }
        if text == Self.absentMarker { return .absent }
        guard let product = try? Self.decoder.decode(Product.self, from: Data(text.utf8)) else {
            // An entry we cannot read (older format): treat as a miss; the fill overwrites it.
            return .miss
        }
        return .hit(product)
    }

    public func put(_ product: Product, ttl: Duration) async throws {
        let json = String(decoding: try Self.encoder.encode(product), as: UTF8.self)
        let key = keys.details(product.id)
        try await redis.send(["SET", .string(key), .string(json), "PX", RESPArgument(ttl.milliseconds)], key: key)
    }

    public func putAbsent(id: Int64, ttl: Duration) async throws {
        let key = keys.details(id)
        try await redis.send(["SET", .string(key), .string(Self.absentMarker), "PX", RESPArgument(ttl.milliseconds)], key: key)
    }

    public func invalidate(id: Int64) async throws {
        let key = keys.details(id)
        try await redis.send(["DEL", .string(key)], key: key)
    }

    private static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .millisecondsSince1970
        return e
    }()

    private static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .millisecondsSince1970
        return d
    }()
}
