import Foundation
import MariaDB
import StorefrontApp
import StorefrontCore
@testable import StorefrontMariaDB
import Testing

extension LoadDrills {
    /// Issue 10.2: automatic promotion decided from one app server's view promoted the replica when only that
    /// server had lost the primary — two primaries. A partition in which one app server cannot reach the
    /// primary (it goes through a TCP proxy that is then killed) while the replica still replicates from it
    /// must promote nobody.
    @Suite("MariaDB partition seen by one app server", .serialized)
    struct PartitionTests {
        @Test func aPrimaryOnlyOneServerLostIsNotReplaced() async throws {
            let (primaryURL, replicaURLs) = try await freshMariaDBURLs(primary: "STOREFRONT_TEST_MARIADB_URL",
                                                                       replica: "STOREFRONT_TEST_MARIADB_REPLICA_URL")
            let primary = try MariaDBConfiguration(url: primaryURL)
            let proxyPort = Int.random(in: 30_000...39_000)
            let proxy = Process()
            proxy.executableURL = URL(fileURLWithPath: "/usr/bin/socat")
            proxy.arguments = ["TCP-LISTEN:\(proxyPort),bind=127.0.0.1,reuseaddr,fork", "TCP:\(primary.host):\(primary.port)"]
            try proxy.run()
            // socat forks one child per connection: the partition kills them all (the pool's open ones too).
            @Sendable func cut() async throws {
                let kill = Process()
                kill.executableURL = URL(fileURLWithPath: "/usr/bin/pkill")
                kill.arguments = ["-9", "-f", "TCP-LISTEN:\(proxyPort),"]
                try kill.run()
                // pkill done (polled: waitUntilExit spins on Linux in a task), then the kernel's resets delivered.
                for _ in 0..<100 where kill.isRunning { try await Task.sleep(for: .milliseconds(50)) }
                try await Task.sleep(for: .milliseconds(300))
            }
            try await Task.sleep(for: .milliseconds(300))
            let viaProxy = primaryURL.replacingOccurrences(of: ":\(primary.port)/", with: ":\(proxyPort)/")
            let storefront = try await makeStorefront {
                $0.databaseURL = viaProxy
                $0.mariadb.replicaURLs = replicaURLs
                $0.mariadb.checkSeconds = 1
                $0.mariadb.autoPromoteSeconds = 1
                $0.mariadb.adminUser = "ops"
                $0.mariadb.adminPassword = "opspass"
            }
            let mariadb = try #require(storefront.database.mariadb)
            defer { Task { try? await cut() } }
            let monitorRound = try #require(storefront.database.engine.monitorRound)
            await monitorRound()
            // The partition: this app server loses the primary; the replica keeps replicating from it.
            try await cut()
            // This app server has lost the primary: writes fail.
            await #expect(throws: (any Error).self) {
                try await storefront.database.products.create(NewProduct(sku: "cut-off", name: "n", description: "", priceMinor: 1,
                                                                         currency: "USD", stock: 1), now: Date())
            }
            for _ in 0..<5 {
                await monitorRound()
                try await Task.sleep(for: .milliseconds(600))
            }
            #expect(mariadb.automaticPromotions == 0, "nobody was promoted")
            let operations = MariaDBOperations(nodes: [primary, try MariaDBConfiguration(url: replicaURLs[0])], adminUser: "ops", adminPassword: "opspass")
            let statuses = await operations.status()
            #expect(statuses[0].reachable && statuses[0].readOnly == false, "the real primary is still the primary: \(statuses[0])")
            #expect(statuses[1].readOnly == true && statuses[1].ioRunning == true, "the replica still replicates from it: \(statuses[1])")
            try await cut()
        }
    }
}
