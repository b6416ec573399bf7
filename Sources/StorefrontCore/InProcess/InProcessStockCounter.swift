import Foundation
import Synchronization

/// The embedded stock counter: an in-memory map with the same atomic semantics as the Redis Lua scripts.
public final class InProcessStockCounter: StockCounter {
    private let values = Mutex<[Int64: Int64]>([:])

    public init() {}

    public func get(productId: Int64) async throws -> Int64? {
        values.withLock { $0[productId] }
    }

    public func set(productId: Int64, value: Int64) async throws {
        values.withLock { $0[productId] = value }
    }

    public func setIfAbsent(productId: Int64, value: Int64) async throws {
        values.withLock { map in
            if map[productId] == nil { map[productId] = value }
        }
    }

    public func compareAndSet(productId: Int64, expected: Int64, value: Int64) async throws -> Bool {
        values.withLock { map in
            guard map[productId] == expected else { return false }
            map[productId] = value
            return true
        }
    }

    public func reserve(productId: Int64, qty: Int64) async throws -> CounterReservation {
        values.withLock { map in
            guard let current = map[productId] else { return .missing }
            guard current >= qty else { return .insufficient(available: current) }
            map[productId] = current - qty
            return .reserved(remaining: current - qty)
        }
    }

    public func decrement(productId: Int64, by qty: Int64) async throws {
        values.withLock { map in
            if let current = map[productId] { map[productId] = current - qty }
        }
    }

    public func giveBack(productId: Int64, qty: Int64) async throws {
        values.withLock { map in
            if let current = map[productId] { map[productId] = current + qty }
        }
    }

    public func forget(productId: Int64) async throws {
        _ = values.withLock { $0.removeValue(forKey: productId) }
    }
}
