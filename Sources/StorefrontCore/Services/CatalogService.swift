import Foundation
import Logging
import Metrics

public struct CatalogSettings: Sendable {
    /// Product detail TTL (DESIGN: 300 s) …
    public var ttl: Duration
    /// … plus or minus this fraction, so entries filled together do not expire together.
    public var ttlJitter: Double
    /// How long an unknown id is remembered as absent.
    public var negativeTTL: Duration
    public var maxPageSize: Int
    /// Views read a replica, which applies a change a little after the primary committed it: a view in between
    /// puts the old product back into the cache right after the change invalidated it. So an update or restock
    /// invalidates the product once more after this long — about the longest a replica in read rotation can lag
    /// (docs/redis.md) — which bounds how long an old price can be shown (nil: no replicas, no second
    /// invalidation). A product's creation needs none: a replica's "not found" is confirmed on the primary.
    public var reinvalidateAfter: Duration?

    public init(ttl: Duration = .seconds(300), ttlJitter: Double = 0.1, negativeTTL: Duration = .seconds(5), maxPageSize: Int = 100,
                reinvalidateAfter: Duration? = nil) {
        self.ttl = ttl
        self.ttlJitter = min(max(ttlJitter, 0), 0.9)
        self.negativeTTL = negativeTTL
        self.maxPageSize = maxPageSize
        self.reinvalidateAfter = reinvalidateAfter
    }
}

/// Product views (cache-aside over the replica, single-flight on a miss) and admin changes (primary,
/// then invalidation).
public final class CatalogService: Sendable {
    public let settings: CatalogSettings
    private let products: any ProductStore
    private let cache: any ProductCache
    private let counter: any StockCounter
    private let clock: WallClock
    private let logger: Logger
    private let reconciler: StockReconciler?
    private let loads = SingleFlight<Int64, Product?>()
    private let sleep: @Sendable (Duration) async throws -> Void
    // Metric handles made once: a product view is the hottest path and a cache hit costs microseconds.
    private let hits = Counter(label: "storefront_product_cache_total", dimensions: [("result", "hit")])
    private let absents = Counter(label: "storefront_product_cache_total", dimensions: [("result", "absent")])
    private let misses = Counter(label: "storefront_product_cache_total", dimensions: [("result", "miss")])

