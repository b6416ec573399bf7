import StorefrontCore
import Synchronization

/// A `StockCounter` with two faults a real Redis shows:
/// - `loseNextReply`: the next reservation that takes units runs on the server but its reply is lost (a timeout or a dropped
///   connection after the script ran): units are taken, the caller sees an error.
/// - `beforeCompareAndSet`: runs just before a compare-and-set reaches the counter (another writer's give-back
///   or `forget` landing between a correction's read and its write).
public final class FaultyStockCounter: StockCounter {
    public struct ReplyLost: Error, CustomStringConvertible {
        public var description: String { "connection lost before the reply (simulated)" }
    }

    let inner: any StockCounter
    private let losing = Mutex(0)
    private let interleave = Mutex<(@Sendable () async throws -> Void)?>(nil)

    public init(_ inner: any StockCounter) { self.inner = inner }

    public func loseNextReply(count: Int = 1) { losing.withLock { $0 = count } }
    public func beforeCompareAndSet(_ body: (@Sendable () async throws -> Void)?) { interleave.withLock { $0 = body } }

    public func get(productId: Int64) async throws -> Int64? { try await inner.get(productId: productId) }
    public func set(productId: Int64, value: Int64) async throws { try await inner.set(productId: productId, value: value) }
    public func setIfAbsent(productId: Int64, value: Int64) async throws { try await inner.setIfAbsent(productId: productId, value: value) }

    public func compareAndSet(productId: Int64, expected: Int64, value: Int64) async throws -> Bool {
        if let body = interleave.withLock({ $0 }) { try await body() }
        return try await inner.compareAndSet(productId: productId, expected: expected, value: value)
    }

    public func reserve(productId: Int64, qty: Int64) async throws -> CounterReservation {
        let result = try await inner.reserve(productId: productId, qty: qty)
        guard case .reserved = result else { return result }
        let lose = losing.withLock { n in
            defer { n = max(n - 1, 0) }
            return n > 0
        }
        if lose { throw ReplyLost() }
        return result
    }

    public func decrement(productId: Int64, by qty: Int64) async throws { try await inner.decrement(productId: productId, by: qty) }
    public func giveBack(productId: Int64, qty: Int64) async throws { try await inner.giveBack(productId: productId, qty: qty) }
    public func forget(productId: Int64) async throws { try await inner.forget(productId: productId) }
}
