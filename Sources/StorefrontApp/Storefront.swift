import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import RedisClient
import ServiceLifecycle
import StorefrontCore
import Kafka
import StorefrontHTTP
import StorefrontKafka
import StorefrontRedis
import StorefrontSQLite

/// Wiring: chooses adapters from configuration and builds services and the application.
/// Nothing here holds logic; it only connects parts.
public struct Storefront: Sendable {
    public let config: StorefrontConfig
    public let services: StorefrontServices
    public let orchestrator: SagaOrchestrator
    public let recovery: SagaRecovery
    /// The periodic sweep of cached stock counters.
    public let reconciler: StockReconciler
    /// The outbox → Kafka relay when `STOREFRONT_KAFKA_BROKERS` is set (else events stay in the outbox).
    public let relay: OutboxRelay?
    let producer: KafkaProducer?
    public let database: StorefrontDatabase
    public let gateway: SimulatedPaymentGateway
    /// The Redis client when `STOREFRONT_REDIS_URL` is set.
    public let redis: RedisClient?
    /// Each server's copy of cached products, with the channel its invalidations travel on (Redis engine only).
    public let nearCache: (cache: NearProductCache, channel: RedisShardChannel)?
    public let logger: Logger

    /// Builds every part for `config` (opening the database and applying migrations). `decorators` and
    /// `clock` are for tests (fault injection, a controlled clock).
    public init(config: StorefrontConfig, logger: Logger? = nil, decorators: PortDecorators = .none, clock: WallClock = .system) async throws {
        let logger = logger ?? {
            var logger = Logger(label: "storefront")
            logger.logLevel = Logger.Level(rawValue: config.logLevel) ?? .info
            return logger
        }()
        self.config = config
        self.logger = logger
        let metrics = StorefrontMetrics.registry  // bootstrap swift-metrics before any service makes its handles
        database = try await StorefrontDatabase.open(config, logger: logger)
        let products = database.products
        let sagas = decorators.sagas(database.sagas)
        gateway = SimulatedPaymentGateway(ledger: database.payments, behavior: config.paymentBehavior, logger: logger)
        let cache: any ProductCache
        let counter: any StockCounter
        let lock: any ProductLock
        var health: [any HealthCheckable] = database.health
        if let redisConfig = try config.redis.clientConfiguration(clientName: "storefront-\(config.instanceID)") {
            let client = try RedisClient(configuration: redisConfig, logger: logger)
            let shared = RedisProductCache(redis: client, keys: config.redis.keys)
            if let settings = config.redis.nearCache {
                let channel = RedisShardChannel(client: client, name: config.redis.keys.invalidations, logger: logger)
                let near = NearProductCache(shared: shared, broadcast: RedisInvalidationBroadcast(channel: channel), settings: settings)
                nearCache = (near, channel)
                cache = near
            } else {
                nearCache = nil
                cache = shared
            }
            counter = decorators.counter(RedisStockCounter(redis: client, keys: config.redis.keys))
            lock = RedisProductLock(redis: client, keys: config.redis.keys)
            health.append(RedisHealth(redis: client))
            redis = client
        } else {
            cache = InProcessProductCache()
            counter = decorators.counter(InProcessStockCounter())
            lock = InProcessProductLock()
            redis = nil
            nearCache = nil
        }
        orchestrator = SagaOrchestrator(store: sagas, gateway: decorators.payments(gateway), owner: config.instanceID,
                                        settings: config.sagaSettings, clock: clock, logger: logger)
        reconciler = StockReconciler(products: products, counter: counter, lock: lock, mode: config.purchaseMode,
                                     lockTTL: .milliseconds(config.lockTTLMilliseconds), logger: logger)
        let stock = PurchaseService.stockGuard(config.purchaseSettings, products: products, counter: counter, cache: cache, lock: lock,
                                               logger: logger)
        let purchases = PurchaseService(products: products, sagas: sagas, orchestrator: orchestrator, stock: stock,
                                        settings: config.purchaseSettings, reconciler: reconciler, logger: logger)
        let catalog = CatalogService(products: products, cache: cache, counter: counter, settings: config.catalogSettings,
                                     clock: clock, reconciler: reconciler, logger: logger)
        recovery = SagaRecovery(store: sagas, orchestrator: orchestrator, clock: clock, stock: stock, logger: logger)
        if let kafka = config.kafka.producerConfiguration(clientID: "storefront-\(config.instanceID)") {
            let producer = try KafkaProducer(configuration: kafka, logger: logger)
            let outboxRelay = OutboxRelay(outbox: sagas, publisher: KafkaEventPublisher(producer: producer), clock: clock,
                                          leadership: .init(owner: config.instanceID), logger: logger)
            health.append(outboxRelay)
            relay = outboxRelay
            self.producer = producer
        } else {
            relay = nil
            producer = nil
        }
        services = StorefrontServices(
            catalog: catalog, purchases: purchases, operations: SagaOperations(store: sagas, orchestrator: orchestrator, stock: stock),
            sagas: sagas, outbox: sagas, health: health,
            adminToken: config.adminToken, maxBodyBytes: config.maxBodyBytes, metrics: metrics, paymentSimulator: gateway)
    }

