import Foundation
import HummingbirdTesting
import StorefrontApp
import StorefrontCore
@testable import StorefrontMariaDB
import MariaDB
import Testing

extension LoadDrills {
    /// 300 buyers, 50 units: never an oversell, stock conserved, every saga terminal.
    @Suite("Concurrent purchases")
    struct ConcurrencyTests {
        struct Tally: Sendable {
            var confirmed = 0
            var insufficient = 0
            var declined = 0
            var unavailable = 0
            var other: [String] = []
            var busyRetries = 0
        }

        /// Buys one unit per buyer, all at once; a buyer told `product_busy` retries after a short pause, as a client
        /// honouring Retry-After would (bounded).
        static func stampede(_ client: any TestClientProtocol, product: Int64, buyers: Int) async throws -> Tally {
            try await withThrowingTaskGroup(of: (String, Int).self) { group in
                for _ in 0..<buyers {
                    group.addTask {
                        var retries = 0
                        while true {
                            let r = try await client.purchase(product)
                            if r.error == "product_busy", retries < 2000 {
                                retries += 1
                                try await Task.sleep(for: .milliseconds(Int.random(in: 1...8)))
                                continue
                            }
                            return (r.status == .created ? "confirmed" : r.error ?? "status \(r.status.code)", retries)
                        }
                    }
                }
                var tally = Tally()
                for try await (outcome, retries) in group {
                    tally.busyRetries += retries
                    switch outcome {
                    case "confirmed": tally.confirmed += 1
                    case "insufficient_stock": tally.insufficient += 1
                    case "payment_declined": tally.declined += 1
                    case "payment_unavailable": tally.unavailable += 1
                    default: tally.other.append(outcome)
                    }
                }
                return tally
            }
        }

        @Test(arguments: [PurchaseMode.lock, .atomic], Engine.allCases)
        func threeHundredBuyersFiftyUnits(mode: PurchaseMode, engine: Engine) async throws {
            let setup = try await engine.prepare()
            let storefront = try await makeStorefront {
                $0.purchaseMode = mode
                setup.apply(&$0)
            }
            try await storefront.useUniqueProductIDs()
            let (id, tally) = try await storefront.test { client in
                let id = try await client.createProduct(stock: 50)
                let tally = try await Self.stampede(client, product: id, buyers: 300)
                #expect(try await client.call(.get, "/products/\(id)").int("available") == 0)
                return (id, tally)
            }
            print("[measure] engine=\(engine.rawValue) mode=\(mode.rawValue) buyers=300 stock=50 confirmed=\(tally.confirmed) insufficient=\(tally.insufficient) busyRetries=\(tally.busyRetries) other=\(tally.other)")
            #expect(tally.confirmed == 50)
            #expect(tally.insufficient == 250)
            #expect(tally.other.isEmpty)
            let product = try #require(try await storefront.database.products.product(id: id, consistency: .primary))
            #expect(product.stock == 0 && product.available == 0)
            #expect(try await storefront.database.products.unitsHeld(productId: id) == 0)
            #expect(try await storefront.services.sagas.countUnfinished() == 0)
            #expect(try await storefront.database.payments.chargedTotals() == (50, 50 * 1999))
            try await Self.checkWithSQL(storefront, product: id, initialStock: 50, confirmed: 50)
        }

        /// On MariaDB, the invariants once more, by SQL on the primary itself (not through the adapters).
        static func checkWithSQL(_ storefront: Storefront, product: Int64, initialStock: Int64, confirmed: Int) async throws {
            guard let mariadb = storefront.database.mariadb else { return }
            let row = try await mariadb.read(.primary) { s in
                try s.query("""
                    SELECT p.stock, p.reserved,
                        (SELECT COALESCE(SUM(qty), 0) FROM orders WHERE product_id = p.id AND status = 'CONFIRMED') AS sold,
                        (SELECT COUNT(*) FROM orders WHERE product_id = p.id AND status = 'PENDING') AS pending,
                        (SELECT COUNT(*) FROM sagas WHERE state NOT IN ('CONFIRMED', 'COMPENSATED', 'FAILED')) AS unfinished,
                        (SELECT COUNT(*) FROM payments WHERE status = 'CHARGED') AS charged
                    FROM products p WHERE p.id = ?
                    """, [product]).rows[0]
            }
            let (stock, reserved, sold): (Int64, Int64, Int64) = (try row.decode("stock"), try row.decode("reserved"), try row.decode("sold"))
            #expect(stock + sold == initialStock, "SQL: stock + sold == initial")
            #expect(reserved == 0, "SQL: nothing reserved")
            #expect(sold == Int64(confirmed), "SQL: confirmed orders")
            #expect(try row.decode("pending", as: Int.self) == 0, "SQL: no pending order")
            #expect(try row.decode("unfinished", as: Int.self) == 0, "SQL: every saga terminal")
            #expect(try row.decode("charged", as: Int.self) == confirmed, "SQL: one charge per confirmed order")
        }

        /// 20% of payments fail (outage; retried with the same key) or 20% are declined (compensated at once).
        @Test(arguments: [
            (PurchaseMode.lock, 0.2, 0.0, Engine.embedded), (.atomic, 0.2, 0.0, .embedded), (.lock, 0.0, 0.2, .embedded),
            (.atomic, 0.0, 0.2, .embedded), (.lock, 0.0, 0.2, .redis), (.atomic, 0.0, 0.2, .redis), (.atomic, 0.0, 0.2, .cluster),
            (.lock, 0.2, 0.0, .mariadb), (.atomic, 0.0, 0.2, .mariadb),
        ])
        func stockIsConservedWhenPaymentsFail(mode: PurchaseMode, failureRate: Double, declineRate: Double, engine: Engine) async throws {
            let setup = try await engine.prepare()
            let storefront = try await makeStorefront {
                $0.purchaseMode = mode
                setup.apply(&$0)
                $0.paymentFailureRate = failureRate
                $0.paymentDeclineRate = declineRate
            }
            try await storefront.useUniqueProductIDs()
            let (id, tally) = try await storefront.test { client in
                let id = try await client.createProduct(stock: 50)
                return (id, try await Self.stampede(client, product: id, buyers: 300))
            }
            print("[measure] engine=\(engine.rawValue) mode=\(mode.rawValue) failureRate=\(failureRate) declineRate=\(declineRate) confirmed=\(tally.confirmed) insufficient=\(tally.insufficient) unavailable=\(tally.unavailable) declined=\(tally.declined) other=\(tally.other)")
            let product = try #require(try await storefront.database.products.product(id: id, consistency: .primary))
            #expect(try await storefront.database.products.unitsHeld(productId: id) == 0)
            #expect(product.stock + Int64(tally.confirmed) == 50, "stock + confirmed qty == initial stock")
            #expect(tally.confirmed + tally.insufficient + tally.unavailable + tally.declined == 300)
            if declineRate > 0 { #expect(tally.declined > 0, "compensations were exercised") }
            #expect(tally.other.isEmpty)
            #expect(try await storefront.services.sagas.countUnfinished() == 0)
            #expect(try await storefront.database.payments.chargedTotals().count == tally.confirmed, "one charge per confirmed order")
            try await Self.checkWithSQL(storefront, product: id, initialStock: 50, confirmed: tally.confirmed)
        }
    }
}
