import Foundation
import HTTPTypes
import HummingbirdTesting
import StorefrontApp
import StorefrontCore
import Testing

@Suite("Product routes")
struct ProductRoutesTests {
    @Test func productViewAndErrors() async throws {
        try await makeStorefront().test { client in
            let id = try await client.createProduct(sku: "mug-1", stock: 50)
            let view = try await client.call(.get, "/products/\(id)")
            #expect(view.status == .ok)
            #expect(view.string("sku") == "mug-1" && view.int("available") == 50 && view.int("priceMinor") == 1999)
            #expect(view.string("currency") == "USD" && view.string("name") == "Mug" && view.string("description") == "A mug")
            #expect(view.headers[.init("X-Request-Id")!] != nil)

            let missing = try await client.call(.get, "/products/9999")
            #expect(missing.status == .notFound && missing.error == "product_not_found")
            #expect(((missing.json["error"] as? [String: any Sendable])?["requestId"] as? String)?.isEmpty == false)
            // served from the negative cache the second time: same answer
            #expect(try await client.call(.get, "/products/9999").error == "product_not_found")
            for bad in ["abc", "-1", "0", "1.5", "99999999999999999999"] {
                let r = try await client.call(.get, "/products/\(bad)")
                #expect(r.status == .badRequest && r.error == "invalid_parameter", "id \(bad)")
            }
            #expect(try await client.call(.get, "/nowhere").error == "not_found")
            let wrongMethod = try await client.call(.delete, "/products/\(id)")
            #expect(wrongMethod.status == .methodNotAllowed && wrongMethod.error == "method_not_allowed")
            #expect(wrongMethod.headers[.allow] == "GET")
            #expect(try await client.call(.get, "/purchase").headers[.allow] == "POST")
        }
    }

    /// nginx passes its `$request_id`: the app answers (and logs) with that id instead of its own.
    @Test func requestIdFromTheProxyIsAdopted() async throws {
        try await makeStorefront().test { client in
            let header = HTTPField.Name("X-Request-Id")!
            let proxyID = "4f1c9a0e8b7d6c5b4a39281706f5e4d3"
            let missing = try await client.call(.get, "/products/9999", headers: [header: proxyID])
            #expect(missing.headers[header] == proxyID)
            #expect((missing.json["error"] as? [String: any Sendable])?["requestId"] as? String == proxyID)
            let id = try await client.createProduct(stock: 3)
            #expect(try await client.call(.get, "/products/\(id)", headers: [header: "req-1.a_b:c"]).headers[header] == "req-1.a_b:c")
            // Unusable ids (spaces, control text, too long) are not adopted: the app's own id is used.
            for bad in ["has space", String(repeating: "a", count: 129), "x\"y"] {
                let reply = try await client.call(.get, "/products/\(id)", headers: [header: bad])
                let answered = try #require(reply.headers[header])
                #expect(answered != bad && !answered.isEmpty)
            }
            // Without the header every response still carries an id, different each time.
            let a = try await client.call(.get, "/products/\(id)").headers[header]
            let b = try await client.call(.get, "/products/\(id)").headers[header]
            #expect(a != nil && b != nil && a != b)
        }
    }

    @Test func listPagesWithOpaqueCursor() async throws {
        try await makeStorefront().test { client in
            for n in 1...5 { _ = try await client.createProduct(sku: "p-\(n)") }
            var skus: [String] = []
            var uri = "/products?limit=2"
            var pages = 0
            while pages < 10 {
                let page = try await client.call(.get, uri)
                #expect(page.status == .ok)
                let items = try #require(page.json["items"] as? [[String: any Sendable]])
                skus += items.compactMap { $0["sku"] as? String }
                pages += 1
                guard let next = page.json["next"] as? String else {
                    #expect(page.raw.contains(#""next":null"#))
                    break
                }
                uri = "/products?limit=2&after=\(next)"
            }
            #expect(skus == ["p-1", "p-2", "p-3", "p-4", "p-5"])
            #expect(pages == 3)
            #expect(try await client.call(.get, "/products").status == .ok)
            for bad in ["limit=0", "limit=101", "limit=x", "after=notacursor", "after=%%%"] {
                let r = try await client.call(.get, "/products?\(bad)")
                #expect(r.status == .badRequest && r.error == "invalid_parameter", "\(bad)")
            }
        }
    }

