import Foundation
import Logging
import Metrics
import Synchronization

/// The periodic sweep that brings cached stock counters back to the database's truth (`stock − reserved`).
/// It looks at products whose stock moved since the last sweep (purchases, restocks) and at discrepancies it
/// is still watching.
///
/// - lock mode: the product's lock is taken for the check, so no purchase is between counter and database;
///   a wrong counter is corrected at once.
/// - atomic mode: there is no lock, and a purchase in flight legitimately has the counter ahead of the
///   database. A discrepancy is corrected only when the next sweep finds the very same counter value and the
///   same product version (nothing happened in between).
public final class StockReconciler: Sendable {
    public struct Report: Sendable, Equatable {
        public var checked = 0
        public var corrected = 0
        public var deferred = 0

        public init(checked: Int = 0, corrected: Int = 0, deferred: Int = 0) {
            self.checked = checked
            self.corrected = corrected
            self.deferred = deferred
        }
    }

    private struct Suspicion: Equatable {
        var counter: Int64
        var version: Int64
    }

    private let products: any ProductStore
    private let counter: any StockCounter
    private let lock: any ProductLock
    private let mode: PurchaseMode
    private let lockTTL: Duration
    private let logger: Logger
    private let touched = Mutex<Set<Int64>>([])
    private let suspicions = Mutex<[Int64: Suspicion]>([:])

    public init(products: any ProductStore, counter: any StockCounter, lock: any ProductLock, mode: PurchaseMode,
                lockTTL: Duration = .seconds(5), logger: Logger = Logger(label: "storefront.reconciler")) {
        self.lockTTL = min(lockTTL, .seconds(5))
        self.products = products
        self.counter = counter
        self.lock = lock
        self.mode = mode
        self.logger = logger
    }

    /// Remembers that `productId`'s stock moved, so the next sweep checks it.
    public func note(_ productId: Int64) {
        touched.withLock { _ = $0.insert(productId) }
    }

    /// Products waiting for the next sweep.
    public var pending: Set<Int64> {
        touched.withLock { $0 }.union(suspicions.withLock { Set($0.keys) })
    }

    @discardableResult
    public func sweep() async -> Report {
        let ids = touched.withLock { t in
            defer { t.removeAll() }
            return t
        }.union(suspicions.withLock { Set($0.keys) })
        var report = Report()
        for id in ids.sorted() {
            report.checked += 1
            do {
                switch try await check(id) {
                case .consistent: break
                case .corrected: report.corrected += 1
                case .deferred:
                    report.deferred += 1
                    if mode == .lock { note(id) }
                }
            } catch {
                report.deferred += 1
                note(id)
                logger.warning("stock reconciliation failed; will retry", metadata: ["product": "\(id)", "error": "\(error)"])
            }
        }
        if report.corrected > 0 {
            Counter(label: "storefront_stock_counter_corrections_total").increment(by: report.corrected)
        }
        return report
    }

    private enum Outcome { case consistent, corrected, deferred }

    private func check(_ id: Int64) async throws -> Outcome {
        switch mode {
        case .lock:
            let token = "reconciler-\(UUID().uuidString)"
            guard try await lock.acquire(productId: id, token: token, ttl: lockTTL) else { return .deferred }
            let outcome: Result<Outcome, any Error>
            do {
                if let product = try await products.product(id: id, consistency: .primary),
                   let cached = try await counter.get(productId: id), cached != product.available {
                    try await counter.set(productId: id, value: product.available)
                    logger.notice("stock counter corrected", metadata: ["product": "\(id)", "was": "\(cached)", "now": "\(product.available)"])
                    outcome = .success(.corrected)
                } else {
                    outcome = .success(.consistent)
                }
            } catch {
                outcome = .failure(error)
            }
            _ = try? await lock.release(productId: id, token: token)
            return try outcome.get()
        case .atomic:
            guard let product = try await products.product(id: id, consistency: .primary),
                  let cached = try await counter.get(productId: id), cached != product.available
            else {
                suspicions.withLock { _ = $0.removeValue(forKey: id) }
                return .consistent
            }
            let now = Suspicion(counter: cached, version: product.version)
            let before = suspicions.withLock { s in
                defer { s[id] = now }
                return s[id]
            }
            guard before == now else { return .deferred }
            try await counter.set(productId: id, value: product.available)
            suspicions.withLock { _ = $0.removeValue(forKey: id) }
            logger.notice("stock counter corrected", metadata: ["product": "\(id)", "was": "\(cached)", "now": "\(product.available)"])
            return .corrected
        }
    }
}
