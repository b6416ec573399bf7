import Foundation
import RedisClient
import StorefrontContracts
import StorefrontCore
@testable import StorefrontRedis
import Testing

func testRedisClient(_ variable: String = "STOREFRONT_TEST_REDIS_URL") throws -> RedisClient {
    try RedisClient(configuration: try RedisConfiguration(url: try TestServers.required(variable)))
}

@Suite("Redis adapters (real redis-server)")
struct RedisAdapterTests {
    @Test func cacheContract() async throws { try await ProductCacheContract.run(RedisProductCache(redis: try testRedisClient(), keys: try RedisKeys())) }
    @Test func lockContract() async throws { try await ProductLockContract.run(RedisProductLock(redis: try testRedisClient(), keys: try RedisKeys())) }
    @Test func counterContract() async throws { try await StockCounterContract.run(RedisStockCounter(redis: try testRedisClient(), keys: try RedisKeys())) }

    @Test func cacheContractOnCluster() async throws {
        try await ProductCacheContract.run(RedisProductCache(redis: try testRedisClient("STOREFRONT_TEST_REDIS_CLUSTER_URL"), keys: try RedisKeys()))
    }
    @Test func lockContractOnCluster() async throws {
        try await ProductLockContract.run(RedisProductLock(redis: try testRedisClient("STOREFRONT_TEST_REDIS_CLUSTER_URL"), keys: try RedisKeys()))
    }
    @Test func counterContractOnCluster() async throws {
        try await StockCounterContract.run(RedisStockCounter(redis: try testRedisClient("STOREFRONT_TEST_REDIS_CLUSTER_URL"), keys: try RedisKeys()))
    }

    /// Two deployments sharing one Redis (Cluster) with different prefixes never see each other's counters, cached
    /// products or locks.
    @Test func prefixesSeparateDeployments() async throws {
        let redis = try testRedisClient("STOREFRONT_TEST_REDIS_CLUSTER_URL")
        let blue = try RedisKeys(prefix: "blue:"), green = try RedisKeys(prefix: "green:")
        let id = Int64.random(in: 1_000_000...9_000_000_000)
        try await RedisStockCounter(redis: redis, keys: blue).set(productId: id, value: 0)
        #expect(try await RedisStockCounter(redis: redis, keys: green).get(productId: id) == nil)
        #expect(try await RedisProductLock(redis: redis, keys: blue).acquire(productId: id, token: "b", ttl: .seconds(5)))
        #expect(try await RedisProductLock(redis: redis, keys: green).acquire(productId: id, token: "g", ttl: .seconds(5)))
        let p = Product(id: id, sku: "k", name: "n", description: "", priceMinor: 1, currency: "USD", stock: 1, version: 1, updatedAt: Date())
        try await RedisProductCache(redis: redis, keys: blue).put(p, ttl: .seconds(5))
        #expect(try await RedisProductCache(redis: redis, keys: green).get(id: id) == .miss)
        #expect(blue.stock(id) == "blue:product:{\(id)}:stock")
        #expect(HashSlot.slot(of: blue.stock(id)) == HashSlot.slot(of: green.lock(id)), "the hash tag is still the product id")
        #expect(throws: RedisKeysError.self) { try RedisKeys(prefix: "a{b}") }
        #expect(throws: RedisKeysError.self) { try RedisKeys(prefix: "has space") }
        for keys in [blue, green] { for key in [keys.details(id), keys.stock(id), keys.lock(id)] { try await redis.send(["DEL", .string(key)], key: key) } }
    }

    @Test func keyLayoutAndTTL() async throws {
        let redis = try testRedisClient()
        let keys = try RedisKeys()
        let id = Int64.random(in: 1_000_000...9_000_000_000)
        let p = Product(id: id, sku: "k", name: "n", description: "", priceMinor: 1, currency: "USD", stock: 1, version: 1, updatedAt: Date())
        try await RedisProductCache(redis: redis, keys: keys).put(p, ttl: .seconds(300))
        let ttl = try #require(try await redis.send(["PTTL", .string("storefront:product:{\(id)}:details")]).int)
        #expect(ttl > 290_000 && ttl <= 300_000, "300 s, less the moments since it was set (a busy machine is slow)")
        try await RedisStockCounter(redis: redis, keys: keys).set(productId: id, value: 7)
        #expect(try await redis.send(["GET", .string("storefront:product:{\(id)}:stock")]).string == "7")
        #expect(try await RedisProductLock(redis: redis, keys: keys).acquire(productId: id, token: "tok", ttl: .seconds(30)))
        #expect(try await redis.send(["GET", .string("storefront:lock:product:{\(id)}")]).string == "tok")
        let lockTTL = try #require(try await redis.send(["PTTL", .string("storefront:lock:product:{\(id)}")]).int)
        #expect(lockTTL > 25_000 && lockTTL <= 30_000)
        // all three keys of one product hash to one cluster slot
        let slots = [keys.details(id), keys.stock(id), keys.lock(id)].map(HashSlot.slot(of:))
        #expect(Set(slots).count == 1)
        #expect(slots[0] == HashSlot.slot(of: "\(id)"), "the hash tag is the product id")
        for key in [keys.details(id), keys.stock(id), keys.lock(id)] { try await redis.send(["DEL", .string(key)]) }
    }

