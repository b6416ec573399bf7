import Foundation
import HTTPTypes
import HummingbirdTesting
import StorefrontApp
import StorefrontCore
@testable import StorefrontHTTP
import Testing

/// The shop's HTML pages in-process (the browser tests drive the same pages in Chromium: Tests/browser).
@Suite("Shop pages")
struct ShopPageTests {
    static let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]

    /// A public page: the headers, and nothing of the console in it.
    static func expectPage(_ reply: Reply, _ status: HTTPResponse.Status, sourceLocation: SourceLocation = #_sourceLocation) {
        expectPageHeaders(reply, status, sourceLocation: sourceLocation)
        #expect(!reply.raw.contains("/admin"), "nothing of the console in public pages", sourceLocation: sourceLocation)
    }

    /// Any page: HTML, the security headers, no inline script.
    static func expectPageHeaders(_ reply: Reply, _ status: HTTPResponse.Status, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(reply.status == status, "\(reply.raw)", sourceLocation: sourceLocation)
        #expect(reply.headers[.contentType] == "text/html; charset=utf-8", sourceLocation: sourceLocation)
        #expect(reply.headers[.contentSecurityPolicy]?.contains("script-src 'self'") == true, sourceLocation: sourceLocation)
        #expect(reply.headers[.contentSecurityPolicy]?.contains("frame-ancestors 'none'") == true, sourceLocation: sourceLocation)
        #expect(reply.headers[.xContentTypeOptions] == "nosniff", sourceLocation: sourceLocation)
        #expect(reply.headers[HTTPField.Name("X-Frame-Options")!] == "DENY", sourceLocation: sourceLocation)
        #expect(reply.headers[HTTPField.Name("Referrer-Policy")!] == "same-origin", sourceLocation: sourceLocation)
        #expect(!reply.raw.contains("<script>"), "no inline script (the CSP forbids it)", sourceLocation: sourceLocation)
    }

    @Test func catalogueAndProductPagesEscapeAndPage() async throws {
        let storefront = try await makeStorefront()
        try await storefront.test { client in
            let reply = try await client.call(.post, "/admin/products", body: #"""
                {"sku":"x1","name":"<script>alert(1)</script> & Mug","description":"\"quoted\"","priceMinor":123456,"currency":"KWD","stock":3}
                """#, admin: true)
            let id = try #require(reply.int("id"))
            for n in 0..<12 { _ = try await client.createProduct(sku: "filler-\(n)") }
            let first = try await client.call(.get, "/")
            Self.expectPage(first, .ok)
            #expect(first.raw.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Mug"))
            #expect(first.raw.contains("123.456 KWD"), "three decimals for KWD, from integer minor units")
            #expect(first.raw.components(separatedBy: "class=\"card\"").count - 1 == 12, "12 per page")
            let next = try #require(first.raw.range(of: #"href="/\?after=([^"]+)""#, options: .regularExpression).map { String(first.raw[$0]) })
            let cursor = next.dropFirst(#"href="/?after="#.count).dropLast()
            let second = try await client.call(.get, "/?after=\(cursor)")
            Self.expectPage(second, .ok)
            #expect(second.raw.components(separatedBy: "class=\"card\"").count - 1 == 1)
            #expect(second.raw.contains("First page") && !second.raw.contains("rel=\"next\""))
            let bad = try await client.call(.get, "/?after=nonsense")
            Self.expectPage(bad, .badRequest)
            let product = try await client.call(.get, "/shop/products/\(id)")
            Self.expectPage(product, .ok)
            #expect(product.raw.contains("Only 3 left") && product.raw.contains("&quot;quoted&quot;"))
            #expect(product.raw.contains(#"name="key" value="web-"#), "the form carries its intent's key")
            Self.expectPage(try await client.call(.get, "/shop/products/999"), .notFound)
            Self.expectPage(try await client.call(.get, "/shop/orders/999"), .notFound)
            Self.expectPage(try await client.call(.get, "/shop/orders/abc"), .badRequest)
        }
    }

    @Test func theFormBuysOncePerKeyAndShowsTheOrder() async throws {
        let storefront = try await makeStorefront()
        try await storefront.test { client in
            let id = try await client.createProduct(stock: 5)
            let bought = try await client.call(.post, "/shop/products/\(id)/buy", body: "key=web-form-1&qty=2", headers: Self.form)
            #expect(bought.status == .seeOther)
            let location = try #require(bought.headers[.location])
            #expect(location.hasPrefix("/shop/orders/"))
            // The same form posted again (a double click, a resubmit after a lost answer): the same purchase.
            let again = try await client.call(.post, "/shop/products/\(id)/buy", body: "key=web-form-1&qty=2", headers: Self.form)
            #expect(again.status == .seeOther && again.headers[.location] == location)
            #expect(try await client.call(.get, "/admin/products/\(id)", admin: true).int("available") == 3, "bought once")
            let order = try await client.call(.get, location)
            Self.expectPage(order, .ok)
            #expect(order.raw.contains("Confirmed") && order.raw.contains(#"data-terminal="true""#))
            for step in ["Purchase started", "Stock reserved", "Order created", "Payment", "Order confirmed"] {
                #expect(order.raw.contains(">\(step)<"), "timeline has \(step)")
            }
            #expect(!order.raw.contains("http-equiv=\"refresh\""), "a finished order does not refresh itself")
        }
    }

    @Test func formRefusalsAreDistinctPagesThatChangeNothing() async throws {
        let storefront = try await makeStorefront()
        try await storefront.test { client in
            let id = try await client.createProduct(stock: 2)
            let notNumber = try await client.call(.post, "/shop/products/\(id)/buy", body: "key=k1&qty=two", headers: Self.form)
            Self.expectPage(notNumber, .unprocessableContent)
            #expect(notNumber.raw.contains("Enter a quantity"))
            let zero = try await client.call(.post, "/shop/products/\(id)/buy", body: "key=k2&qty=0", headers: Self.form)
            Self.expectPage(zero, .unprocessableContent)
            #expect(zero.raw.contains("qty must be at least 1"))
            let tooMany = try await client.call(.post, "/shop/products/\(id)/buy", body: "key=k3&qty=3", headers: Self.form)
            Self.expectPage(tooMany, .conflict)
            #expect(tooMany.raw.contains("Not enough stock"))
            let badKey = try await client.call(.post, "/shop/products/\(id)/buy", body: "key=has%20space&qty=1", headers: Self.form)
            Self.expectPage(badKey, .unprocessableContent)
            let malformed = try await client.call(.post, "/shop/products/\(id)/buy", body: "key=%zz&qty=1", headers: Self.form)
            Self.expectPage(malformed, .badRequest)
            #expect(try await client.call(.get, "/admin/products/\(id)", admin: true).int("available") == 2, "nothing changed")

            storefront.gateway.setBehavior(.init(declineRate: 1))
            let declined = try await client.call(.post, "/shop/products/\(id)/buy", body: "key=k4&qty=1", headers: Self.form)
            Self.expectPage(declined, .init(code: 402))
            #expect(declined.raw.contains("declined") && declined.raw.contains("Nothing was charged"))
            #expect(!declined.raw.contains("value=\"k4\""), "a new key for the next attempt")
            let link = try #require(declined.raw.range(of: #"/shop/sagas/[0-9A-Fa-f-]+"#, options: .regularExpression).map { String(declined.raw[$0]) })
            let toOrder = try await client.call(.get, link)
            #expect(toOrder.status == .seeOther)
            let order = try await client.call(.get, try #require(toOrder.headers[.location]))
            #expect(order.raw.contains("your payment was declined") && order.raw.contains(">Stock released<"))
            #expect(try await client.call(.get, "/admin/products/\(id)", admin: true).int("available") == 2, "released")
            Self.expectPage(try await client.call(.get, "/shop/sagas/\(UUID())"), .notFound)

            let crossSite = try await client.call(.post, "/shop/products/\(id)/buy", body: "key=k6&qty=1",
                                                  headers: [.contentType: "application/x-www-form-urlencoded", .secFetchSite: "cross-site"])
            Self.expectPage(crossSite, .forbidden)
            let noKey = try await client.call(.post, "/shop/products/\(id)/buy", body: "qty=1", headers: Self.form)
            Self.expectPage(noKey, .unprocessableContent)
            #expect(try await client.call(.get, "/admin/products/\(id)", admin: true).int("available") == 2, "nothing bought")

            let huge = String(repeating: "a", count: 20_000)
            let tooLarge = try await client.call(.post, "/shop/products/\(id)/buy", body: "key=k5&qty=1&x=\(huge)", headers: Self.form)
            #expect(tooLarge.status == .contentTooLarge && tooLarge.headers[.connection] == "close")
        }
    }

    @Test func assetsAreServedWithTagsAndTypes() async throws {
        let storefront = try await makeStorefront()
        try await storefront.test { client in
            for (name, type) in [("shop.js", "text/javascript"), ("shop.css", "text/css"), ("favicon.svg", "image/svg+xml")] {
                let asset = try await client.call(.get, "/assets/\(name)")
                #expect(asset.status == .ok && asset.headers[.contentType]?.hasPrefix(type) == true)
                #expect(asset.headers[.xContentTypeOptions] == "nosniff")
                let tag = try #require(asset.headers[.eTag])
                let cached = try await client.call(.get, "/assets/\(name)", headers: [.ifNoneMatch: tag])
                #expect(cached.status == .notModified && cached.raw.isEmpty)
            }
            #expect(try await client.call(.get, "/assets/../Package.swift").status == .notFound)
            Self.expectPage(try await client.call(.get, "/assets/nope.js"), .notFound)
        }
    }
}
