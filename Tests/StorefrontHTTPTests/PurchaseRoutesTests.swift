import Foundation
import HTTPTypes
import HummingbirdTesting
import StorefrontApp
import StorefrontContracts
import StorefrontCore
import Synchronization
import Testing

@Suite("Purchase routes")
struct PurchaseRoutesTests {
    @Test func purchaseConfirmsAndOrderShowsTheTimeline() async throws {
        try await makeStorefront().test { client in
            let id = try await client.createProduct(price: 1999, stock: 10)
            let bought = try await client.purchase(id, qty: 2)
            #expect(bought.status == .created, "\(bought.raw)")
            #expect(bought.string("status") == "CONFIRMED" && bought.int("productId") == id && bought.int("qty") == 2)
            #expect(bought.int("amountMinor") == 3998 && bought.string("currency") == "USD")
            let orderId = try #require(bought.int("orderId"))
            #expect(UUID(uuidString: bought.string("sagaId") ?? "") != nil)
            #expect(bought.headers[.location] == "/orders/\(orderId)")

            let order = try await client.call(.get, "/orders/\(orderId)")
            #expect(order.status == .ok && order.string("status") == "CONFIRMED" && order.int("id") == orderId)
            let saga = try #require(order.json["saga"] as? [String: any Sendable])
            #expect(saga["state"] as? String == "CONFIRMED" && saga["id"] as? String == bought.string("sagaId"))
            let steps = try #require(saga["steps"] as? [[String: any Sendable]])
            #expect(steps.compactMap { $0["name"] as? String } == ["startSaga", "reserveInventory", "createOrder", "processPayment", "confirmOrder"])
            #expect(steps.allSatisfy { $0["status"] as? String == "done" && Timestamp.parse($0["at"] as? String ?? "") != nil })

            #expect(try await client.call(.get, "/products/\(id)").int("available") == 8)
            #expect(try await client.call(.get, "/orders/9999").error == "order_not_found")
            #expect(try await client.call(.get, "/orders/abc").error == "invalid_parameter")
        }
    }

    @Test func badInputIsRejectedAndChangesNothing() async throws {
        let storefront = try await makeStorefront { $0.maxBodyBytes = 1024 }
        try await storefront.test { client in
            let id = try await client.createProduct(stock: 5)
            let longKey = String(repeating: "k", count: 129)
            let cases: [(String, HTTPFields, HTTPResponse.Status, String)] = [
                (#"{"productId":\#(id),"qty":0}"#, [:], .unprocessableContent, "validation_failed"),
                (#"{"productId":\#(id),"qty":-1}"#, [:], .unprocessableContent, "validation_failed"),
                (#"{"productId":\#(id),"qty":101}"#, [:], .unprocessableContent, "validation_failed"),
                (#"{"productId":\#(id),"qty":"1"}"#, [:], .unprocessableContent, "validation_failed"),
                (#"{"productId":\#(id),"qty":1.5}"#, [:], .unprocessableContent, "validation_failed"),
                (#"{"productId":\#(id)}"#, [:], .unprocessableContent, "validation_failed"),
                (#"{"qty":1}"#, [:], .unprocessableContent, "validation_failed"),
                (#"{"productId":null,"qty":1}"#, [:], .unprocessableContent, "validation_failed"),
                (#"{"productId":"abc","qty":1}"#, [:], .unprocessableContent, "validation_failed"),
                (#"{"productId":0,"qty":1}"#, [:], .unprocessableContent, "validation_failed"),
                (#"{"productId":424242,"qty":1}"#, [:], .notFound, "product_not_found"),
                (#"{"productId":1,"qty":"#, [:], .badRequest, "malformed_json"),
                ("not json", [:], .badRequest, "malformed_json"),
                (#"{"productId":\#(id),"qty":1,"pad":"\#(String(repeating: "x", count: 2000))"}"#, [:], .contentTooLarge, "payload_too_large"),
                (#"{"productId":\#(id),"qty":1}"#, [HTTPField.Name("Idempotency-Key")!: longKey], .unprocessableContent, "validation_failed"),
                (#"{"productId":\#(id),"qty":6}"#, [:], .conflict, "insufficient_stock"),
            ]
            for (body, headers, status, code) in cases {
                let r = try await client.call(.post, "/purchase", body: body, headers: headers)
                #expect(r.status == status && r.error == code, "\(body.prefix(60)) → \(r.status) \(r.raw)")
            }
            #expect(try await client.call(.get, "/products/\(id)").int("available") == 5)
            #expect(try await client.call(.get, "/purchase").error == "method_not_allowed")
        }
        // Nothing was written: no order, no payment, only the insufficient-stock saga (which reserved nothing).
        let product = try #require(try await storefront.database.products.product(id: 1, consistency: .primary))
        #expect(product.stock == 5)
        #expect(try await storefront.database.products.unitsHeld(productId: 1) == 0)
        #expect(try await storefront.database.payments.chargedTotals() == (0, 0))
        #expect(try await storefront.services.sagas.order(id: 1) == nil)
    }

    @Test func paymentDeclinedAndUnavailableLeaveStockAlone() async throws {
        let storefront = try await makeStorefront { $0.paymentDeclineRate = 1 }
        try await storefront.test { client in
            let id = try await client.createProduct(stock: 5)
            let declined = try await client.purchase(id, qty: 2)
            #expect(declined.status.code == 402 && declined.error == "payment_declined", "\(declined.raw)")
            let sagaId = try #require((declined.json["error"] as? [String: any Sendable])?["sagaId"] as? String)
            #expect(try await storefront.services.sagas.saga(id: UUID(uuidString: sagaId)!)?.state == .compensated)

            storefront.gateway.setBehavior(.init(failureRate: 1))
            let unavailable = try await client.purchase(id, qty: 2)
            #expect(unavailable.status == .serviceUnavailable && unavailable.error == "payment_unavailable")
            #expect(unavailable.headers[.retryAfter] != nil)
            #expect(try await client.call(.get, "/products/\(id)").int("available") == 5)

            storefront.gateway.setBehavior(.reliable)
            #expect(try await client.purchase(id, qty: 5).status == .created, "stock and counter were given back")
        }
        #expect(try await storefront.database.payments.chargedTotals().count == 1)
    }

    @Test(arguments: [PurchaseMode.lock, .atomic])
    func productBusyIsAFastDistinctAnswer(mode: PurchaseMode) async throws {
        let storefront = try await makeStorefront {
            $0.paymentLatencyMilliseconds = 1500
            $0.purchaseMode = mode
        }
        try await storefront.test { client in
            let id = try await client.createProduct(stock: 5)
            let slowDone = Mutex(false)
            async let slow: Reply = {
                let r = try await client.purchase(id)
                slowDone.withLock { $0 = true }
                return r
            }()
            try await Task.sleep(for: .milliseconds(300))
            let second = try await client.purchase(id)
            let answeredWhileHeld = !slowDone.withLock { $0 }
            switch mode {
            case .lock:
                #expect(second.status == .conflict && second.error == "product_busy")
                #expect(second.headers[.retryAfter] == "1")
                #expect(answeredWhileHeld, "answered at once, not after the lock holder finished")
            case .atomic:
                #expect(second.status == .created, "atomic mode takes no lock")
            }
            #expect(try await slow.status == .created)
            #expect(try await client.purchase(id).status == .created, "the lock was released")
        }
    }
}
