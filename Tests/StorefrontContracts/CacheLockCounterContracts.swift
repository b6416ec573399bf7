import Foundation
import StorefrontCore
import Testing

/// The contracts every `ProductCache`, `ProductLock` and `StockCounter` adapter must satisfy.
/// Ids are random so suites can share one server.
public enum ProductCacheContract {
    public static func run(_ cache: any ProductCache) async throws {
        let id = Int64.random(in: 1_000_000...9_000_000_000)
        let p = Product(id: id, sku: "c-\(id)", name: "Cached ✓", description: "ünïcode", priceMinor: 1999, currency: "USD",
                        stock: 10, version: 4, updatedAt: Date(timeIntervalSince1970: 1_760_000_000.123))
        #expect(try await cache.get(id: id) == .miss)
        try await cache.put(p, ttl: .seconds(60))
        guard case .hit(let back) = try await cache.get(id: id) else { Issue.record("expected a hit"); return }
        #expect(back.id == p.id && back.sku == p.sku && back.name == p.name && back.description == p.description)
        #expect(back.priceMinor == 1999 && back.stock == 10 && back.version == 4)
        #expect(abs(back.updatedAt.timeIntervalSince(p.updatedAt)) < 0.001)
        try await cache.invalidate(id: id)
        #expect(try await cache.get(id: id) == .miss)
        try await cache.putAbsent(id: id, ttl: .seconds(60))
        #expect(try await cache.get(id: id) == .absent)
        // (A generous TTL: on a loaded machine the read after the write can take a while.)
        try await cache.put(p, ttl: .seconds(2))
        #expect(try await cache.get(id: id) != .miss)
        try await Task.sleep(for: .milliseconds(2500))
        #expect(try await cache.get(id: id) == .miss, "entries expire")
        try await cache.invalidate(id: id)  // invalidating a missing entry is fine
    }
}

public enum ProductLockContract {
    public static func run(_ lock: any ProductLock) async throws {
        let id = Int64.random(in: 1_000_000...9_000_000_000)
        #expect(try await lock.acquire(productId: id, token: "a", ttl: .seconds(30)))
        #expect(try await !lock.acquire(productId: id, token: "b", ttl: .seconds(30)), "held")
        #expect(try await !lock.release(productId: id, token: "b"), "only the owner's token releases")
        #expect(try await !lock.extend(productId: id, token: "b", ttl: .seconds(30)), "only the owner extends")
        #expect(try await !lock.acquire(productId: id, token: "b", ttl: .seconds(30)), "still held after a foreign release")
        #expect(try await lock.extend(productId: id, token: "a", ttl: .seconds(30)))
        #expect(try await lock.release(productId: id, token: "a"))
        #expect(try await !lock.release(productId: id, token: "a"), "second release is a no-op")
        #expect(try await lock.acquire(productId: id, token: "b", ttl: .milliseconds(150)))
        try await Task.sleep(for: .milliseconds(400))
        #expect(try await lock.acquire(productId: id, token: "c", ttl: .seconds(30)), "an expired lock can be taken")
        #expect(try await !lock.release(productId: id, token: "b"), "the expired owner cannot release the new owner's lock")
        #expect(try await lock.release(productId: id, token: "c"))

        // Under contention exactly one of many acquires wins.
        let other = id + 1
        let winners = try await withThrowingTaskGroup(of: Bool.self) { group in
            for n in 0..<50 { group.addTask { try await lock.acquire(productId: other, token: "t\(n)", ttl: .seconds(30)) } }
            var count = 0
            for try await won in group where won { count += 1 }
            return count
        }
        #expect(winners == 1)
    }
}

public enum StockCounterContract {
    public static func run(_ counter: any StockCounter) async throws {
        let id = Int64.random(in: 1_000_000...9_000_000_000)
        #expect(try await counter.get(productId: id) == nil)
        #expect(try await counter.reserve(productId: id, qty: 1) == .missing)
        try await counter.decrement(productId: id, by: 1)
        try await counter.giveBack(productId: id, qty: 1)
        #expect(try await counter.get(productId: id) == nil, "decrement and giveBack never create the key")
        try await counter.setIfAbsent(productId: id, value: 5)
        try await counter.setIfAbsent(productId: id, value: 99)
        #expect(try await counter.get(productId: id) == 5, "setIfAbsent never overwrites")
        #expect(try await counter.reserve(productId: id, qty: 2) == .reserved(remaining: 3))
        #expect(try await counter.reserve(productId: id, qty: 4) == .insufficient(available: 3))
        #expect(try await counter.get(productId: id) == 3, "a refused reservation changes nothing")
        try await counter.giveBack(productId: id, qty: 2)
        try await counter.decrement(productId: id, by: 1)
        #expect(try await counter.get(productId: id) == 4)
        // compare-and-set: only from the expected value; never creates the key
        #expect(try await counter.compareAndSet(productId: id, expected: 3, value: 10) == false)
        #expect(try await counter.get(productId: id) == 4)
        #expect(try await counter.compareAndSet(productId: id, expected: 4, value: 10))
        #expect(try await counter.get(productId: id) == 10)
        try await counter.forget(productId: id)
        #expect(try await counter.get(productId: id) == nil)
        #expect(try await counter.compareAndSet(productId: id, expected: 0, value: 10) == false)
        #expect(try await counter.get(productId: id) == nil)

        // 100 concurrent reservations of 1 against 30: exactly 30 succeed, the counter ends at 0.
        try await counter.set(productId: id, value: 30)
        let reserved = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<100 {
                group.addTask {
                    if case .reserved = try await counter.reserve(productId: id, qty: 1) { return true }
                    return false
                }
            }
            var count = 0
            for try await ok in group where ok { count += 1 }
            return count
        }
        #expect(reserved == 30)
        #expect(try await counter.get(productId: id) == 0)
        try await counter.forget(productId: id)
    }
}