    /// The HTTP application with its background services: saga recovery, stock reconciliation, the database
    /// monitor (MariaDB with replicas) and the Kafka producer with the outbox relay — each a `PeriodicService`
    /// (the producer's poll loop is a service of its own).
    public func application() -> some ApplicationProtocol {
        var app = Application(
            router: buildRouter(services),
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: "storefront"),
            logger: logger)
        // Services stop in reverse order (the HTTP server, added last by Hummingbird, first): saga recovery and
        // reconciliation, then the database monitor, then the relay's final drain, then the Kafka producer's
        // flush — so events written by the last requests and recovery rounds are still published.
        if let relay, let producer {
            app.addServices(producer, PeriodicService("outbox relay", logger: logger, atShutdown: {
                // What the last requests wrote is published while this server holds the relay lease (a standby whose
                // holder stopped first takes it over), then the lease is released; the producer's flush comes after.
                await relay.finish()
            }) {
                await relay.step()
            })
        }
        if let monitorRound = database.engine.monitorRound {
            let checkInterval = Duration.seconds(config.mariadb.checkSeconds)
            app.addServices(PeriodicService("database monitor", retryAfter: checkInterval, logger: logger) {
                await monitorRound()
                return checkInterval
            })
        }
        if let (near, channel) = nearCache {
            app.addServices(NearCacheSubscription(cache: near, channel: channel, logger: logger))
        }
        let recoveryInterval = Duration.seconds(config.recoveryIntervalSeconds)
        let renewInterval = config.sagaSettings.leaseDuration / 3
        let reconcileInterval = Duration.seconds(config.stockReconcileSeconds)
        app.addServices(
            PeriodicService("stock reconciliation", firstPause: reconcileInterval, retryAfter: reconcileInterval, logger: logger) { [reconciler] in
                _ = await reconciler.sweep()
                return reconcileInterval
            },
            PeriodicService("saga recovery", retryAfter: recoveryInterval, logger: logger) { [recovery] in
                try await recovery.pass()
                return recoveryInterval
            },
            // Its own task: a slow recovery batch or purchase must never let the leases of sagas in flight lapse.
            PeriodicService("saga leases", retryAfter: renewInterval, logger: logger) { [orchestrator] in
                try await orchestrator.renewLeases()
                return renewInterval
            })
        return app
    }
}

extension Storefront {
    /// Releases engine clients after the application stopped (flushes and closes the Kafka producer).
    public func shutdown() async {
        await producer?.close()
        await redis?.close()
        await database.close()
    }
}

/// Wrappers put around the saga ports when the parts are built: tests inject faults through them (a store
/// or gateway that fails or "crashes" at a given step); production uses `.none`.
public struct PortDecorators: Sendable {
    public var sagas: @Sendable (any SagaStore & OutboxStore) -> any SagaStore & OutboxStore
    public var payments: @Sendable (any PaymentGateway) -> any PaymentGateway
    public var counter: @Sendable (any StockCounter) -> any StockCounter

    public init(sagas: @escaping @Sendable (any SagaStore & OutboxStore) -> any SagaStore & OutboxStore = { $0 },
                payments: @escaping @Sendable (any PaymentGateway) -> any PaymentGateway = { $0 },
                counter: @escaping @Sendable (any StockCounter) -> any StockCounter = { $0 }) {
        self.sagas = sagas
        self.payments = payments
        self.counter = counter
    }

    public static let none = PortDecorators()
}

/// The process-wide Prometheus registry, bootstrapped into swift-metrics once.
public enum StorefrontMetrics {
    public static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()
}

/// Keeps the near cache subscribed to the invalidation channel until graceful shutdown.
struct NearCacheSubscription: Service, CustomStringConvertible {
    let cache: NearProductCache
    let channel: RedisShardChannel
    let logger: Logger
    var description: String { "near cache invalidations" }

    func run() async throws {
        try? await cancelWhenGracefulShutdown { [cache, channel, logger] in
            await cache.follow(channel, logger: logger)
        }
    }
}
