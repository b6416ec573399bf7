import Prometheus
import StorefrontCore

/// What the HTTP layer serves: application services and ports, chosen by the wiring (embedded or engines).
public struct StorefrontServices: Sendable {
    public var catalog: CatalogService
    public var purchases: PurchaseService
    public var sagas: any SagaStore
    public var outbox: any OutboxStore
    public var health: [any HealthCheckable]
    public var adminToken: String?
    public var maxBodyBytes: Int
    public var metrics: PrometheusCollectorRegistry

    public init(
        catalog: CatalogService, purchases: PurchaseService, sagas: any SagaStore, outbox: any OutboxStore,
        health: [any HealthCheckable], adminToken: String?, maxBodyBytes: Int, metrics: PrometheusCollectorRegistry
    ) {
        self.catalog = catalog
        self.purchases = purchases
        self.sagas = sagas
        self.outbox = outbox
        self.health = health
        self.adminToken = adminToken
        self.maxBodyBytes = maxBodyBytes
        self.metrics = metrics
    }
}
