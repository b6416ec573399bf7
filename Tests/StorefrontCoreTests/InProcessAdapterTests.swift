import StorefrontContracts
import StorefrontCore
import Testing

@Suite("In-process adapters (embedded default)")
struct InProcessAdapterTests {
    @Test func cache() async throws { try await ProductCacheContract.run(InProcessProductCache()) }
    @Test func lock() async throws { try await ProductLockContract.run(InProcessProductLock()) }
    @Test func counter() async throws { try await StockCounterContract.run(InProcessStockCounter()) }

    @Test func cacheStaysBounded() async throws {
        let cache = InProcessProductCache(capacity: 100)
        for id in 1...1000 {
            try await cache.putAbsent(id: Int64(id), ttl: .seconds(60))
        }
        var present = 0
        for id in 1...1000 where try await cache.get(id: Int64(id)) != .miss { present += 1 }
        #expect(present <= 100)
        #expect(try await cache.get(id: 1000) == .absent, "the newest entry is kept")
    }
}
