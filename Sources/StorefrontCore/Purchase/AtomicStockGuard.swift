import Foundation
import Logging

/// The flash-sale flow: no lock; units are reserved from the cached counter atomically (`DECR` if enough),
/// and given back when the saga fails.
public struct AtomicStockGuard: StockGuard {
    let stock: CachedStock

    public init(products: any ProductStore, counter: any StockCounter, cache: any ProductCache, retryAfterSeconds: Int, logger: Logger) {
        stock = CachedStock(products: products, counter: counter, cache: cache, retryAfterSeconds: retryAfterSeconds, logger: logger)
    }

    public func enter(productId: Int64) async throws -> StockPass? { StockPass(productId: productId) }

    public func claim(_ pass: StockPass, qty: Int64) async throws {
        let productId = pass.productId
        let reservation = try await stock.dependency("stock counter") {
            var reservation = try await stock.counter.reserve(productId: productId, qty: qty)
            for _ in 0..<3 where reservation == .missing {
                try await stock.fill(productId)
                reservation = try await stock.counter.reserve(productId: productId, qty: qty)
            }
            return reservation
        }
        switch reservation {
        case .reserved: return
        case .insufficient(let available): throw StorefrontError.insufficientStock(productId: productId, available: available)
        case .missing: throw StorefrontError.unavailable("stock counter", retryAfterSeconds: stock.retryAfterSeconds)
        }
    }

    public func settle(_ pass: StockPass, qty: Int64, _ outcome: StockSettlement) async {
        let giveBack = { await stock.quietly { try await stock.counter.giveBack(productId: pass.productId, qty: qty) } }
        switch outcome {
        case .unknown:
            // Outcome unknown here (left for recovery): drop the counter so it is rebuilt from the database.
            await stock.quietly { try await stock.counter.forget(productId: pass.productId) }
            return
        case .notStarted:
            await giveBack()
        case .ran(let saga) where saga.state == .failed && saga.failureCode == .insufficientStock:
            // The counter said yes, the database said no: the counter was too high. The units this request took
            // from it did not exist, so they are not given back — the counter converges on the truth.
            break
        case .ran(let saga) where saga.state == .compensated || saga.state == .failed:
            await giveBack()
        case .ran:
            break
        }
        await stock.invalidate(pass.productId)
    }

    public func leave(_ pass: StockPass) async {}

    public func afterRecovery(_ saga: Saga) async {
        await stock.forget(saga.productId)
    }
}
