import Foundation
import HummingbirdTesting
import RedisClient
import StorefrontApp
import StorefrontContracts
import StorefrontCore
import Synchronization
import Testing

/// Issue 10.3: stock counters (atomic mode) and cached stock (lock mode) that drift below the database heal,
/// on the real Redis Cluster.
@Suite("Stock counters heal")
struct CounterHealingTests {
    func clusterStorefront(_ mode: PurchaseMode, databaseURL: String = temporaryDatabaseURL(), instance: String = "test-1",
                           counter: FaultyCounterHandle? = nil) async throws -> Storefront {
        let url = try TestServers.required("STOREFRONT_TEST_REDIS_CLUSTER_URL")
        var config = StorefrontConfig(instanceID: instance)
        config.databaseURL = databaseURL
        config.adminToken = adminToken
        config.logLevel = "warning"
        config.redis.url = url
        config.purchaseMode = mode
        let box = Mutex<FaultyStockCounter?>(nil)
        let decorators = PortDecorators(counter: { inner in
            let faulty = FaultyStockCounter(inner)
            box.withLock { $0 = faulty }
            return faulty
        })
        let storefront = try await Storefront(config: config, decorators: counter == nil ? .none : decorators)
        if let counter { counter.adopt(box.withLock { $0 }) }
        return storefront
    }

    /// A new user's first run: a fresh database behind a Redis that still holds an earlier deployment's counter
    /// for the same product id, at 0. Every purchase is refused by the counter; the next sweep heals it.
    @Test(arguments: [PurchaseMode.atomic, .lock])
    func aCounterBelowTheDatabaseHealsWhileEveryPurchaseIsRefused(mode: PurchaseMode) async throws {
        let storefront = try await clusterStorefront(mode)
        try await storefront.useUniqueProductIDs()
        let redis = try #require(storefront.redis)
        try await storefront.test { client in
            let id = try await client.createProduct(stock: 50)
            let key = "storefront:product:{\(id)}:stock"
            try await redis.send(["SET", .string(key), "0"], key: key)
            let refused = try await client.purchase(id)
            #expect(refused.status == .conflict && refused.error == "insufficient_stock", "\(refused.raw)")
            #expect(try await client.call(.get, "/products/\(id)").int("available") == 50)
            await storefront.reconciler.sweep()
            #expect(try await redis.send(["GET", .string(key)], key: key).int == 50, "healed within one sweep")
            #expect(try await client.purchase(id).status == .created)
        }
    }

    /// A reservation whose reply is lost (the script ran, the connection dropped): the units are gone from the
    /// counter, the buyer got 503, and nothing recorded why. The product sells its last unit anyway: every
    /// server notes refusals and unknown outcomes, and its next sweep heals the counter — here on the other
    /// server (as after a crash between reservation and saga), on the real Redis Cluster.
    @Test func aReservationWhoseReplyWasLostHeals() async throws {
        let database = temporaryDatabaseURL()
        let handle = FaultyCounterHandle()
        let a = try await clusterStorefront(.atomic, databaseURL: database, instance: "app-a", counter: handle)
        let b = try await clusterStorefront(.atomic, databaseURL: database, instance: "app-b")
        try await a.useUniqueProductIDs()
        let redis = try #require(b.redis)
        let id = try await a.test { client in
            let id = try await client.createProduct(stock: 1)
            try #require(handle.counter).loseNextReply()
            let lost = try await client.purchase(id)
            #expect(lost.status == .serviceUnavailable, "\(lost.raw)")
            return id
        }
        let key = "storefront:product:{\(id)}:stock"
        #expect(try await redis.send(["GET", .string(key)], key: key).int == 0, "the unit is gone from the counter")
        try await b.test { client in
            let refused = try await client.purchase(id)
            #expect(refused.status == .conflict && refused.error == "insufficient_stock", "\(refused.raw)")
            #expect(await b.reconciler.sweep().corrected == 1)
            #expect(try await client.purchase(id).status == .created, "the last unit is sold after all")
            #expect(try await client.purchase(id).error == "insufficient_stock")
        }
        let product = try #require(try await b.database.products.product(id: id, consistency: .primary))
        #expect(product.stock == 0)
        #expect(try await b.database.products.unitsHeld(productId: id) == 0)
    }
}

/// Hands the test the counter decorator the storefront was built with.
final class FaultyCounterHandle: Sendable {
    private let box = Mutex<FaultyStockCounter?>(nil)
    var counter: FaultyStockCounter? { box.withLock { $0 } }
    func adopt(_ counter: FaultyStockCounter?) { box.withLock { $0 = counter } }
}
