import Foundation
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
