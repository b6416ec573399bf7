import Foundation
import Hummingbird
import StorefrontCore

/// The shop people use in a browser: `GET /` (catalogue), `GET /shop/products/{id}`, the buy form
/// (`POST /shop/products/{id}/buy`), `GET /shop/orders/{id}` (the order and its saga timeline) and
/// `GET /shop/sagas/{id}` (to a saga's order). Server-rendered HTML over the same services as the JSON API;
/// `/assets/shop.js` only enhances (see WebAssets). Errors are HTML pages here, not the JSON envelope.
struct ShopController {
    let catalog: CatalogService
    let purchases: PurchaseService
    let orders: OrderService
    let maxBodyBytes: Int
    static let pageSize = 12

    func addRoutes(to router: Router<AppRequestContext>) {
        router.get("/") { request, context in
            try await page(context) {
                let after = try request.uri.queryParameters.get("after").map { try Cursor.decode($0) }
                let result = try await catalog.list(after: after, limit: Self.pageSize)
                let items = result.items.map(ProductView.init)
                let body = WebTemplates.render("catalogue", WebTemplates.object([
                    "items": items, "next": result.next.map(Cursor.encode), "first": after != nil,
                ]))
                return html(title: "Catalogue", body)
            }
        }
        router.get("/shop/products/:id") { _, context in
            try await page(context) {
                let product = try await catalog.product(id: try context.positiveID())
                return html(title: product.name, productPage(product))
            }
        }
        router.post("/shop/products/:id/buy") { request, context in
            try await page(context) {
                let id = try context.positiveID()
                if let refused = WebPage.refuseCrossSite(request) { return refused }
                let form = try await request.decodeForm(limit: maxBodyBytes, context: context)
                return try await buy(id, form: form, context: context)
            }
        }
        router.get("/shop/orders/:id") { _, context in
            try await page(context) {
                let view = try await orders.order(id: try context.positiveID())
                let order = OrderPage(view)
                return html(title: "Order \(view.order.id)", WebTemplates.render("order", order), refreshSeconds: order.terminal ? nil : 2)
            }
        }
        router.get("/shop/sagas/:id") { _, context in
            try await page(context) {
                guard let orderId = try await orders.orderId(sagaId: try context.sagaID()) else {
                    return problem(.notFound, "No order", "That purchase did not get as far as creating an order, so nothing was charged.")
                }
                return Response(status: .seeOther, headers: [.location: "/shop/orders/\(orderId)"])
            }
        }
        router.get("/assets/:name") { request, context in
            guard let name = context.parameters.get("name"), let asset = WebAssets.all[name] else {
                return problem(.notFound, "Not found", "There is no such file.")
            }
            var headers = WebPage.securityHeaders
            headers[.contentType] = asset.contentType
            headers[.eTag] = asset.etag
            headers[.cacheControl] = "public, max-age=300"
            if request.headers[.ifNoneMatch] == asset.etag { return Response(status: .notModified, headers: headers) }
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: asset.body)))
        }
    }

    /// The form's purchase (the no-JavaScript path; the script calls `POST /purchase` itself). The form carries
    /// its intent's Idempotency-Key, so a resubmitted form retries the same purchase, never a second one.
    func buy(_ id: Int64, form: [String: String], context: AppRequestContext) async throws -> Response {
        guard let qty = form["qty"].flatMap({ Int64($0.trimmingCharacters(in: .whitespaces)) }) else {
            return try await productPage(id, status: .unprocessableContent, message: "Enter a quantity (a whole number).", qty: form["qty"])
        }
        guard let key = form["key"], !key.isEmpty else {
            return try await productPage(id, status: .unprocessableContent, message: "This form has expired. Press Buy again.", qty: String(qty))
        }
        do {
            let result = try await purchases.purchase(PurchaseRequest(productId: id, qty: qty, idempotencyKey: key))
            context.logger.info("purchase (shop form)", metadata: ["saga": "\(result.saga.id)", "product": "\(id)", "qty": "\(qty)",
                                                                   "state": "\(result.saga.state.rawValue)", "replayed": "\(result.replayed)"])
            guard let orderId = result.saga.orderId else { throw StorefrontError.purchaseFailed(sagaId: result.saga.id, reason: "no order") }
            return Response(status: .seeOther, headers: [.location: "/shop/orders/\(orderId)"])
        } catch let error as StorefrontError {
            let status = APIError.status(of: error)
            switch error {
            case .productBusy, .unavailable:
                // Same key: pressing Buy again retries this purchase.
                return try await productPage(id, status: status, message: "Busy — many people are buying this right now. Press Buy again in a moment.",
                                             kind: "busy", key: key, qty: String(qty))
            case .insufficientStock:
                return try await productPage(id, status: status, message: "Not enough stock left for that quantity.", qty: String(qty))
            case .paymentDeclined(let saga, _):
                return try await productPage(id, status: status, message: "Your payment was declined. Nothing was charged, and the units were put back.",
                                             timeline: "/shop/sagas/\(saga)", qty: String(qty))
            case .paymentUnavailable(let saga):
                return try await productPage(id, status: status, message: "The payment service could not be reached. Nothing was charged; you can try again.",
                                             timeline: "/shop/sagas/\(saga)", qty: String(qty))
            case .purchaseFailed(let saga, _):
                return try await productPage(id, status: status, message: "The purchase could not be completed and was undone. Nothing was charged.",
                                             timeline: "/shop/sagas/\(saga)", qty: String(qty))
            case .validation(let message):
                return try await productPage(id, status: status, message: message, key: key, qty: String(qty))
            case .idempotencyKeyReused:
                return try await productPage(id, status: status, message: "This form was already used for another quantity. Press Buy again.",
                                             qty: String(qty))
            case .productNotFound:
                throw error
            default:
                return try await unknownOutcome(id, status: status, key: key, qty: qty, context: context, error: error)
            }
        } catch {
            return try await unknownOutcome(id, status: .internalServerError, key: key, qty: qty, context: context, error: error)
        }
    }

    /// We cannot say how the purchase ended: the page keeps the form's key, so Buy retries this purchase and
    /// never buys twice.
    func unknownOutcome(_ id: Int64, status: HTTPResponse.Status, key: String, qty: Int64, context: AppRequestContext,
                        error: any Error) async throws -> Response {
        context.logger.warning("purchase (shop form) outcome unknown", metadata: ["product": "\(id)", "error": "\(error)"])
        return try await productPage(id, status: status, message: "We could not confirm your purchase. Press Buy again: it retries this same purchase, it never buys twice.",
                                     key: key, qty: String(qty))
    }

    func productPage(_ id: Int64, status: HTTPResponse.Status, message: String, kind: String = "error", timeline: String? = nil,
                     key: String? = nil, qty: String? = nil) async throws -> Response {
        let product = try await catalog.product(id: id)
        return html(title: product.name, productPage(product, message: message, kind: kind, timeline: timeline, key: key, qty: qty), status: status)
    }

    func productPage(_ product: Product, message: String? = nil, kind: String = "", timeline: String? = nil, key: String? = nil,
                     qty: String? = nil) -> String {
        let view = ProductView(product)
        let object = WebTemplates.object([
            "id": view.id, "name": view.name, "sku": product.sku, "description": product.description, "price": view.price,
            "availability": view.availability, "availabilityClass": view.availabilityClass, "soldOut": product.available <= 0,
            "maxQty": purchases.settings.maxQty, "qty": qty ?? "1", "key": key ?? "web-" + UUID().uuidString.lowercased(),
            "message": message, "messageClass": message == nil ? "" : kind, "timeline": timeline,
        ])
        return WebTemplates.render("product", object)
    }

    /// Runs a page handler; a failure becomes an HTML page with the status the JSON API would have given.
    func page(_ context: AppRequestContext, _ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch {
            let api = APIError(error)
            if api.status.code >= 500 {
                context.logger.error("page failed", metadata: ["error": "\(error)"])
            }
            let heading = switch api.status.code {
            case 404: "Not found"
            case 400..<500: "That did not work"
            default: "Something went wrong on our side"
            }
            let message = api.status.code >= 500 && api.code == "internal_error"
                ? "Please try again in a moment. (Request \(context.id))" : api.message
            var response = problem(api.status, heading, message)
            if let seconds = api.retryAfterSeconds { response.headers[.retryAfter] = String(seconds) }
            // The rest of an oversized body was not read: the connection cannot be reused.
            if api.status == .contentTooLarge { response.headers[.connection] = "close" }
            return response
        }
    }

    func problem(_ status: HTTPResponse.Status, _ heading: String, _ message: String) -> Response {
        html(title: heading, WebTemplates.render("problem", ["heading": heading, "message": message]), status: status)
    }

    func html(title: String, _ body: String, status: HTTPResponse.Status = .ok, refreshSeconds: Int? = nil) -> Response {
        WebPage.response(WebTemplates.render("layout", WebTemplates.object(["title": title, "site": "Storefront", "body": body, "refreshSeconds": refreshSeconds])), status: status)
    }
}

