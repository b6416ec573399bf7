import Foundation
import StorefrontCore
import Testing

/// The contract every `ProductStore` adapter must satisfy.
public enum ProductStoreContract {
    public static func mug(_ sku: String = "mug-1", stock: Int64 = 50) -> NewProduct {
        NewProduct(sku: sku, name: "Mug", description: "A mug", priceMinor: 1999, currency: "USD", stock: stock)
    }

    public static func run(_ store: any ProductStore) async throws {
        let now = Date(timeIntervalSince1970: 1_760_000_000)
        // create and read back, on both consistencies
        let created = try await store.create(mug(), now: now)
        #expect(created.id > 0)
        #expect(created.sku == "mug-1" && created.priceMinor == 1999 && created.currency == "USD")
        #expect(created.stock == 50 && created.available == 50)
        #expect(try await store.unitsHeld(productId: created.id) == 0)
        #expect(try await store.product(id: created.id, consistency: .primary) == created)
        // A replica may lag: it must converge (shortly), not be instantly fresh.
        #expect(try await converges { try await store.product(id: created.id, consistency: .replica)?.sku == "mug-1" })
        #expect(try await store.product(id: 999_999, consistency: .primary) == nil)

        // unique SKU
        await #expect(throws: StorefrontError.skuConflict("mug-1")) { try await store.create(mug(), now: now) }

        // partial update keeps other fields and bumps the version
        let updated = try await store.update(id: created.id, ProductUpdate(name: "Big mug", priceMinor: 2499), now: now)
        #expect(updated.name == "Big mug" && updated.priceMinor == 2499 && updated.sku == "mug-1" && updated.stock == 50)
        #expect(updated.version > created.version)
        await #expect(throws: StorefrontError.productNotFound(424_242)) {
            try await store.update(id: 424_242, ProductUpdate(name: "x"), now: now)
        }
        let other = try await store.create(mug("cup-1"), now: now)
        await #expect(throws: StorefrontError.self) {
            try await store.update(id: other.id, ProductUpdate(sku: "mug-1"), now: now)
        }
        #expect(try await store.product(id: other.id, consistency: .primary)?.sku == "cup-1")

        // restock
        let restocked = try await store.restock(id: created.id, qty: 7, now: now)
        #expect(restocked.stock == 57 && restocked.available == 57)
        await #expect(throws: StorefrontError.productNotFound(424_242)) { try await store.restock(id: 424_242, qty: 1, now: now) }

        // cursor paging: ids ascending, `next` only while more remain
        for n in 0..<3 { _ = try await store.create(mug("page-\(n)"), now: now) }
        #expect(try await converges { try await store.products(after: nil, limit: 10, consistency: .replica).items.count == 5 })
        var seen: [Int64] = []
        var cursor: Int64? = nil
        var pages = 0
        repeat {
            let page = try await store.products(after: cursor, limit: 2, consistency: .replica)
            #expect(page.items.count <= 2)
            seen += page.items.map(\.id)
            cursor = page.next
            pages += 1
        } while cursor != nil && pages < 10
        #expect(seen == seen.sorted())
        #expect(seen.count == 5)
        #expect(pages == 3)
        let empty = try await store.products(after: seen.last, limit: 2, consistency: .replica)
        #expect(empty.items.isEmpty && empty.next == nil)

        // seeding is idempotent by SKU: existing SKUs are skipped, the rest inserted
        #expect(try await DemoCatalog(products: store, batchSize: 2).seed(count: 3, stock: 5, now: now) == 3)
        #expect(try await DemoCatalog(products: store, batchSize: 2).seed(count: 3, stock: 5, now: now) == 0)
        #expect(try await store.insertIgnoringExisting([mug(), DemoCatalog.product(3, stock: 1)], now: now) == 0)
        let demo3 = try await store.products(after: nil, limit: 100, consistency: .primary).items.first { $0.sku == "demo-3" }
        #expect(demo3?.stock == 5 && demo3?.name == "Demo product 3", "existing SKUs keep their stock")
        _ = try await store.insertIgnoringExisting([], now: now)
        let all = try await store.products(after: nil, limit: 100, consistency: .primary)
        #expect(all.items.count == 8)
    }

    /// True once `condition` holds, polling for up to 10 s (replica reads are eventually consistent).
    static func converges(_ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return try await condition()
    }
}