    @Test func cacheIsInvalidatedByAdminWritesAndPurchases() async throws {
        try await makeStorefront().test { client in
            let id = try await client.createProduct(stock: 5)
            #expect(try await client.call(.get, "/products/\(id)").int("available") == 5)  // now cached
            #expect(try await client.call(.put, "/admin/products/\(id)", body: #"{"name":"Renamed"}"#, admin: true).status == .ok)
            #expect(try await client.call(.get, "/products/\(id)").string("name") == "Renamed")
            #expect(try await client.purchase(id, qty: 2).status == .created)
            #expect(try await client.call(.get, "/products/\(id)").int("available") == 3)
            #expect(try await client.call(.post, "/admin/products/\(id)/restock", body: #"{"qty":10}"#, admin: true).int("available") == 13)
            #expect(try await client.call(.get, "/products/\(id)").int("available") == 13)
        }
    }

    @Test func concurrentMissesReadTheDatabaseOnce() async throws {
        // Single-flight: many concurrent misses for one id share one load.
        let store = CountingProductStore()
        let catalog = CatalogService(products: store, cache: InProcessProductCache(), counter: InProcessStockCounter())
        let p = try await store.create(NewProduct(sku: "sf", name: "S", description: "", priceMinor: 1, currency: "USD", stock: 1), now: Date())
        store.delay = .milliseconds(100)
        try await withThrowingTaskGroup(of: Product.self) { group in
            for _ in 0..<50 { group.addTask { try await catalog.product(id: p.id) } }
            for try await product in group { #expect(product.id == p.id) }
        }
        #expect(store.reads == 1)
        _ = try await catalog.product(id: p.id)
        #expect(store.reads == 1, "the second view is a cache hit")
    }
}

@Suite("Product cache")
struct ProductCacheTests {
    @Test func unknownIdsAreCachedBrieflyAsAbsent() async throws {
        let store = CountingProductStore()
        let catalog = CatalogService(products: store, cache: InProcessProductCache(), counter: InProcessStockCounter(),
                                     settings: CatalogSettings(negativeTTL: .milliseconds(200)))
        for _ in 0..<5 {
            await #expect(throws: StorefrontError.productNotFound(42)) { try await catalog.product(id: 42) }
        }
        #expect(store.reads == 2 && store.primaryReads == 1, "one replica read confirmed on the primary, then the negative entry answers")
        try await Task.sleep(for: .milliseconds(300))
        await #expect(throws: StorefrontError.productNotFound(42)) { try await catalog.product(id: 42) }
        #expect(store.reads == 4, "the negative entry expired")
    }

    /// A change that a lagging replica has not applied yet: a view in that window reads the old product and puts
    /// it back into the cache (cache-aside cannot tell), so the catalog invalidates the product once more after
    /// `reinvalidateAfter` — about the longest a replica in read rotation can lag — and the old product is gone
    /// then. The wait is the test's to end (a gate), so the order of events never depends on the machine's speed.
    @Test func aFillFromALaggingReplicaIsDroppedAgain() async throws {
        let store = CountingProductStore()
        let (gate, open) = AsyncStream.makeStream(of: Void.self)
        let catalog = CatalogService(products: store, cache: InProcessProductCache(), counter: InProcessStockCounter(),
                                     settings: CatalogSettings(reinvalidateAfter: .seconds(8)),
                                     sleep: { delay in
                                         #expect(delay == .seconds(8))
                                         for await _ in gate { return }
                                     })
        let p = try await catalog.create(NewProduct(sku: "lag", name: "L", description: "", priceMinor: 100, currency: "USD", stock: 5))
        #expect(try await catalog.product(id: p.id).priceMinor == 100)
        try await store.freezeReplica()
        #expect(try await catalog.update(id: p.id, ProductUpdate(priceMinor: 250)).priceMinor == 250)
        #expect(try await catalog.product(id: p.id).priceMinor == 100, "the lagging replica's answer, cached")
        store.thawReplica()
        #expect(try await catalog.product(id: p.id).priceMinor == 100, "still the cached old product")
        open.yield()  // the delay is over
        var seen: Int64 = 0
        for _ in 0..<100 where seen != 250 {
            try await Task.sleep(for: .milliseconds(50))
            seen = try await catalog.product(id: p.id).priceMinor
        }
        #expect(seen == 250, "the old product was dropped again once the replica had the change")
    }

