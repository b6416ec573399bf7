import Foundation
import HTTPTypes
import HummingbirdTesting
import StorefrontApp
import StorefrontCore
import Testing

@Suite("Admin routes")
struct AdminRoutesTests {
    let valid = #"{"sku":"mug-1","name":"Mug","description":"…","priceMinor":1999,"currency":"USD","stock":50}"#

    @Test func requiresTheBearerToken() async throws {
        try await makeStorefront().test { client in
            #expect(try await client.call(.post, "/admin/products", body: valid).error == "unauthorized")
            var wrong = HTTPFields()
            wrong[.authorization] = "Bearer nope"
            let r = try await client.call(.post, "/admin/products", body: valid, headers: wrong)
            #expect(r.status == .unauthorized && r.error == "unauthorized")
            #expect(try await client.call(.get, "/products/1").status == .notFound, "nothing was created")
        }
    }

    @Test func disabledWithoutAConfiguredToken() async throws {
        try await makeStorefront { $0.adminToken = nil }.test { client in
            let r = try await client.call(.post, "/admin/products", body: valid, admin: true)
            #expect(r.status == .unauthorized && r.error == "unauthorized")
            var empty = HTTPFields()
            empty[.authorization] = "Bearer "
            #expect(try await client.call(.post, "/admin/products", body: valid, headers: empty).status == .unauthorized)
        }
    }

