import Foundation
import HummingbirdTesting
import StorefrontApp
import StorefrontCore
import Testing

@Suite("Redis engine through the API")
struct RedisEngineTests {
    @Test(arguments: [PurchaseMode.lock, .atomic])
    func redisDownMeansDatabaseReadsAndFast503Purchases(mode: PurchaseMode) async throws {
        let url = temporaryDatabaseURL()
        // Create the product while Redis is irrelevant (embedded), then serve with a Redis that is down.
        let id = try await makeStorefront(databaseURL: url).test { try await $0.createProduct(stock: 5) }
        let storefront = try await makeStorefront(databaseURL: url) {
            $0.redis.url = "redis://127.0.0.1:1"
            $0.purchaseMode = mode
        }
        try await storefront.test { client in
            let view = try await client.call(.get, "/products/\(id)")
            #expect(view.status == .ok && view.int("available") == 5, "views fall back to the database")
            let start = ContinuousClock.now
            let bought = try await client.purchase(id)
            #expect(bought.status == .serviceUnavailable && bought.error == "service_unavailable", "\(bought.raw)")
            #expect(bought.headers[.retryAfter] != nil)
            #expect(ContinuousClock.now - start < .seconds(3), "no hang")
            let ready = try await client.call(.get, "/health/ready")
            #expect(ready.status == .serviceUnavailable)
            #expect(((ready.json["checks"] as? [String: any Sendable])?["redis"] as? [String: any Sendable])?["status"] as? String == "down")
        }
        let product = try #require(try await storefront.database.products.product(id: id, consistency: .primary))
        #expect(product.stock == 5, "nothing was written")
    }

    @Test func productViewsAreCachedInRedis() async throws {
        let redisURL = try await freshRedisURL()
        let storefront = try await makeStorefront { $0.redis.url = redisURL }
        let redis = try #require(storefront.redis)
        try await storefront.test { client in
            let id = try await client.createProduct(stock: 5)
            #expect(try await redis.send(["EXISTS", .string("storefront:product:{\(id)}:details")]).int == 0)
            #expect(try await client.call(.get, "/products/\(id)").int("available") == 5)
            #expect(try await redis.send(["EXISTS", .string("storefront:product:{\(id)}:details")]).int == 1, "filled on a miss")
            #expect(try await client.purchase(id, qty: 2).status == .created)
            #expect(try await redis.send(["EXISTS", .string("storefront:product:{\(id)}:details")]).int == 0, "invalidated by the purchase")
            #expect(try await redis.send(["GET", .string("storefront:product:{\(id)}:stock")]).int == 3, "counter decremented")
            #expect(try await redis.send(["EXISTS", .string("storefront:lock:product:{\(id)}")]).int == 0, "lock released")
            let ready = try await client.call(.get, "/health/ready")
            #expect(((ready.json["checks"] as? [String: any Sendable])?["redis"] as? [String: any Sendable])?["status"] as? String == "up")
        }
    }
}