    @Test func healthReportsRedis() async throws {
        try await RedisHealth(redis: try testRedisClient()).checkHealth()
        let down = try RedisClient(configuration: RedisConfiguration(endpoints: [RedisEndpoint(host: "127.0.0.1", port: 1)]))
        await #expect(throws: (any Error).self) { try await RedisHealth(redis: down).checkHealth() }
    }

    /// The console's per-node rows: a standalone server is one row; a node that does not answer is down.
    @Test func healthNodesOfAStandaloneServer() async throws {
        let redis = try testRedisClient()
        let rows = await RedisHealth(redis: redis).healthNodes(checkError: nil)
        #expect(rows.count == 1)
        #expect(rows.first?.role == "standalone" && rows.first?.status == "up" && rows.first?.endpoint == "\(redis.configuration.endpoints[0])")
        let down = RedisClientError.connectionUnavailable("refused")
        let downRows = await RedisHealth(redis: redis).healthNodes(checkError: down)
        #expect(downRows.map(\.status) == ["down"] && downRows.first?.detail?.isEmpty == false, "the check's failure, not a second probe")
    }

    /// Every node of the test cluster (3 masters, 3 replicas), each probed: masters with their slots, replicas
    /// naming their master.
    @Test func healthNodesOfACluster() async throws {
        let redis = try testRedisClient("STOREFRONT_TEST_REDIS_CLUSTER_URL")
        // (a generous bound: the whole suite runs in parallel on two cores)
        let rows = await RedisHealth(redis: redis, nodeTimeout: .seconds(10)).healthNodes(checkError: nil)
        #expect(rows.filter { $0.role == "master" }.count == 3, "\(rows)")
        #expect(rows.filter { $0.role == "replica" }.count == 3, "\(rows)")
        #expect(rows.allSatisfy { $0.status == "up" }, "\(rows)")
        #expect(rows.filter { $0.role == "master" }.allSatisfy { $0.detail?.hasPrefix("slots ") == true })
        let masters = Set(rows.filter { $0.role == "master" }.map(\.endpoint))
        for replica in rows where replica.role == "replica" {
            let of = replica.detail?.replacingOccurrences(of: "replica of ", with: "") ?? ""
            #expect(masters.contains(of), "\(replica)")
        }
    }

    /// A cluster whose first configured node is dead: the list comes from the next one, and the dead one is a
    /// row that says so.
    @Test func healthNodesSurviveADeadFirstNode() async throws {
        let url = try TestServers.required("STOREFRONT_TEST_REDIS_CLUSTER_URL")
        var config = try RedisConfiguration(url: url)
        config.endpoints.insert(RedisEndpoint(host: "127.0.0.1", port: 1), at: 0)
        let redis = try RedisClient(configuration: config)
        let rows = await RedisHealth(redis: redis, nodeTimeout: .seconds(10)).healthNodes(checkError: nil)
        #expect(rows.filter { $0.role == "master" && $0.status == "up" }.count == 3, "\(rows)")
        await redis.close()
    }

    /// `CLUSTER NODES` as Redis 7 prints it, with a failed master, a suspected one and a replica.
    @Test func clusterNodesParsing() {
        let text = """
        a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
        b2 127.0.0.1:7002@17002,host-b master,fail - 1 2 2 disconnected 5461-10922
        c3 127.0.0.1:7003@17003 master,fail? - 1 2 3 connected 10923-16383
        d4 127.0.0.1:7004@17004 slave a1 0 2 1 connected
        e5 :0@0 master,noaddr - 0 0 0 disconnected
        """
        let nodes = RedisHealth.parseClusterNodes(text)
        #expect(nodes.map { "\($0.endpoint)" } == ["127.0.0.1:7001", "127.0.0.1:7004", "127.0.0.1:7002", "127.0.0.1:7003"])
        let rows = nodes.map(\.health)
        #expect(rows.map(\.status) == ["up", "up", "down", "degraded"])
        #expect(rows.map(\.role) == ["master", "replica", "master", "master"])
        #expect(rows[0].detail == "slots 0-5460")
        #expect(rows[1].detail == "replica of 127.0.0.1:7001")
        #expect(rows[2].detail?.contains("marks it failed") == true)
    }
}

