import Foundation
import Synchronization

/// The embedded product cache: a bounded in-memory map with per-entry expiry.
public final class InProcessProductCache: ProductCache {
    private enum Value { case product(Product), absent }
    private struct Entry {
        var value: Value
        var expires: ContinuousClock.Instant
    }

    private let entries = Mutex<[Int64: Entry]>([:])
    private let capacity: Int

    public init(capacity: Int = 100_000) {
        self.capacity = max(capacity, 1)
    }

    public func get(id: Int64) async throws -> CacheLookup {
        let now = ContinuousClock.now
        return entries.withLock { map in
            guard let entry = map[id] else { return .miss }
            guard entry.expires > now else {
                map[id] = nil
                return .miss
            }
            switch entry.value {
            case .product(let p): return .hit(p)
            case .absent: return .absent
            }
        }
    }

    public func put(_ product: Product, ttl: Duration) async throws {
        store(product.id, .product(product), ttl: ttl)
    }

    public func putAbsent(id: Int64, ttl: Duration) async throws {
        store(id, .absent, ttl: ttl)
    }

    public func invalidate(id: Int64) async throws {
        _ = entries.withLock { $0.removeValue(forKey: id) }
    }

    private func store(_ id: Int64, _ value: Value, ttl: Duration) {
        let now = ContinuousClock.now
        entries.withLock { map in
            if map.count >= capacity, map[id] == nil {
                // Drop expired entries; if still full, drop an arbitrary tenth.
                map = map.filter { $0.value.expires > now }
                if map.count >= capacity {
                    for key in map.keys.prefix(max(capacity / 10, 1)) { map[key] = nil }
                }
            }
            map[id] = Entry(value: value, expires: now + ttl)
        }
    }
}
