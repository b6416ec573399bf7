import Foundation
import Hummingbird
import Prometheus
import StorefrontCore

/// `/admin/…`: catalogue writes (primary) and the outbox view. Bearer token required; no token configured →
/// every admin call is 401.
struct AdminController {
    let catalog: CatalogService
    let orders: OrderService
    let operations: SagaOperations
    let paymentSimulator: SimulatedPaymentGateway?
    let adminToken: String?
    let maxBodyBytes: Int
    let sagas: any SagaStore
    let outbox: any OutboxStore
    let health: [any HealthCheckable]
    let metrics: PrometheusCollectorRegistry

    func addRoutes(to router: Router<AppRequestContext>) {
        // One session key for the middleware and the console (deriving it hashes the token).
        let session = adminToken.flatMap { $0.isEmpty ? nil : AdminSession(adminToken: $0) }
        let admin = router.group("/admin").add(middleware: BearerTokenMiddleware(token: adminToken, session: session))
        AdminConsoleController(catalog: catalog, operations: operations, sagas: sagas, outbox: outbox, health: health, metrics: metrics,
                               adminToken: adminToken, session: session, maxBodyBytes: maxBodyBytes)
            .addRoutes(to: router, admin: admin)
        admin.post("/products") { request, context in
            let body = try await request.decodeJSON(as: NewProductBody.self, limit: maxBodyBytes, context: context)
            let product = try await catalog.create(body.model)
            return try jsonResponse(ProductDTO(product), status: .created, headers: [.location: "/products/\(product.id)"])
        }
        admin.get("/products/:id") { _, context in
            try jsonResponse(AdminProductDTO(try await catalog.productOnPrimary(id: try context.positiveID())))
        }
        admin.put("/products/:id") { request, context in
            let id = try context.positiveID()
            let body = try await request.decodeJSON(as: ProductUpdateBody.self, limit: maxBodyBytes, context: context)
            return try jsonResponse(ProductDTO(try await catalog.update(id: id, body.model)))
        }
        admin.post("/products/:id/restock") { request, context in
            let id = try context.positiveID()
            let body = try await request.decodeJSON(as: RestockBody.self, limit: maxBodyBytes, context: context)
            return try jsonResponse(ProductDTO(try await catalog.restock(id: id, qty: body.qty)))
        }
        admin.get("/sagas") { request, _ in
            let query = request.uri.queryParameters
            let state = query.get("state") ?? "unfinished"
            guard state == "unfinished" || state == "needs_attention" else {
                throw APIError.invalidParameter("state must be unfinished or needs_attention")
            }
            let limit = try query.get("limit").map { raw -> Int in
                guard let v = Int(raw), (1...1000).contains(v) else { throw APIError.invalidParameter("limit must be between 1 and 1000") }
                return v
            } ?? 100
            let sagas = try await operations.list(needingAttention: state == "needs_attention", limit: limit)
            return try jsonResponse(SagaListDTO(items: sagas.map(SagaListDTO.Item.init)))
        }
        // An operator's way out for a saga recovery gave up on (docs/saga.md "Sagas that need a person").
        admin.post("/sagas/:id/retry") { request, context in
            try jsonResponse(SagaListDTO.Item(try await operations.retry(try context.sagaID(), force: try request.forceFlag())))
        }
        admin.post("/sagas/:id/resolve") { request, context in
            try jsonResponse(SagaListDTO.Item(try await operations.resolve(try context.sagaID(), force: try request.forceFlag())))
        }
        // The simulated payment provider's behaviour on this server (development, drills, the nemesis).
        admin.get("/payment-simulator") { _, _ in
            guard let paymentSimulator else { throw APIError(status: .notFound, code: "not_found", message: "no simulated payment provider") }
            return try jsonResponse(PaymentSimulatorBody(paymentSimulator.behavior))
        }
        admin.put("/payment-simulator") { request, context in
            guard let paymentSimulator else { throw APIError(status: .notFound, code: "not_found", message: "no simulated payment provider") }
            let body = try await request.decodeJSON(as: PaymentSimulatorBody.self, limit: maxBodyBytes, context: context)
            paymentSimulator.setBehavior(try body.behavior())
            context.logger.notice("payment simulator changed", metadata: ["behavior": "\(paymentSimulator.behavior)"])
            return try jsonResponse(PaymentSimulatorBody(paymentSimulator.behavior))
        }
        admin.get("/events") { request, _ in
            let query = request.uri.queryParameters
            let after = try query.get("after").map { raw -> Int64 in
                guard let v = Int64(raw), v >= 0 else { throw APIError.invalidParameter("after must be a non-negative integer") }
                return v
            } ?? 0
            let limit = try query.get("limit").map { raw -> Int in
                guard let v = Int(raw), (1...1000).contains(v) else { throw APIError.invalidParameter("limit must be between 1 and 1000") }
                return v
            } ?? 100
            let sagaId = try query.get("sagaId").map { raw -> UUID in
                guard let id = UUID(uuidString: raw) else { throw APIError.invalidParameter("sagaId must be a UUID") }
                return id
            }
            let records = try await orders.events(after: after, limit: limit, sagaId: sagaId)
            let items = try records.map { EventPageDTO.Item(id: $0.id, published: $0.publishedAt != nil, event: try SagaEvent.decode($0.payload)) }
            return try jsonResponse(EventPageDTO(items: items, next: records.count == limit ? records.last?.id : nil))
        }
    }
}

/// Admin authentication: `Authorization: Bearer <token>` (scripts), checked in constant time, or the operations
/// console's session cookie (AdminSession). A cookie-authenticated write to the JSON API must carry the
/// session's CSRF token in `X-CSRF-Token`; the console's own forms (`/admin/console/…`) check theirs in the
/// form. A browser asking for a console page without a session is sent to the sign-in page.
struct BearerTokenMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let token: String?
    let session: AdminSession?

    init(token: String?, session: AdminSession?) {
        self.token = token
        self.session = session
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token, !token.isEmpty, let session else {
            throw APIError(status: .unauthorized, code: "unauthorized", message: "admin endpoints are disabled: STOREFRONT_ADMIN_TOKEN is not set")
        }
        if let header = request.headers[.authorization] {
            guard header.hasPrefix("Bearer "), Self.constantTimeEqual(Array(header.dropFirst(7).utf8), Array(token.utf8)) else {
                throw StorefrontError.unauthorized
            }
            return try await next(request, context)
        }
        let path = request.uri.path
        let isConsole = path == "/admin/console" || path.hasPrefix("/admin/console/")
        if let nonce = session.session(in: request.headers) {
            if request.method != .get, request.method != .head, !isConsole,
               !session.verifyCSRF(request.headers[.csrfToken], nonce: nonce) {
                throw APIError(status: .forbidden, code: "csrf_failed", message: "a console session's write needs its X-CSRF-Token")
            }
            var context = context
            context.adminSessionNonce = nonce
            return try await next(request, context)
        }
        if isConsole {
            // A browser without a (valid) session: to the sign-in page, dropping a stale cookie. A console form
            // posted after the session expired changes nothing.
            return Response(status: .seeOther, headers: [.location: "/admin/sign-in", .cacheControl: "no-store",
                                                          .setCookie: AdminSession.setCookie(nil, secure: AdminSession.overTLS(request.headers))])
        }
        throw StorefrontError.unauthorized
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        // Every byte of the longer input is looked at, whatever matches, so timing says nothing about content.
        var diff = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) {
            diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return diff == 0
    }
}