    @Test func createValidatesEveryField() async throws {
        try await makeStorefront().test { client in
            let created = try await client.call(.post, "/admin/products", body: valid, admin: true)
            #expect(created.status == .created && created.int("available") == 50 && created.string("sku") == "mug-1")
            #expect(created.headers[.location] == "/products/\(created.int("id")!)")
            #expect(try await client.call(.post, "/admin/products", body: valid, admin: true).error == "sku_conflict")
            let bad: [(String, String)] = [
                (#"{"sku":"x","name":"Mug","priceMinor":1,"currency":"usd"}"#, "validation_failed"),
                (#"{"sku":"x","name":"Mug","priceMinor":-1,"currency":"USD"}"#, "validation_failed"),
                (#"{"sku":"x","name":"","priceMinor":1,"currency":"USD"}"#, "validation_failed"),
                (#"{"sku":"has space","name":"M","priceMinor":1,"currency":"USD"}"#, "validation_failed"),
                (#"{"sku":"x","name":"M","priceMinor":1,"currency":"USD","stock":-3}"#, "validation_failed"),
                (#"{"sku":"x","name":"M","priceMinor":19.99,"currency":"USD"}"#, "validation_failed"),
                (#"{"sku":"x","name":"M","currency":"USD"}"#, "validation_failed"),
                (#"{"sku":"x","name":"M","priceMinor":1,"currency":"USD","description":null}"#, "validation_failed"),
                (#"{"sku":"x","name":"M","priceMinor":"1","currency":"USD"}"#, "validation_failed"),
                (#"[1,2]"#, "validation_failed"),
                (#"{"sku":"#, "malformed_json"),
                ("", "malformed_json"),
            ]
            for (body, code) in bad {
                let r = try await client.call(.post, "/admin/products", body: body, admin: true)
                #expect(r.error == code, "\(body) → \(r.raw)")
                #expect((400..<500).contains(r.status.code))
            }
            let page = try await client.call(.get, "/products?limit=100")
            #expect((page.json["items"] as? [Any])?.count == 1, "no invalid product was created")
        }
    }

    @Test func updateAndRestock() async throws {
        try await makeStorefront().test { client in
            let id = try await client.createProduct(sku: "a", stock: 5)
            _ = try await client.createProduct(sku: "b", stock: 5)
            let updated = try await client.call(.put, "/admin/products/\(id)", body: #"{"priceMinor":2500,"description":"new"}"#, admin: true)
            #expect(updated.status == .ok && updated.int("priceMinor") == 2500 && updated.string("description") == "new" && updated.string("sku") == "a")
            #expect(try await client.call(.put, "/admin/products/\(id)", body: #"{"sku":"b"}"#, admin: true).error == "sku_conflict")
            #expect(try await client.call(.put, "/admin/products/\(id)", body: "{}", admin: true).error == "validation_failed")
            #expect(try await client.call(.put, "/admin/products/\(id)", body: #"{"currency":null}"#, admin: true).error == "validation_failed",
                    "an explicit null is refused, not ignored")
            #expect(try await client.call(.put, "/admin/products/777", body: #"{"name":"x"}"#, admin: true).error == "product_not_found")
            #expect(try await client.call(.put, "/admin/products/x", body: #"{"name":"x"}"#, admin: true).error == "invalid_parameter")
            let restocked = try await client.call(.post, "/admin/products/\(id)/restock", body: #"{"qty":7}"#, admin: true)
            #expect(restocked.status == .ok && restocked.int("available") == 12)
            for body in [#"{"qty":0}"#, #"{"qty":-1}"#, #"{"qty":"7"}"#, "{}"] {
                #expect(try await client.call(.post, "/admin/products/\(id)/restock", body: body, admin: true).error == "validation_failed", "\(body)")
            }
            #expect(try await client.call(.post, "/admin/products/777/restock", body: #"{"qty":1}"#, admin: true).error == "product_not_found")
            #expect(try await client.call(.get, "/products/\(id)").int("available") == 12)
        }
    }

    @Test func eventsAreQueryableFromTheOutbox() async throws {
        try await makeStorefront().test { client in
            let id = try await client.createProduct(stock: 5)
            let bought = try await client.purchase(id)
            let sagaId = try #require(bought.string("sagaId"))
            let events = try await client.call(.get, "/admin/events?sagaId=\(sagaId)", admin: true)
            #expect(events.status == .ok)
            let items = try #require(events.json["items"] as? [[String: any Sendable]])
            let types = items.compactMap { ($0["event"] as? [String: any Sendable])?["type"] as? String }
            #expect(types == ["SagaStarted", "InventoryReserved", "OrderCreated", "PaymentProcessed", "OrderConfirmed"])
            let times = items.compactMap { ($0["event"] as? [String: any Sendable])?["occurredAt"] as? String }
            #expect(times.count == 5 && times.allSatisfy { Timestamp.parse($0) != nil }, "RFC 3339 strings, not numbers")
            #expect(try await client.call(.get, "/admin/events?sagaId=nope", admin: true).error == "invalid_parameter")
            #expect(try await client.call(.get, "/admin/events").error == "unauthorized")
        }
    }
}

@Suite("Health and metrics")
struct HealthRoutesTests {
    @Test func liveReadyAndMetrics() async throws {
        try await makeStorefront().test { client in
            #expect(try await client.call(.get, "/health/live").status == .ok)
            let ready = try await client.call(.get, "/health/ready")
            #expect(ready.status == .ok && ready.string("status") == "ready")
            #expect(((ready.json["checks"] as? [String: any Sendable])?["database"] as? [String: any Sendable])?["status"] as? String == "up")
            let id = try await client.createProduct()
            _ = try await client.purchase(id)
            let metrics = try await client.call(.get, "/metrics")
            #expect(metrics.status == .ok)
            #expect(metrics.raw.contains("storefront_purchases_total"))
            #expect(metrics.raw.contains("storefront_sagas_finished_total"))
            #expect(metrics.raw.contains("http_server_request_duration"))
        }
    }

    /// The request metrics (Storefront's own middleware, Hummingbird's names): every answer is counted under its
    /// route, method and status, with its duration. Deltas, not totals: the metrics system is one per test process.
    @Test func requestMetricsCountEveryAnswer() async throws {
        @Sendable func value(_ text: String, _ prefix: String) -> Double {
            text.split(separator: "\n").first { $0.hasPrefix(prefix + " ") }.flatMap { Double($0.split(separator: " ").last!) } ?? 0
        }
        let live = #"hb_requests{http_route="/health/live",http_request_method="GET",http_response_status_code="200"}"#
        let liveCount = #"http_server_request_duration_count{http_route="/health/live",http_request_method="GET",http_response_status_code="200"}"#
        let missing = #"hb_requests{http_route="/products/{id}",http_request_method="GET",http_response_status_code="404"}"#
        try await makeStorefront().test { client in
            let before = try await client.call(.get, "/metrics").raw
            for _ in 0..<3 { #expect(try await client.call(.get, "/health/live").status == .ok) }
            #expect(try await client.call(.get, "/products/987654321").status == .notFound)
            let after = try await client.call(.get, "/metrics").raw
            #expect(value(after, live) >= value(before, live) + 3)
            #expect(value(after, liveCount) >= value(before, liveCount) + 3)
            #expect(value(after, missing) >= value(before, missing) + 1)
            #expect(after.contains(#"http_server_active_requests{http_request_method="GET"}"#))
        }
    }

    @Test func readinessReportsADeadDatabase() async throws {
        let storefront = try await makeStorefront()
        try FileManager.default.removeItem(atPath: storefront.database.sqlite!.path)
        try storefront.database.sqlite!.close()
        try await storefront.testRoutesOnly { client in
            let ready = try await client.call(.get, "/health/ready")
            #expect(ready.status == .serviceUnavailable && ready.string("status") == "unavailable")
            #expect(ready.headers[.retryAfter] != nil)
            #expect(try await client.call(.get, "/health/live").status == .ok)
        }
    }
}
