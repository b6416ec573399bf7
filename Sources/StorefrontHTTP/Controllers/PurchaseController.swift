import Hummingbird
import StorefrontCore

/// `POST /purchase` and `GET /orders/{id}`.
struct PurchaseController {
    let purchases: PurchaseService
    let orders: OrderService
    let maxBodyBytes: Int

    func addRoutes(to router: Router<AppRequestContext>) {
        router.post("/purchase") { request, context in
            let key = request.headers[.idempotencyKey]
            let body = try await request.decodeJSON(as: PurchaseBody.self, limit: maxBodyBytes, context: context)
            let result = try await purchases.purchase(PurchaseRequest(productId: body.productId, qty: body.qty, idempotencyKey: key))
            var headers: HTTPFields = [:]
            if let orderId = result.saga.orderId { headers[.location] = "/orders/\(orderId)" }
            if result.replayed { headers[.idempotentReplayed] = "true" }
            context.logger.info("purchase", metadata: [
                "saga": "\(result.saga.id)", "product": "\(body.productId)", "qty": "\(body.qty)", "state": "\(result.saga.state.rawValue)",
                "replayed": "\(result.replayed)",
            ])
            // CONFIRMED → 201; past the payment pivot but not yet confirmed (it will be) → 202.
            return try jsonResponse(PurchaseDTO(result.saga), status: result.saga.state == .confirmed ? .created : .accepted, headers: headers)
        }
        router.get("/orders/:id") { _, context in
            let id = try context.positiveID()
            let view = try await orders.order(id: id)
            return try jsonResponse(OrderDTO(order: view.order, saga: view.saga, steps: view.steps))
        }
    }
}
