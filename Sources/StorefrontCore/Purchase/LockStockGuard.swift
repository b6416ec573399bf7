import Foundation
import Logging

/// The seed's flow: a per-product lock (owned by a random token, released only by its owner) around a check
/// of the cached counter; the counter is decremented after a confirmed saga.
public struct LockStockGuard: StockGuard {
    let stock: CachedStock
    let lock: any ProductLock
    let ttl: Duration
    /// How long to wait for a busy lock before answering busy (0 = the seed's fail-fast).
    let wait: Duration

    public init(products: any ProductStore, counter: any StockCounter, cache: any ProductCache, lock: any ProductLock,
                ttl: Duration, wait: Duration, retryAfterSeconds: Int, logger: Logger) {
        stock = CachedStock(products: products, counter: counter, cache: cache, retryAfterSeconds: retryAfterSeconds, logger: logger)
        self.lock = lock
        self.ttl = ttl
        self.wait = wait
    }

    /// The lock comes first, so a busy answer costs one lock round trip and no database read.
    public func enter(productId: Int64) async throws -> StockPass? {
        let token = UUID().uuidString
        let deadline = ContinuousClock.now + wait
        return try await stock.dependency("product lock") {
            while true {
                if try await lock.acquire(productId: productId, token: token, ttl: ttl) { return StockPass(productId: productId, token: token) }
                guard ContinuousClock.now < deadline else { return nil }
                try await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    public func claim(_ pass: StockPass, qty: Int64) async throws {
        let cached = try await stock.dependency("stock counter") { try await stock.value(pass.productId) }
        guard cached >= qty else { throw StorefrontError.insufficientStock(productId: pass.productId, available: cached) }
    }

    public func settle(_ pass: StockPass, qty: Int64, _ outcome: StockSettlement) async {
        switch outcome {
        case .unknown:
            return
        case .ran(let saga) where saga.state == .confirmed:
            await stock.quietly { try await stock.counter.decrement(productId: pass.productId, by: qty) }
        case .ran(let saga) where saga.state == .failed && saga.failureCode == .insufficientStock:
            // The counter said yes but the database said no: the counter drifted. We hold the lock, so no
            // purchase is in flight for this product: correct it exactly, now.
            await stock.quietly { try await stock.correct(pass.productId) }
        case .ran, .notStarted:
            break
        }
        await stock.invalidate(pass.productId)
    }

    public func leave(_ pass: StockPass) async {
        guard let token = pass.token else { return }
        do {
            if try await !lock.release(productId: pass.productId, token: token) {
                stock.logger.warning("lock had expired or changed owner before release", metadata: ["product": "\(pass.productId)"])
            }
        } catch {
            stock.logger.warning("lock release failed; it expires by TTL", metadata: ["product": "\(pass.productId)", "error": "\(error)"])
        }
    }

    public func afterRecovery(_ saga: Saga) async {
        await stock.forget(saga.productId)
    }
}
