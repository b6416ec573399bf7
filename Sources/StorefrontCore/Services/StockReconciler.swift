import Foundation
import Logging
import Metrics
import Synchronization

/// The periodic sweep that brings cached stock counters back to the database's truth (`stock`, the units left for sale).
/// It looks at products whose stock moved or was looked at since the last sweep — purchases that succeeded,
/// and refusals and unknown outcomes too (a counter that drifted low refuses every purchase, and nothing
/// else would look at it), restocks — so a wrong counter heals within one sweep. Every correction is a
/// compare-and-set on the value read before the database: a reservation, give-back or `forget` made in
/// between wins over it.
///
/// - lock mode: the product's lock is taken for the check, so no purchase is between counter and database;
///   a wrong counter is corrected at once.
/// - atomic mode: there is no lock, and a purchase in flight legitimately has the counter ahead of the
///   database. A discrepancy is corrected only if, after `settleWindow`, the counter and the product's version
///   are still what they were (nothing happened in between); else the next sweep looks again.
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

    /// A counter that disagreed with the database.
    private struct Discrepancy: Equatable {
        var counter: Int64
        var version: Int64
        var available: Int64
    }

    private let products: any ProductStore
    private let counter: any StockCounter
    private let lock: any ProductLock
    private let mode: PurchaseMode
    private let lockTTL: Duration
    private let settleWindow: Duration
    private let sleep: @Sendable (Duration) async throws -> Void
    private let logger: Logger
    private let touched = Mutex<Set<Int64>>([])

    /// - Parameters:
    ///   - settleWindow: atomic mode: how long a discrepancy must stay unchanged to be corrected (longer than
    ///     a purchase takes from its counter reservation to its database reservation).
    ///   - sleep: waits out the settle window (tests make things happen in it).
    public init(products: any ProductStore, counter: any StockCounter, lock: any ProductLock, mode: PurchaseMode,
                lockTTL: Duration = .seconds(5), settleWindow: Duration = .seconds(1),
                sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
                logger: Logger = Logger(label: "storefront.reconciler")) {
        self.lockTTL = min(lockTTL, .seconds(5))
        self.products = products
        self.counter = counter
        self.lock = lock
        self.mode = mode
        self.settleWindow = settleWindow
        self.sleep = sleep
        self.logger = logger
    }

    /// Remembers that `productId`'s stock moved (or that its counter refused), so the next sweep checks it.
    public func note(_ productId: Int64) {
        touched.withLock { _ = $0.insert(productId) }
    }

    /// Products waiting for the next sweep.
    public var pending: Set<Int64> { touched.withLock { $0 } }

    @discardableResult
    public func sweep() async -> Report {
        let ids = touched.withLock { t in
            defer { t.removeAll() }
            return t
        }
        var report = Report()
        var unsettled: [(Int64, Discrepancy)] = []
        for id in ids.sorted() {
            report.checked += 1
            do {
                switch mode {
                case .lock:
                    switch try await correctUnderLock(id) {
                    case nil: report.deferred += 1; note(id)
                    case true?: report.corrected += 1
                    case false?: break
                    }
                case .atomic:
                    if let discrepancy = try await observe(id) { unsettled.append((id, discrepancy)) }
                }
            } catch {
                report.deferred += 1
                note(id)
                logger.warning("stock reconciliation failed; will retry", metadata: ["product": "\(id)", "error": "\(error)"])
            }
        }
        if !unsettled.isEmpty {
            try? await sleep(settleWindow)
            for (id, first) in unsettled {
                do {
                    guard let now = try await observe(id) else { continue }  // agrees now
                    if now == first, try await counter.compareAndSet(productId: id, expected: now.counter, value: now.available) {
                        report.corrected += 1
                        logger.notice("stock counter corrected", metadata: ["product": "\(id)", "was": "\(now.counter)", "now": "\(now.available)"])
                    } else {
                        // Something happened meanwhile (a purchase in flight): look again next sweep.
                        report.deferred += 1
                        note(id)
                    }
                } catch {
                    report.deferred += 1
                    note(id)
                    logger.warning("stock reconciliation failed; will retry", metadata: ["product": "\(id)", "error": "\(error)"])
                }
            }
        }
        if report.corrected > 0 {
            Counter(label: "storefront_stock_counter_corrections_total").increment(by: report.corrected)
        }
        return report
    }

    /// The counter (read first) and the database, when they disagree. A missing counter is rebuilt by the next
    /// purchase; a missing product has nothing to agree with.
    private func observe(_ id: Int64) async throws -> Discrepancy? {
        guard let cached = try await counter.get(productId: id),
              let product = try await products.product(id: id, consistency: .primary),
              cached != product.available
        else { return nil }
        return Discrepancy(counter: cached, version: product.version, available: product.available)
    }

    /// Lock mode: nil when a purchase holds the product (try again next sweep); else whether it corrected.
    private func correctUnderLock(_ id: Int64) async throws -> Bool? {
        let token = "reconciler-\(UUID().uuidString)"
        guard try await lock.acquire(productId: id, token: token, ttl: lockTTL) else { return nil }
        let outcome: Result<Bool, any Error>
        do {
            if let found = try await observe(id) {
                let corrected = try await counter.compareAndSet(productId: id, expected: found.counter, value: found.available)
                if corrected {
                    logger.notice("stock counter corrected", metadata: ["product": "\(id)", "was": "\(found.counter)", "now": "\(found.available)"])
                }
                outcome = .success(corrected)
            } else {
                outcome = .success(false)
            }
        } catch {
            outcome = .failure(error)
        }
        _ = try? await lock.release(productId: id, token: token)
        return try outcome.get()
    }
}
