import Foundation
import HummingbirdTesting
import RedisClient
import StorefrontApp
import StorefrontCore
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension LoadDrills {
    /// Drill: kill (SIGKILL, by pid) the Redis master that holds the product's keys while purchases run.
    /// Its replica takes over; purchases resume without restarting Storefront; invariants hold.
    @Suite("Redis master failover drill", .serialized)
    struct RedisFailoverTests {
        @Test(arguments: [PurchaseMode.lock, .atomic])
        func masterKilledDuringAPurchaseLoop(mode: PurchaseMode) async throws {
            let url = try requiredEnvironment("STOREFRONT_TEST_REDIS_DRILL_URL")
            let dir = try requiredEnvironment("STOREFRONT_TEST_REDIS_DRILL_DIR")
            let storefront = try await makeStorefront {
                $0.redis.url = url
                $0.purchaseMode = mode
                $0.lockTTLMilliseconds = 3000
            }
            try await storefront.useUniqueProductIDs()
            let cluster = try #require(storefront.redis?.cluster)
            let workers = 4, perWorker = 30, killAfter = 20
            let progress = DrillProgress()

            let (id, outcomes) = try await storefront.test { client in
                let id = try await client.createProduct(stock: 1000)
                try await cluster.discover()
                let victim = try #require(cluster.master(for: "storefront:product:{\(id)}:stock"))
                let outcomes = try await drillPurchaseLoop(client, product: id, workers: workers, perWorker: perWorker,
                                                           keyPrefix: "drill-\(mode)", killAfter: killAfter, progress: progress) {
                    try Self.kill(victim, dir: dir)
                    progress.killed.withLock { $0 = (victim.port, .now) }
                }.outcomes
                return (id, outcomes)
            }
            let victim = try #require(progress.killed.withLock { $0 })
            let resumed = progress.firstSuccessAfterKill.withLock { $0 }.map { $0 - victim.at }
            print("[measure] redis failover mode=\(mode.rawValue) purchases=\(outcomes.count) confirmed=\(outcomes.filter { $0 == "confirmed" }.count) firstPurchaseAfterKill=\(resumed.map { "\($0)" } ?? "none") loopDoneAfterKill=\(ContinuousClock.now - victim.at)")
            #expect(outcomes.count == workers * perWorker)
            #expect(outcomes.allSatisfy { $0 == "confirmed" }, "\(Dictionary(grouping: outcomes, by: { $0 }).mapValues(\.count))")

            // Invariants, by the database.
            let product = try #require(try await storefront.database.products.product(id: id, consistency: .primary))
            #expect(product.stock == 1000 - Int64(workers * perWorker))
            #expect(try await storefront.database.products.unitsHeld(productId: id) == 0)
            #expect(try await storefront.services.sagas.countUnfinished() == 0)
            #expect(try await storefront.database.payments.chargedTotals().count == workers * perWorker)
            // A replica took over the slot, found without restarting Storefront.
            try await cluster.discover()
            #expect(cluster.master(for: "storefront:product:{\(id)}:stock")?.port != victim.port)
            // No lock outlives its TTL.
            let lockTTL = try await storefront.redis!.send(["PTTL", .string("storefront:lock:product:{\(id)}")], key: "storefront:lock:product:{\(id)}").int ?? -2
            #expect(lockTTL <= 3000)

            try await Self.restart(port: victim.port, dir: dir)
        }

        static func kill(_ endpoint: RedisEndpoint, dir: String) throws {
            let pidText = try String(contentsOfFile: "\(dir)/\(endpoint.port)/redis.pid", encoding: .utf8)
            let pid = try #require(Int32(pidText.trimmingCharacters(in: .whitespacesAndNewlines)))
            #expect(Glibc.kill(pid, SIGKILL) == 0)
        }

        /// Brings the killed node back; it rejoins as a replica of the promoted master, so the next drill can run.
        static func restart(port: Int, dir: String) async throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
            process.arguments = ["\(dir)/\(port)/redis.conf"]
            try process.run()
            // (waitUntilExit can block a cooperative thread forever here; poll instead — redis-server daemonizes.)
            for _ in 0..<100 where process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
            let config = RedisConfiguration(endpoints: [RedisEndpoint(host: "127.0.0.1", port: port)])
            let deadline = ContinuousClock.now + .seconds(15)
            while ContinuousClock.now < deadline {
                if let connection = try? await RedisConnection.connect(to: config.endpoints[0], configuration: config) {
                    let info = (try? await connection.send(["INFO", "replication"]).string) ?? ""
                    await connection.close()
                    if info.contains("role:slave"), info.contains("master_link_status:up") { return }
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            Issue.record("node \(port) did not rejoin as a replica")
        }
    }
}

final class DrillProgress: Sendable {
    let done = Atomic<Int>(0)
    let killed = Mutex<(port: Int, at: ContinuousClock.Instant)?>(nil)
    let firstSuccessAfterKill = Mutex<ContinuousClock.Instant?>(nil)

    /// Records when the first purchase after the kill succeeded (how long the slot was unavailable).
    func noteSuccess() {
        guard killed.withLock({ $0 }) != nil else { return }
        firstSuccessAfterKill.withLock { if $0 == nil { $0 = .now } }
    }
}
