import Foundation
import HummingbirdTesting
import StorefrontApp
import StorefrontCore
import Testing

@Suite("Idempotency-Key")
struct IdempotencyTests {
    @Test(arguments: [PurchaseMode.lock, .atomic])
    func sameKeyTwiceGivesOneOrderAndTheSameResponse(mode: PurchaseMode) async throws {
        let storefront = try await makeStorefront { $0.purchaseMode = mode }
        try await storefront.test { client in
            let id = try await client.createProduct(stock: 10)
            let first = try await client.purchase(id, qty: 2, key: "order-abc")
            let second = try await client.purchase(id, qty: 2, key: "order-abc")
            #expect(first.status == .created && second.status == .created)
            #expect(first.raw.isEmpty == false)
            #expect(first.json.mapValues { "\($0)" } == second.json.mapValues { "\($0)" }, "same body")
            #expect(second.headers[.init("Idempotent-Replayed")!] == "true")
            #expect(first.headers[.init("Idempotent-Replayed")!] == nil)
            #expect(try await client.call(.get, "/products/\(id)").int("available") == 8)
            // a different body with the same key is refused, not executed
            let reused = try await client.purchase(id, qty: 3, key: "order-abc")
            #expect(reused.status == .unprocessableContent && reused.error == "idempotency_key_reused")
            #expect(try await client.call(.get, "/products/\(id)").int("available") == 8)
        }
        #expect(try await storefront.database.payments.chargedTotals().count == 1)
    }

    @Test(arguments: [PurchaseMode.lock, .atomic])
    func sameKeyConcurrentlyGivesOneOrder(mode: PurchaseMode) async throws {
        let storefront = try await makeStorefront {
            $0.purchaseMode = mode
            $0.paymentLatencyMilliseconds = 50
        }
        let replies = try await storefront.test { client in
            let id = try await client.createProduct(stock: 10)
            return try await withThrowingTaskGroup(of: Reply.self) { group in
                for _ in 0..<20 { group.addTask { try await client.purchase(id, qty: 1, key: "burst-1") } }
                var all: [Reply] = []
                for try await r in group { all.append(r) }
                return all
            }
        }
        #expect(replies.allSatisfy { $0.status == .created }, "\(replies.map(\.status.code))")
        #expect(Set(replies.compactMap { $0.int("orderId") }).count == 1)
        #expect(Set(replies.compactMap { $0.string("sagaId") }).count == 1)
        let product = try #require(try await storefront.database.products.product(id: 1, consistency: .primary))
        #expect(product.stock == 9)
        #expect(try await storefront.database.products.unitsHeld(productId: 1) == 0)
        #expect(try await storefront.database.payments.chargedTotals().count == 1)
    }

    @Test func twoServersSameKeyGiveOneOrder() async throws {
        // Two instances on one database: the unique key column decides; the loser replays the winner's outcome.
        let url = temporaryDatabaseURL()
        let a = try await makeStorefront(databaseURL: url, instance: "app-a") { $0.paymentLatencyMilliseconds = 100 }
        let b = try await makeStorefront(databaseURL: url, instance: "app-b") { $0.paymentLatencyMilliseconds = 100 }
        let id = try await a.test { try await $0.createProduct(stock: 10) }
        async let ra = a.test { try await $0.purchase(id, qty: 1, key: "cross-1") }
        async let rb = b.test { try await $0.purchase(id, qty: 1, key: "cross-1") }
        let (x, y) = try await (ra, rb)
        let statuses = [x.status, y.status]
        // One executes; the other replays it (201) — or, if it loses the lock race before the saga row exists,
        // answers product_busy and a retry replays.
        #expect(statuses.contains(.created))
        let retry = try await b.test { try await $0.purchase(id, qty: 1, key: "cross-1") }
        #expect(retry.status == .created && retry.int("orderId") == (x.status == .created ? x : y).int("orderId"))
        let product = try #require(try await a.database.products.product(id: id, consistency: .primary))
        #expect(product.stock == 9)
    }
}