/// Headers every page and asset carries.
enum WebPage {
    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy: "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
            + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        .xContentTypeOptions: "nosniff",
        .referrerPolicy: "same-origin",
        .xFrameOptions: "DENY",
    ]

    /// A form posted from another site (`Sec-Fetch-Site: cross-site` or `same-site`): refused, 403. Browsers
    /// send the header on every request; clients that do not (curl, scripts) are not browsers being abused.
    static func refuseCrossSite(_ request: Request) -> Response? {
        guard let site = request.headers[.secFetchSite], site != "same-origin", site != "none" else { return nil }
        let page = WebTemplates.render("problem", ["heading": "Refused", "message": "This form was sent from another site."])
        return response(WebTemplates.render("layout", ["title": "Refused", "site": "Storefront", "body": page]), status: .forbidden)
    }

    static func response(_ html: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers = securityHeaders
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }
}

/// What the catalogue and product pages show of a product.
struct ProductView {
    var id: Int64
    var name: String
    var price: String
    var availability: String
    var availabilityClass: String

    init(_ p: Product) {
        id = p.id
        name = p.name
        price = Money.format(minor: p.priceMinor, currency: p.currency)
        let available = max(p.available, 0)
        switch available {
        case 0: (availability, availabilityClass) = ("Sold out", "out")
        case 1...5: (availability, availabilityClass) = ("Only \(available) left", "low")
        default: (availability, availabilityClass) = ("\(available) in stock", "in")
        }
    }
}

