import Foundation
import Logging
import RedisClient
import StorefrontContracts
import StorefrontCore
@testable import StorefrontRedis
import Testing

/// Two app servers' near caches over one Redis Cluster: an invalidation on one drops the other's copy, long
/// before the copy's own life ends.
@Suite("Near cache over Redis Cluster (real cluster)")
struct RedisNearCacheTests {
    struct Server {
        let near: NearProductCache
        let task: Task<Void, Never>
    }

    func server(_ keys: RedisKeys, ttl: Duration) throws -> Server {
        let redis = try testRedisClient("STOREFRONT_TEST_REDIS_CLUSTER_URL")
        let channel = RedisShardChannel(client: redis, name: keys.invalidations)
        let near = NearProductCache(shared: RedisProductCache(redis: redis, keys: keys), broadcast: RedisInvalidationBroadcast(channel: channel),
                                    settings: .init(ttl: ttl))
        let task = Task { await near.follow(channel, logger: Logger(label: "test")) }
        return Server(near: near, task: task)
    }

    static func waitUntil(_ timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(5))
        }
        return try await condition()
    }

    @Test func anInvalidationOnOneServerDropsTheOthersCopy() async throws {
        let keys = try RedisKeys(prefix: "near\(UInt32.random(in: 0...UInt32.max)):")
        let a = try server(keys, ttl: .seconds(120)), b = try server(keys, ttl: .seconds(120))
        defer { a.task.cancel(); b.task.cancel() }
        #expect(try await Self.waitUntil { a.near.isLive && b.near.isLive })
        let shared = RedisProductCache(redis: try testRedisClient("STOREFRONT_TEST_REDIS_CLUSTER_URL"), keys: keys)
        let id = Int64.random(in: 1_000_000...9_000_000_000)
        func product(_ stock: Int64) -> Product {
            Product(id: id, sku: "k", name: "n", description: "", priceMinor: 1, currency: "USD", stock: stock, version: stock,
                    updatedAt: Date(timeIntervalSince1970: 0))
        }
        var worst = Duration.zero
        for round in Int64(1)...20 {
            try await shared.put(product(round), ttl: .seconds(300))
            #expect(try await b.near.get(id: id) == .hit(product(round)))
            // A change made without an invalidation is not seen: b serves its copy.
            try await shared.put(product(round + 1000), ttl: .seconds(300))
            #expect(try await b.near.get(id: id) == .hit(product(round)))
            // a's invalidation (a purchase confirmed there, an admin change) reaches b.
            try await a.near.invalidate(id: id)
            let sent = ContinuousClock.now
            #expect(try await Self.waitUntil { try await b.near.get(id: id) == .miss }, "round \(round)")
            worst = max(worst, ContinuousClock.now - sent)
        }
        print("[measure] near cache: slowest invalidation seen by the other server after \(worst)")
        // Each round waited at most 10 s for copies that live 120 s: only the message can have dropped them.
        #expect(worst < .seconds(10))
    }
}