    public init(
        products: any ProductStore, cache: any ProductCache, counter: any StockCounter, settings: CatalogSettings = .init(),
        clock: WallClock = .system, reconciler: StockReconciler? = nil, logger: Logger = Logger(label: "storefront.catalog"),
        sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }
    ) {
        self.sleep = sleep
        self.reconciler = reconciler
        self.products = products
        self.cache = cache
        self.counter = counter
        self.settings = settings
        self.clock = clock
        self.logger = logger
    }

    /// `GET /products/{id}`: cache, else one replica read shared by all concurrent misses (a replica's "not found"
    /// confirmed on the primary), then fill the cache.
    public func product(id: Int64) async throws -> Product {
        guard id > 0 else { throw StorefrontError.productNotFound(id) }
        do {
            switch try await cache.get(id: id) {
            case .hit(let product):
                hits.increment()
                return product
            case .absent:
                absents.increment()
                throw StorefrontError.productNotFound(id)
            case .miss:
                break
            }
        } catch let error as StorefrontError {
            throw error
        } catch {
            // A cache outage must not take product views down: fall through to the database.
            logger.warning("product cache unavailable; reading the database", metadata: ["error": "\(error)"])
        }
        misses.increment()
        let loaded = try await loads.run(id) { try await self.load(id) }
        guard let loaded else { throw StorefrontError.productNotFound(id) }
        return loaded
    }

    private func load(_ id: Int64) async throws -> Product? {
        var product = try await products.product(id: id, consistency: .replica)
        var confirmedAbsent = true
        if product == nil {
            // A replica that lags has not seen a product created a moment ago: "not found" is confirmed on the
            // primary before it is answered and cached as absent (the negative cache keeps unknown ids cheap).
            // A primary that does not answer leaves the replica's word: 404, not cached.
            do {
                product = try await products.product(id: id, consistency: .primary)
            } catch {
                confirmedAbsent = false
                logger.debug("could not confirm an unknown product on the primary", metadata: ["product": "\(id)", "error": "\(error)"])
            }
        }
        do {
            if let product {
                try await cache.put(product, ttl: jitteredTTL())
            } else if confirmedAbsent {
                try await cache.putAbsent(id: id, ttl: settings.negativeTTL)
            }
        } catch {
            logger.warning("could not fill product cache", metadata: ["product": "\(id)", "error": "\(error)"])
        }
        return product
    }

    /// TTL ± jitter.
    public func jitteredTTL() -> Duration {
        let factor = 1 + Double.random(in: -settings.ttlJitter...settings.ttlJitter)
        return .milliseconds(Int64((Double(settings.ttl.components.seconds) * 1000 + Double(settings.ttl.components.attoseconds) / 1e15) * factor))
    }

    /// `GET /admin/products/{id}`: the product as the primary has it now (stock and reservations included),
    /// never from the cache — what an operator or a load test's invariant check must see.
    /// The product as the primary has it, and the units its sagas in flight hold.
    public func productOnPrimary(id: Int64) async throws -> (product: Product, held: Int64) {
        guard let product = try await products.product(id: id, consistency: .primary) else { throw StorefrontError.productNotFound(id) }
        return (product, try await products.unitsHeld(productId: id))
    }

    /// `GET /products?limit&after`: pages read from the replica.
    public func list(after: Int64?, limit: Int) async throws -> ProductPage {
        guard limit >= 1, limit <= settings.maxPageSize else {
            throw StorefrontError.validation("limit must be between 1 and \(settings.maxPageSize)")
        }
        return try await products.products(after: after, limit: limit, consistency: .replica)
    }

    public func create(_ new: NewProduct) async throws -> Product {
        let product = try await products.create(try new.validated(), now: clock.now())
        await invalidate(product.id)  // drops a negative entry for this id, if any
        return product
    }

    public func update(id: Int64, _ update: ProductUpdate) async throws -> Product {
        guard !update.isEmpty else { throw StorefrontError.validation("at least one field must be given") }
        let product = try await products.update(id: id, update, now: clock.now())
        await invalidate(id)
        invalidateAgainLater(id)
        return product
    }

    public func restock(id: Int64, qty: Int64) async throws -> Product {
        guard qty >= 1, qty <= ProductRules.maxStock else {
            throw StorefrontError.validation("qty must be between 1 and \(ProductRules.maxStock)")
        }
        let product = try await products.restock(id: id, qty: qty, now: clock.now())
        await invalidate(id)
        invalidateAgainLater(id)
        do {
            try await counter.giveBack(productId: id, qty: qty)
        } catch {
            logger.warning("stock counter not updated after restock; dropping it", metadata: ["product": "\(id)", "error": "\(error)"])
            try? await counter.forget(productId: id)
        }
        reconciler?.note(id)
        return product
    }

    /// The second invalidation of an admin change (`settings.reinvalidateAfter`), in the background: it drops
    /// what a view filled from a replica that had not applied the change yet. Best effort — a server that stops
    /// before it runs leaves such an entry to its TTL, as before.
    private func invalidateAgainLater(_ id: Int64) {
        guard let delay = settings.reinvalidateAfter else { return }
        Task {
            try? await self.sleep(delay)
            await self.invalidate(id)
        }
    }

    private func invalidate(_ id: Int64) async {
        do { try await cache.invalidate(id: id) } catch {
            logger.warning("cache invalidation failed; entry expires by TTL", metadata: ["product": "\(id)", "error": "\(error)"])
        }
    }
}
