import Foundation
import Hummingbird
import Prometheus
import StorefrontCore

/// The operations console (`/admin/sign-in`, `/admin/console/…`): sign-in with the admin token for a session
/// cookie, the live view of the system, and the catalogue's create / edit / restock over the same services
/// as the admin API. Every form that writes carries the session's CSRF token (checked here); the bearer
/// token keeps working for the JSON API. See docs/web.md.
struct AdminConsoleController {
    let catalog: CatalogService
    let operations: SagaOperations
    let sagas: any SagaStore
    let outbox: any OutboxStore
    let health: [any HealthCheckable]
    let metrics: PrometheusCollectorRegistry
    let adminToken: String?
    /// The session key, derived once from the admin token (nil: no token, the console is closed).
    let session: AdminSession?
    let maxBodyBytes: Int
    var throttle = SignInThrottle()

    func addRoutes(to router: Router<AppRequestContext>, admin: RouterGroup<AppRequestContext>) {
        router.get("/admin/sign-in") { request, _ in
            if let session, session.session(in: request.headers) != nil {
                return Response(status: .seeOther, headers: [.location: "/admin/console"])
            }
            return signInPage(message: adminToken?.isEmpty == false ? nil : "The console is disabled: STOREFRONT_ADMIN_TOKEN is not set.")
        }
        router.post("/admin/sign-in") { request, context in
            if let refused = WebPage.refuseCrossSite(request) { return refused }
            let client = context.clientAddress(request)
            var logger = context.logger
            logger[metadataKey: "client"] = "\(client)"
            if let wait = throttle.admit(client) {
                logger.warning("console sign-in refused: too many failed attempts from this address")
                var response = signInPage(message: "Too many wrong tokens from this address. Try again in \(wait) seconds.", status: .tooManyRequests)
                response.headers[.retryAfter] = String(wait)
                return response
            }
            let form = try await request.decodeForm(limit: maxBodyBytes, context: context)
            guard let session, let token = adminToken, let given = form["token"],
                  BearerTokenMiddleware.constantTimeEqual(Array(given.utf8), Array(token.utf8))
            else {
                logger.notice("console sign-in refused: wrong token")
                return signInPage(message: "That token is not right.", status: .unauthorized)
            }
            throttle.succeeded(client)
            logger.notice("console sign-in")
            return Response(status: .seeOther, headers: [
                .location: "/admin/console", .setCookie: AdminSession.setCookie(session.issue(), secure: AdminSession.overTLS(request.headers)),
                .cacheControl: "no-store",
            ])
        }

        admin.get("/console") { _, context in
            try await page(context) { nonce in
                let status = await snapshot()
                return consolePage("Dashboard", nonce: nonce, WebTemplates.render("console-dashboard", status.templateObject))
            }
        }
        admin.get("/console/status") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                     body: .init(byteBuffer: ByteBuffer(data: try JSONEncoder().encode(await snapshot()))))
        }
        admin.post("/console/sign-out") { request, context in
            try await write(request, context) { _, _ in
                Response(status: .seeOther, headers: [.location: "/admin/sign-in",
                                                      .setCookie: AdminSession.setCookie(nil, secure: AdminSession.overTLS(request.headers))])
            }
        }
        admin.get("/console/products") { request, context in
            try await page(context) { nonce in
                let after = try request.uri.queryParameters.get("after").map { try Cursor.decode($0) }
                return try await productsPage(nonce: nonce, after: after)
            }
        }
        admin.get("/console/products/new") { _, context in
            try await page(context) { nonce in
                consolePage("New product", nonce: nonce, "<h1>New product</h1>\n" + productForm(nonce: nonce, values: ["currency": "EUR", "stock": "0"]))
            }
        }
        admin.post("/console/products") { request, context in
            try await write(request, context) { form, nonce in
                do {
                    let product = try await catalog.create(NewProduct(
                        sku: form["sku"] ?? "", name: form["name"] ?? "", description: form["description"] ?? "",
                        priceMinor: try Self.integer(form["priceMinor"], "Price"), currency: form["currency"] ?? "",
                        stock: try Self.integer(form["stock"], "Stock")))
                    context.logger.notice("console: product created", metadata: ["product": "\(product.id)", "sku": "\(product.sku)"])
                    return Response(status: .seeOther, headers: [.location: "/admin/console/products/\(product.id)?saved=created"])
                } catch let error as StorefrontError {
                    return consolePage("New product", nonce: nonce, "<h1>New product</h1>\n" + productForm(nonce: nonce, values: form, message: error.message),
                                       status: APIError.status(of: error))
                }
            }
        }
        admin.get("/console/products/:id") { request, context in
            try await page(context) { nonce in
                let notice: String? = switch request.uri.queryParameters.get("saved") {
                case "created": "Saved: the product was created."
                case "updated": "Saved: the changes are live."
                case "restocked": "Saved: the units were added."
                default: nil
                }
                return try await editPage(try context.positiveID(), nonce: nonce, notice: notice)
            }
        }
        admin.post("/console/products/:id") { request, context in
            try await write(request, context) { form, nonce in
                let id = try context.positiveID()
                do {
                    _ = try await catalog.update(id: id, ProductUpdate(
                        sku: form["sku"], name: form["name"], description: form["description"],
                        priceMinor: try form["priceMinor"].map { try Self.integer($0, "Price") }, currency: form["currency"]))
                    context.logger.notice("console: product updated", metadata: ["product": "\(id)"])
                    return Response(status: .seeOther, headers: [.location: "/admin/console/products/\(id)?saved=updated"])
                } catch let error as StorefrontError where APIError.status(of: error).code < 500 && error != .productNotFound(id) {
                    return try await editPage(id, nonce: nonce, values: form, error: error.message, status: APIError.status(of: error))
                }
            }
        }
        admin.post("/console/products/:id/restock") { request, context in
            try await write(request, context) { form, nonce in
                let id = try context.positiveID()
                do {
                    let qty = try Self.integer(form["qty"], "Quantity")
                    let product = try await catalog.restock(id: id, qty: qty)
                    context.logger.notice("console: restocked", metadata: ["product": "\(id)", "qty": "\(qty)", "available": "\(product.available)"])
                    let back = form["back"] == "list" ? "/admin/console/products" : "/admin/console/products/\(id)?saved=restocked"
                    return Response(status: .seeOther, headers: [.location: back])
                } catch let error as StorefrontError where APIError.status(of: error).code < 500 && error != .productNotFound(id) {
                    return try await editPage(id, nonce: nonce, error: error.message, status: APIError.status(of: error))
                }
            }
        }
    }

    // MARK: the live view

    /// What the dashboard shows, from the same sources as `/health/ready` (the checks), `/metrics` (purchase
    /// outcomes) and the admin API (sagas, outbox).
    struct Status: Encodable {
        struct Dependency: Encodable {
            var name: String
            var status: String
            var latencyMs: Int
            var error: String?
        }

        /// One server behind a check (database primary and replicas with their lag, Redis nodes).
        struct Server: Encodable {
            var check: String
            var role: String
            var endpoint: String
            var status: String
            var lagSeconds: Int?
            var detail: String?
        }

        struct Outbox: Encodable {
            var unpublished: Int
            var capped: Bool
            var oldestAgeSeconds: Int?
            var latestEventId: Int64?
        }

        var at: String
        var ready: String
        var dependencies: [Dependency]
        var servers: [Server]
        /// This process (a new id after a restart): the dashboard's per-minute figures restart when it changes.
        var server: String
        var sagasInFlight: Int
        var needingAttention: [SagaListDTO.Item]
        var outbox: Outbox
        /// `storefront_purchases_total` by outcome, as this server's `/metrics` counts them since it started.
        var purchases: [String: Int]
        var problems: [String]

        static func statusClass(_ status: String) -> String { status == "up" ? "ok" : status == "down" ? "bad" : "warn" }

        var templateObject: [String: Any] {
            WebTemplates.object([
                "at": at, "ready": ready, "readyClass": ready == "ready" ? "ok" : "bad",
                "dependencies": dependencies.map { d in
                    WebTemplates.object(["name": d.name, "status": d.status, "statusClass": Self.statusClass(d.status),
                                         "latencyMs": d.latencyMs, "error": d.error])
                },
                "servers": servers.map { n in
                    WebTemplates.object(["check": n.check, "role": n.role, "endpoint": n.endpoint, "status": n.status,
                                         "statusClass": Self.statusClass(n.status), "lag": n.lagSeconds.map { "\($0) s" } ?? "—", "detail": n.detail])
                },
                "sagasInFlight": sagasInFlight,
                "attentionCount": needingAttention.count,
                "needingAttention": needingAttention.map { s in
                    WebTemplates.object(["id": s.id, "state": s.state, "productId": s.productId, "attempts": s.attempts, "lastError": s.lastError])
                },
                "outboxUnpublished": outbox.capped ? "\(outbox.unpublished)+" : String(outbox.unpublished),
                "outboxOldest": outbox.oldestAgeSeconds.map { "\($0) s" } ?? "—",
                "latestEventId": outbox.latestEventId ?? 0,
                "purchases": purchases.sorted { $0.key < $1.key }.map { ["outcome": $0.key, "count": $0.value] as [String: Any] },
                "problems": problems,
            ])
        }
    }

    static let outboxCap = 10_000
    static let serverID = String(UUID().uuidString.lowercased().prefix(8))

    func snapshot() async -> Status {
        let now = Date()
        async let report = HealthController.report(health, nodes: true)
        var problems: [String] = []
        var inFlight = 0, attention: [Saga] = []
        var backlog = OutboxBacklog(count: 0, oldestCreatedAt: nil, latestId: nil)
        do { inFlight = try await sagas.countUnfinished() } catch { problems.append("sagas: \(error)") }
        do { attention = try await operations.list(needingAttention: true, limit: 50) } catch { problems.append("sagas needing attention: \(error)") }
        do { backlog = try await outbox.backlog(cap: Self.outboxCap + 1) } catch { problems.append("outbox: \(error)") }
        let health = await report
        let checks = health.checks.sorted { $0.key < $1.key }
        return Status(
            at: Timestamp.rfc3339(now), ready: health.status,
            dependencies: checks.map { Status.Dependency(name: $0.key, status: $0.value.status, latencyMs: $0.value.latencyMs, error: $0.value.error) },
            servers: checks.flatMap { name, check in
                (check.nodes ?? []).map { Status.Server(check: name, role: $0.role, endpoint: $0.endpoint, status: $0.status, lagSeconds: $0.lagSeconds, detail: $0.detail) }
                    + (check.nodesError.map { [Status.Server(check: name, role: "—", endpoint: "not listed", status: "unknown", lagSeconds: nil, detail: $0)] } ?? [])
            },
            server: Self.serverID, sagasInFlight: inFlight,
            needingAttention: attention.map(SagaListDTO.Item.init),
            outbox: .init(unpublished: min(backlog.count, Self.outboxCap), capped: backlog.count > Self.outboxCap,
                          oldestAgeSeconds: backlog.oldestCreatedAt.map { max(0, Int(now.timeIntervalSince($0))) }, latestEventId: backlog.latestId),
            purchases: Self.purchaseOutcomes(metrics), problems: problems)
    }

    /// `storefront_purchases_total{outcome="…"} N` lines of this server's metrics.
    static func purchaseOutcomes(_ registry: PrometheusCollectorRegistry) -> [String: Int] {
        var outcomes: [String: Int] = [:]
        let prefix = #"storefront_purchases_total{outcome=""#
        for line in String(decoding: registry.emitToBuffer(), as: UTF8.self).split(separator: "\n") where line.hasPrefix(prefix) {
            let rest = line.dropFirst(prefix.count)
            guard let quote = rest.firstIndex(of: "\""), let space = rest.lastIndex(of: " "),
                  let value = Double(rest[rest.index(after: space)...]) else { continue }
            outcomes[String(rest[..<quote]), default: 0] += Int(value)
        }
        return outcomes
    }

    // MARK: pages

    func productsPage(nonce: String, after: Int64?) async throws -> Response {
        let result = try await catalog.list(after: after, limit: 20)
        let csrf = session?.csrfToken(nonce: nonce) ?? ""
        let rows = result.items.map { p in
            ["id": p.id, "sku": p.sku, "name": p.name, "price": Money.format(minor: p.priceMinor, currency: p.currency),
             "available": max(p.available, 0), "csrf": csrf] as [String: Any]
        }
        let body = WebTemplates.render("console-products", WebTemplates.object([
            "items": rows, "next": result.next.map(Cursor.encode), "first": after != nil,
        ]))
        return consolePage("Products", nonce: nonce, body)
    }

    func editPage(_ id: Int64, nonce: String, values: [String: String]? = nil, notice: String? = nil, error: String? = nil,
                  status: HTTPResponse.Status = .ok) async throws -> Response {
        let (product, held) = try await catalog.productOnPrimary(id: id)
        let current = values ?? ["sku": product.sku, "name": product.name, "description": product.description,
                                 "priceMinor": String(product.priceMinor), "currency": product.currency]
        let body = WebTemplates.render("console-product", WebTemplates.object([
            "id": id, "name": product.name, "price": Money.format(minor: product.priceMinor, currency: product.currency),
            "available": max(product.available, 0), "held": held, "onHand": product.stock + held, "version": product.version,
            "csrf": session?.csrfToken(nonce: nonce) ?? "", "notice": notice, "error": error,
            "form": productForm(nonce: nonce, values: current, action: "/admin/console/products/\(id)", editing: true),
        ]))
        return consolePage(product.name, nonce: nonce, body, status: status)
    }

    func productForm(nonce: String, values: [String: String], message: String? = nil, action: String = "/admin/console/products",
                     editing: Bool = false) -> String {
        WebTemplates.render("console-product-form", WebTemplates.object([
            "action": action, "csrf": session?.csrfToken(nonce: nonce) ?? "", "message": message, "editing": editing,
            "sku": values["sku"] ?? "", "name": values["name"] ?? "", "description": values["description"] ?? "",
            "priceMinor": values["priceMinor"] ?? "", "currency": values["currency"] ?? "", "stock": values["stock"] ?? "0",
        ]))
    }

    func signInPage(message: String? = nil, status: HTTPResponse.Status = .ok) -> Response {
        let body = WebTemplates.render("console-sign-in", WebTemplates.object(["message": message]))
        return layout("Sign in", body, status: status)
    }

    func consolePage(_ title: String, nonce: String, _ body: String, status: HTTPResponse.Status = .ok) -> Response {
        layout(title, body, status: status, signedIn: true, csrf: session?.csrfToken(nonce: nonce))
    }

    /// A console page in the console's layout (its navigation and sign-out form only for a session).
    func layout(_ title: String, _ body: String, status: HTTPResponse.Status, signedIn: Bool = false, csrf: String? = nil) -> Response {
        WebPage.response(WebTemplates.render("console-layout", WebTemplates.object([
            "site": "Storefront operations", "title": title, "body": body, "signedIn": signedIn && csrf != nil, "csrf": csrf,
        ])), status: status)
    }

    /// A console page: needs a session (the bearer token is for the JSON API); failures become HTML pages.
    func page(_ context: AppRequestContext, _ body: (String) async throws -> Response) async throws -> Response {
        guard let nonce = context.adminSessionNonce else {
            return Response(status: .seeOther, headers: [.location: "/admin/sign-in"])
        }
        do {
            return try await body(nonce)
        } catch {
            return problem(error, context)
        }
    }

    /// A console form that writes: the session's CSRF token must be in the form, or nothing happens (403).
    func write(_ request: Request, _ context: AppRequestContext, _ body: ([String: String], String) async throws -> Response) async throws -> Response {
        guard let nonce = context.adminSessionNonce, let session else {
            throw APIError(status: .forbidden, code: "session_required", message: "console forms need a console session (sign in at /admin/sign-in)")
        }
        if let refused = WebPage.refuseCrossSite(request) { return refused }
        let form = try await request.decodeForm(limit: maxBodyBytes, context: context)
        guard session.verifyCSRF(form["csrf"], nonce: nonce) else {
            context.logger.notice("console write refused: CSRF token missing or wrong", metadata: ["path": "\(request.uri.path)"])
            let page = WebTemplates.render("problem", ["heading": "Refused", "message": "This form has expired or did not come from the console. Reload the page and try again."])
            return layout("Refused", page, status: .forbidden)
        }
        do {
            return try await body(form, nonce)
        } catch {
            return problem(error, context)
        }
    }

    func problem(_ error: any Error, _ context: AppRequestContext) -> Response {
        let api = APIError(error)
        if api.status.code >= 500 { context.logger.error("console page failed", metadata: ["error": "\(error)"]) }
        let message = api.code == "internal_error" ? "Something went wrong (request \(context.id)); see the server log." : api.message
        let page = WebTemplates.render("problem", ["heading": api.status.code == 404 ? "Not found" : "That did not work", "message": message])
        var response = layout("Error", page, status: api.status, signedIn: true,
                              csrf: context.adminSessionNonce.flatMap { nonce in session?.csrfToken(nonce: nonce) })
        if let seconds = api.retryAfterSeconds { response.headers[.retryAfter] = String(seconds) }
        return response
    }

    static func integer(_ text: String?, _ field: String) throws -> Int64 {
        guard let text, let value = Int64(text.trimmingCharacters(in: .whitespaces)) else {
            throw StorefrontError.validation("\(field) must be a whole number")
        }
        return value
    }
}
