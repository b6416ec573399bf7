import Prometheus
import StorefrontCore

/// What the HTTP layer serves: application services, chosen by the wiring (embedded or engines). The saga and
/// outbox ports are here for tools and tests that inspect what happened; the routes use the services.
public struct StorefrontServices: Sendable {
    public var catalog: CatalogService
    public var purchases: PurchaseService
    public var orders: OrderService
    public var operations: SagaOperations
    /// The simulated payment provider, tunable at run time through the admin API (drills, the nemesis).
    public var paymentSimulator: SimulatedPaymentGateway?
    public var sagas: any SagaStore
    public var outbox: any OutboxStore
    public var health: [any HealthCheckable]
    public var adminToken: String?
    public var maxBodyBytes: Int
    public var metrics: PrometheusCollectorRegistry

    public init(
        catalog: CatalogService, purchases: PurchaseService, operations: SagaOperations, sagas: any SagaStore, outbox: any OutboxStore,
        health: [any HealthCheckable], adminToken: String?, maxBodyBytes: Int, metrics: PrometheusCollectorRegistry,
        paymentSimulator: SimulatedPaymentGateway? = nil
    ) {
        self.paymentSimulator = paymentSimulator
        self.catalog = catalog
        self.purchases = purchases
        self.orders = OrderService(sagas: sagas, outbox: outbox)
        self.operations = operations
        self.sagas = sagas
        self.outbox = outbox
        self.health = health
        self.adminToken = adminToken
        self.maxBodyBytes = maxBodyBytes
        self.metrics = metrics
    }
}