    /// A product created a moment ago that a lagging replica has not received is not answered 404 (nor cached
    /// as absent): the replica's "not found" is confirmed on the primary.
    @Test func aProductTheReplicaHasNotSeenYetIsNotAnswered404() async throws {
        let store = CountingProductStore()
        store.laggingReplica = true
        let catalog = CatalogService(products: store, cache: InProcessProductCache(), counter: InProcessStockCounter())
        let p = try await store.create(NewProduct(sku: "new", name: "New", description: "", priceMinor: 5, currency: "USD", stock: 7), now: Date())
        #expect(try await catalog.product(id: p.id).available == 7)
        #expect(store.primaryReads == 1)
        #expect(try await catalog.product(id: p.id).sku == "new", "then cached")
        #expect(store.reads == 2)
    }

    /// With the primary unreachable, the replica's "not found" is answered (404, not 503) but not cached: the
    /// next view asks again.
    @Test func anUnknownIdWithThePrimaryDownIs404AndNotCached() async throws {
        let store = CountingProductStore()
        store.primaryDown = true
        let catalog = CatalogService(products: store, cache: InProcessProductCache(), counter: InProcessStockCounter())
        await #expect(throws: StorefrontError.productNotFound(7)) { try await catalog.product(id: 7) }
        await #expect(throws: StorefrontError.productNotFound(7)) { try await catalog.product(id: 7) }
        #expect(store.reads == 4, "replica + primary twice: nothing cached")
        store.primaryDown = false
        await #expect(throws: StorefrontError.productNotFound(7)) { try await catalog.product(id: 7) }
        await #expect(throws: StorefrontError.productNotFound(7)) { try await catalog.product(id: 7) }
        #expect(store.reads == 6, "confirmed absent, then cached")
    }

    @Test func ttlIsJitteredAroundTheConfiguredValue() {
        let catalog = CatalogService(products: CountingProductStore(), cache: InProcessProductCache(), counter: InProcessStockCounter())
        let ttls: [Duration] = (0..<200).map { _ in catalog.jitteredTTL() }
        #expect(ttls.allSatisfy { $0 >= .seconds(270) && $0 <= .seconds(330) })
        #expect(Set(ttls).count > 1, "not all the same")
    }

    @Test func cacheEntriesExpire() async throws {
        let cache = InProcessProductCache()
        let p = Product(id: 1, sku: "s", name: "n", description: "", priceMinor: 1, currency: "USD", stock: 1, version: 1, updatedAt: Date())
        try await cache.put(p, ttl: .milliseconds(100))
        #expect(try await cache.get(id: 1) == .hit(p))
        try await Task.sleep(for: .milliseconds(150))
        #expect(try await cache.get(id: 1) == .miss)
    }

    @Test func aCacheOutageFallsBackToTheDatabase() async throws {
        let store = CountingProductStore()
        let p = try await store.create(NewProduct(sku: "s", name: "n", description: "", priceMinor: 1, currency: "USD", stock: 3), now: Date())
        let catalog = CatalogService(products: store, cache: BrokenCache(), counter: InProcessStockCounter())
        #expect(try await catalog.product(id: p.id).available == 3)
    }
}

struct BrokenCache: ProductCache {
    struct Down: Error {}
    func get(id: Int64) async throws -> CacheLookup { throw Down() }
    func put(_ product: Product, ttl: Duration) async throws { throw Down() }
    func putAbsent(id: Int64, ttl: Duration) async throws { throw Down() }
    func invalidate(id: Int64) async throws { throw Down() }
}