/// The order page's view of an order, its saga and the timeline.
struct OrderPage {
    struct Step {
        var label: String
        var status: String
        var statusClass: String
        var at: String
        var atText: String
        var detail: String?
        var compensation: Bool
    }

    var id: Int64
    var productId: Int64
    var qty: Int64
    var amount: String
    var createdAt: String
    var createdAtText: String
    var sagaId: String
    var sagaState: String
    var statusText: String
    var statusClass: String
    var terminal: Bool
    var steps: [Step]

    init(_ view: OrderView) {
        id = view.order.id
        productId = view.order.productId
        qty = view.order.qty
        amount = Money.format(minor: view.order.amountMinor, currency: view.order.currency)
        createdAt = Timestamp.rfc3339(view.order.createdAt)
        createdAtText = Self.readable(createdAt)
        sagaId = view.saga.id.uuidString.lowercased()
        sagaState = view.saga.state.rawValue
        terminal = view.saga.state.isTerminal
        switch (view.order.status, view.saga.failureCode) {
        case (.confirmed, _): (statusText, statusClass) = ("Confirmed — thank you! Your payment was taken and the order is placed.", "confirmed")
        case (.cancelled, .paymentDeclined?): (statusText, statusClass) = ("Cancelled: your payment was declined. Nothing was charged.", "cancelled")
        case (.cancelled, .paymentUnavailable?):
            (statusText, statusClass) = ("Cancelled: the payment service could not be reached. Nothing was charged.", "cancelled")
        case (.cancelled, _): (statusText, statusClass) = ("Cancelled. Anything charged was refunded.", "cancelled")
        case (.pending, _) where terminal: (statusText, statusClass) = ("Not completed.", "failed")
        case (.pending, _): (statusText, statusClass) = ("Processing…", "pending")
        }
        steps = view.steps.map { step in
            let at = Timestamp.rfc3339(step.at)
            return Step(label: Self.label(step.name), status: step.status.rawValue, statusClass: step.status.rawValue, at: at,
                        atText: String(at.dropFirst(11).prefix(12)) + " UTC", detail: step.detail, compensation: Self.compensations.contains(step.name))
        }
    }

    /// `2026-11-27T21:10:22.233Z` → `2026-11-27 21:10:22 UTC`.
    static func readable(_ rfc3339: String) -> String {
        String(rfc3339.prefix(10)) + " " + String(rfc3339.dropFirst(11).prefix(8)) + " UTC"
    }

    static let compensations: Set<SagaStepName> = [.startCompensation, .refundPayment, .cancelOrder, .releaseInventory, .failSaga]

    static func label(_ name: SagaStepName) -> String {
        switch name {
        case .startSaga: "Purchase started"
        case .reserveInventory: "Stock reserved"
        case .createOrder: "Order created"
        case .processPayment: "Payment"
        case .confirmOrder: "Order confirmed"
        case .startCompensation: "Undoing the purchase"
        case .refundPayment: "Payment refunded"
        case .cancelOrder: "Order cancelled"
        case .releaseInventory: "Stock released"
        case .failSaga: "Purchase failed"
        }
    }
}

/// Amounts from integer minor units, by the currency's exponent (ISO 4217), with no floating point.
enum Money {
    static let exponents: [String: Int] = [
        "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0, "RWF": 0, "UGX": 0, "VND": 0,
        "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    ]
    static let symbols: [String: String] = ["USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"]

    static func format(minor: Int64, currency: String) -> String {
        let exponent = exponents[currency] ?? 2
        let sign = minor < 0 ? "−" : ""
        let magnitude = minor.magnitude
        var number = String(magnitude)
        if exponent > 0 {
            let scale = UInt64([1, 10, 100, 1000][exponent])
            let whole = magnitude / scale, fraction = String(magnitude % scale)
            number = String(whole) + "." + String(repeating: "0", count: exponent - fraction.count) + fraction
        }
        if let symbol = symbols[currency] { return sign + symbol + number }
        return sign + number + " " + currency
    }
}
