import Foundation
import HTTPTypes
import HummingbirdTesting
import StorefrontApp
import StorefrontCore
@testable import StorefrontHTTP
import Testing

/// The operations console in-process: sign-in, the session cookie, CSRF on every write, the live status.
/// (Tests/browser/test_console.py drives the same pages in Chromium.)
@Suite("Operations console")
struct ConsolePageTests {
    static let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]

    /// Signs in; returns the `Cookie` header value and the session's CSRF token (read from a page).
    static func signIn(_ client: any TestClientProtocol) async throws -> (cookie: String, csrf: String) {
        let reply = try await client.call(.post, "/admin/sign-in", body: "token=\(adminToken)", headers: form)
        #expect(reply.status == .seeOther && reply.headers[.location] == "/admin/console")
        let setCookie = try #require(reply.headers[.setCookie])
        let cookie = String(try #require(setCookie.split(separator: ";").first))
        let page = try await client.call(.get, "/admin/console/products", headers: [.cookie: cookie])
        #expect(page.status == .ok, "\(page.raw)")
        let range = try #require(page.raw.range(of: #"name="csrf" value="[0-9a-f]{64}""#, options: .regularExpression))
        let csrf = String(page.raw[range].dropFirst(#"name="csrf" value=""#.count).dropLast())
        return (cookie, csrf)
    }

    @Test func signInIssuesAStrictHttpOnlyCookie() async throws {
        let storefront = try await makeStorefront()
        try await storefront.test { client in
            let noSession = try await client.call(.get, "/admin/console")
            #expect(noSession.status == .seeOther && noSession.headers[.location] == "/admin/sign-in")
            let page = try await client.call(.get, "/admin/sign-in")
            ShopPageTests.expectPageHeaders(page, .ok)
            #expect(page.raw.contains(#"type="password""#))
            let wrong = try await client.call(.post, "/admin/sign-in", body: "token=nope", headers: Self.form)
            ShopPageTests.expectPageHeaders(wrong, .unauthorized)
            #expect(wrong.headers[.setCookie] == nil && wrong.raw.contains("not right"))
            let right = try await client.call(.post, "/admin/sign-in", body: "token=\(adminToken)", headers: Self.form)
            let cookie = try #require(right.headers[.setCookie])
            for attribute in ["sf_admin=v1.", "Path=/admin", "HttpOnly", "SameSite=Strict", "Max-Age=28800"] {
                #expect(cookie.contains(attribute), "\(cookie)")
            }
            #expect(!cookie.contains("Secure"), "not over plain HTTP")
            let behindTLS = try await client.call(.post, "/admin/sign-in", body: "token=\(adminToken)",
                                                  headers: [.contentType: "application/x-www-form-urlencoded", .forwardedProto: "https"])
            #expect(behindTLS.headers[.setCookie]?.contains("; Secure") == true)
            let crossSite = try await client.call(.post, "/admin/sign-in", body: "token=\(adminToken)",
                                                  headers: [.contentType: "application/x-www-form-urlencoded", .secFetchSite: "cross-site"])
            #expect(crossSite.status == .forbidden && crossSite.headers[.setCookie] == nil)
        }
    }

    @Test func sessionsAreSignedAndExpire() {
        let session = AdminSession(adminToken: "a"), other = AdminSession(adminToken: "b")
        let now = Date()
        let cookie = session.issue(now: now)
        let nonce = session.verify(cookie, now: now)
        #expect(nonce != nil)
        #expect(other.verify(cookie, now: now) == nil, "another token's key")
        #expect(session.verify(cookie, now: now.addingTimeInterval(AdminSession.lifetime + 1)) == nil, "expired")
        var tampered = Array(cookie)
        tampered[5] = tampered[5] == "1" ? "2" : "1"  // the expiry
        #expect(session.verify(String(tampered), now: now) == nil)
        #expect(session.verify("v1.9999999999.00000000000000000000000000000000.00", now: now) == nil)
        let csrf = session.csrfToken(nonce: nonce!)
        #expect(session.verifyCSRF(csrf, nonce: nonce!))
        #expect(!session.verifyCSRF(csrf, nonce: String(repeating: "0", count: 32)), "bound to its session")
        #expect(!session.verifyCSRF(nil, nonce: nonce!))
    }

    @Test func everyConsoleWriteNeedsItsCSRFToken() async throws {
        let storefront = try await makeStorefront()
        try await storefront.test { client in
            let id = try await client.createProduct(stock: 5)
            let (cookie, csrf) = try await Self.signIn(client)
            var headers = Self.form
            headers[.cookie] = cookie
            let writes = ["/admin/console/products/\(id)/restock": "qty=5", "/admin/console/products/\(id)": "name=Changed",
                          "/admin/console/products": "sku=n1&name=N&priceMinor=100&currency=EUR&stock=1", "/admin/console/sign-out": ""]
            for (path, body) in writes {
                let missing = try await client.call(.post, path, body: body, headers: headers)
                #expect(missing.status == .forbidden, "\(path) without a CSRF token")
                let wrong = try await client.call(.post, path, body: body + "&csrf=\(String(repeating: "a", count: 64))", headers: headers)
                #expect(wrong.status == .forbidden, "\(path) with a wrong CSRF token")
                let noSession = try await client.call(.post, path, body: body + "&csrf=\(csrf)", headers: Self.form)
                #expect(noSession.status == .seeOther && noSession.headers[.location] == "/admin/sign-in", "\(path) without a session")
            }
            let product = try await client.call(.get, "/admin/products/\(id)", admin: true)
            #expect(product.int("available") == 5 && (product.json["name"] as? String) == "Mug", "nothing changed")
            #expect(try await client.call(.get, "/products?limit=100").raw.contains("n1") == false)

            let restock = try await client.call(.post, "/admin/console/products/\(id)/restock", body: "qty=5&back=list&csrf=\(csrf)", headers: headers)
            #expect(restock.status == .seeOther && restock.headers[.location] == "/admin/console/products")
            #expect(try await client.call(.get, "/products/\(id)").int("available") == 10, "the shop sees it")
            let crossSite = try await client.call(.post, "/admin/console/products/\(id)/restock", body: "qty=5&csrf=\(csrf)",
                                                  headers: [.contentType: "application/x-www-form-urlencoded", .cookie: cookie, .secFetchSite: "cross-site"])
            #expect(crossSite.status == .forbidden)
            let created = try await client.call(.post, "/admin/console/products",
                                                body: "sku=c-1&name=Created&description=&priceMinor=250&currency=EUR&stock=3&csrf=\(csrf)", headers: headers)
            #expect(created.status == .seeOther)
            let edited = try await client.call(.post, "/admin/console/products/\(id)", body: "name=Renamed&priceMinor=777&csrf=\(csrf)", headers: headers)
            #expect(edited.status == .seeOther)
            #expect(try await client.call(.get, "/products/\(id)").json["name"] as? String == "Renamed")
            let invalid = try await client.call(.post, "/admin/console/products", body: "sku=c-2&name=X&priceMinor=abc&currency=EUR&stock=1&csrf=\(csrf)",
                                                headers: headers)
            ShopPageTests.expectPageHeaders(invalid, .unprocessableContent)
            let duplicate = try await client.call(.post, "/admin/console/products", body: "sku=c-1&name=X&priceMinor=1&currency=EUR&stock=1&csrf=\(csrf)",
                                                  headers: headers)
            ShopPageTests.expectPageHeaders(duplicate, .conflict)
            let badRestock = try await client.call(.post, "/admin/console/products/\(id)/restock", body: "qty=-3&csrf=\(csrf)", headers: headers)
            ShopPageTests.expectPageHeaders(badRestock, .unprocessableContent)

            let signOut = try await client.call(.post, "/admin/console/sign-out", body: "csrf=\(csrf)", headers: headers)
            #expect(signOut.status == .seeOther && signOut.headers[.setCookie]?.contains("Max-Age=0") == true)
        }
    }

    @Test func theJSONAPIAcceptsTheSessionWithItsCSRFHeaderAndTheBearerToken() async throws {
        let storefront = try await makeStorefront()
        try await storefront.test { client in
            let id = try await client.createProduct(stock: 1)
            let (cookie, csrf) = try await Self.signIn(client)
            #expect(try await client.call(.get, "/admin/products/\(id)", headers: [.cookie: cookie]).status == .ok)
            let noHeader = try await client.call(.post, "/admin/products/\(id)/restock", body: #"{"qty":2}"#, headers: [.cookie: cookie])
            #expect(noHeader.status == .forbidden && noHeader.error == "csrf_failed")
            let withHeader = try await client.call(.post, "/admin/products/\(id)/restock", body: #"{"qty":2}"#, headers: [.cookie: cookie, .csrfToken: csrf])
            #expect(withHeader.status == .ok && withHeader.int("available") == 3)
            #expect(try await client.call(.post, "/admin/products/\(id)/restock", body: #"{"qty":2}"#, admin: true).int("available") == 5)
            let forged = try await client.call(.get, "/admin/products/\(id)", headers: [.cookie: "sf_admin=v1.99999999999.abc.def"])
            #expect(forged.status == .unauthorized)
        }
    }

    @Test func theStatusShowsChecksSagasOutboxAndOutcomes() async throws {
        let storefront = try await makeStorefront()
        try await storefront.test { client in
            let id = try await client.createProduct(stock: 1)
            #expect(try await client.purchase(id).status == .created)
            #expect(try await client.purchase(id).status == .conflict)
            let (cookie, _) = try await Self.signIn(client)
            let status = try await client.call(.get, "/admin/console/status", headers: [.cookie: cookie])
            #expect(status.status == .ok)
            #expect(status.json["ready"] as? String == "ready")
            let dependencies = try #require(status.json["dependencies"] as? [[String: Any]])
            #expect(dependencies.contains { $0["name"] as? String == "database" && $0["status"] as? String == "up" })
            let outbox = try #require(status.json["outbox"] as? [String: Any])
            #expect((outbox["unpublished"] as? Int ?? 0) >= 5, "no relay in this test: the purchase's events wait")
            #expect((outbox["latestEventId"] as? Int ?? 0) >= 5)
            let purchases = try #require(status.json["purchases"] as? [String: Int])
            // (the metrics are the process's: other tests' purchases count too)
            #expect((purchases["CONFIRMED"] ?? 0) >= 1 && (purchases["insufficient_stock"] ?? 0) >= 1, "\(purchases)")
            #expect(status.json["sagasInFlight"] as? Int == 0)
            let dashboard = try await client.call(.get, "/admin/console", headers: [.cookie: cookie])
            ShopPageTests.expectPageHeaders(dashboard, .ok)
            #expect(dashboard.raw.contains(">database<") && dashboard.raw.contains(#"data-outcome="CONFIRMED""#))
            // A bearer client (a script) gets the JSON, not the pages.
            #expect(try await client.call(.get, "/admin/console/status", admin: true).status == .ok)
            #expect(try await client.call(.get, "/admin/console", admin: true).status == .seeOther)
        }
    }

    /// The servers behind a check are listed with it; listing them is bounded by the check's timeout, and a
    /// check whose listing hangs is still reported (without rows).
    @Test func healthReportListsEachChecksServersWithinTheTimeout() async {
        struct Check: HealthCheckable {
            var name: String
            var hang: Bool
            var healthName: String { name }
            func checkHealth() async throws {}
            func healthNodes(checkError: (any Error)?) async -> [HealthNode] {
                if hang { try? await Task.sleep(for: .seconds(30)) }
                return [HealthNode(role: "primary", endpoint: "db:1", status: "up"), HealthNode(role: "replica", endpoint: "db:2", status: "degraded", lagSeconds: 7)]
            }
        }
        let start = ContinuousClock.now
        let checks = [Check(name: "listed", hang: false), Check(name: "hangs", hang: true)]
        #expect(await HealthController.report(checks, timeout: .milliseconds(300)).checks["listed"]?.nodes == nil, "only when asked for")
        let report = await HealthController.report(checks, timeout: .milliseconds(300), nodes: true)
        #expect(ContinuousClock.now - start < .seconds(10))
        #expect(report.status == "ready")
        #expect(report.checks["listed"]?.nodes?.map(\.endpoint) == ["db:1", "db:2"])
        #expect(report.checks["listed"]?.nodes?.last?.lagSeconds == 7)
        #expect(report.checks["hangs"]?.status == "up" && report.checks["hangs"]?.nodes == nil)
        #expect(report.checks["hangs"]?.nodesError?.contains("did not answer") == true, "\(String(describing: report.checks["hangs"]))")
    }

    /// Past the limit of failed sign-ins from one address, even the right token is refused (429 with
    /// Retry-After) until the window ends; the table stays bounded.
    @Test func repeatedWrongTokensAreThrottled() async throws {
        let throttle = SignInThrottle(limit: 3, window: .seconds(60), maxAddresses: 2)
        let start = ContinuousClock.now
        for _ in 0..<3 { #expect(throttle.admit("a", now: start) == nil) }
        #expect(throttle.admit("a", now: start + .seconds(1)) == 59, "the limit: counted before the token is compared")
        #expect(throttle.admit("b", now: start) == nil, "per address")
        #expect(throttle.admit("a", now: start + .seconds(61)) == nil, "the window ended")
        throttle.succeeded("b")
        #expect(throttle.addresses == 1, "a successful attempt is given back")
        for address in ["c", "d", "e"] { _ = throttle.admit(address, now: start + .seconds(62)) }
        #expect(throttle.addresses == 2, "the table stays bounded")
        // Concurrent attempts cannot slip past the limit together.
        let racing = SignInThrottle(limit: 5)
        let admitted = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<50 { group.addTask { racing.admit("x") == nil } }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(admitted == 5)

        let storefront = try await makeStorefront()
        try await storefront.test { client in
            var last: Reply?
            for _ in 0..<25 {
                last = try await client.call(.post, "/admin/sign-in", body: "token=wrong", headers: Self.form)
                if last?.status == .tooManyRequests { break }
            }
            let limited = try #require(last)
            ShopPageTests.expectPageHeaders(limited, .tooManyRequests)
            #expect(limited.headers[.retryAfter].flatMap(Int.init).map { (1...60).contains($0) } == true)
            #expect(limited.raw.contains("Too many wrong tokens"))
            let right = try await client.call(.post, "/admin/sign-in", body: "token=\(adminToken)", headers: Self.form)
            #expect(right.status == .tooManyRequests && right.headers[.setCookie] == nil, "no sign-in while throttled")
            // The bearer API is not affected.
            #expect(try await client.call(.get, "/admin/console/status", admin: true).status == .ok)
        }
    }

    @Test func withoutAnAdminTokenTheConsoleIsClosed() async throws {
        let storefront = try await makeStorefront { $0.adminToken = nil }
        try await storefront.test { client in
            let page = try await client.call(.get, "/admin/sign-in")
            #expect(page.status == .ok && page.raw.contains("disabled"))
            let attempt = try await client.call(.post, "/admin/sign-in", body: "token=", headers: Self.form)
            #expect(attempt.status == .unauthorized && attempt.headers[.setCookie] == nil)
            #expect(try await client.call(.get, "/admin/console").status == .unauthorized)
        }
    }
}
