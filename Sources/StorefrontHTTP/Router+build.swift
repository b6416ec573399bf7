import Hummingbird
import StorefrontCore

/// The whole HTTP API over the given services. The HTTP layer only translates: DTOs in, service calls, DTOs out.
public func buildRouter(_ services: StorefrontServices) -> Router<AppRequestContext> {
    let router = Router(context: AppRequestContext.self)
    // The proxy's request id first, so every log line and answer carries it; metrics outside the error
    // envelope, so they record the status it chose.
    router.add(middleware: RequestIDMiddleware())
    router.add(middleware: RequestMetricsMiddleware())
    let known = KnownRoutes()
    router.add(middleware: ErrorEnvelopeMiddleware(routes: known))
    ProductController(catalog: services.catalog).addRoutes(to: router)
    PurchaseController(purchases: services.purchases, orders: services.orders, maxBodyBytes: services.maxBodyBytes).addRoutes(to: router)
    AdminController(catalog: services.catalog, orders: services.orders, operations: services.operations,
                    paymentSimulator: services.paymentSimulator, adminToken: services.adminToken, maxBodyBytes: services.maxBodyBytes,
                    sagas: services.sagas, outbox: services.outbox, health: services.health, metrics: services.metrics)
        .addRoutes(to: router)
    ShopController(catalog: services.catalog, purchases: services.purchases, orders: services.orders, maxBodyBytes: services.maxBodyBytes)
        .addRoutes(to: router)
    HealthController(checks: services.health, metrics: services.metrics).addRoutes(to: router)
    known.set(router.routes.map { (path: $0.path.description, method: $0.method.rawValue) })
    return router
}
