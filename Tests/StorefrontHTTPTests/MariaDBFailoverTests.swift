import Foundation
import HummingbirdTesting
import MariaDB
import StorefrontApp
import StorefrontCore
@testable import StorefrontMariaDB
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension LoadDrills {
    /// Drill on the "drill" MariaDB pair: SIGKILL the primary while purchases run, promote the replica (the
    /// code behind `storefront db promote`), and check that purchases resume against the new primary without a
    /// restart, no confirmed order is lost, stock is conserved, every saga ends, and the old primary comes back
    /// fenced (read-only) until it is re-attached as a replica.
    @Suite("MariaDB primary failover drill", .serialized)
    struct MariaDBFailoverTests {
        @Test func primaryKilledDuringAPurchaseLoop() async throws {
            let dir = try requiredEnvironment("STOREFRONT_TEST_MARIADB_DRILL_DIR")
            let (primaryURL, replicaURLs) = try await freshMariaDBURLs(primary: "STOREFRONT_TEST_MARIADB_DRILL_URL", replica: "STOREFRONT_TEST_MARIADB_DRILL_REPLICA_URL")
            let (losslessURL, losslessReplicaURLs) = try await freshMariaDBURLs(primary: "STOREFRONT_TEST_MARIADB_DRILL_URL", replica: "STOREFRONT_TEST_MARIADB_DRILL_REPLICA_URL")
            try await losslessPromotion(primaryURL: losslessURL, replicaURL: losslessReplicaURLs[0])
            let storefront = try await makeStorefront {
                $0.databaseURL = primaryURL
                $0.mariadb.replicaURLs = replicaURLs
                $0.sagaLeaseSeconds = 2
                $0.recoveryIntervalSeconds = 1
                $0.mariadb.checkSeconds = 1
                $0.mariadb.replicaMaxLagSeconds = 1
            }
            let mariadb = try #require(storefront.database.mariadb)
            let primary = try MariaDBConfiguration(url: primaryURL)
            let replica = try MariaDBConfiguration(url: replicaURLs[0])
            let operations = MariaDBOperations(nodes: [primary, replica], adminUser: "ops", adminPassword: "opspass")
            let workers = 4, perWorker = 25, killAfter = 30

            // First, a replica whose replication stops leaves read rotation (reads go to the primary) and
            // comes back when it replicates again.
            let opsReplica = try await MariaDBConnection.connect(operations.nodes[1])
            _ = try await opsReplica.withSession { try $0.execute("STOP SLAVE") }
            await mariadb.checkReplicas()
            #expect(mariadb.replicaStatus.first?.inRotation == false)
            #expect(mariadb.replicaStatus.first?.reason.contains("replication stopped") == true, "\(mariadb.replicaStatus)")
            #expect(try await storefront.database.products.products(after: nil, limit: 1, consistency: .replica).items.isEmpty)
            _ = try await opsReplica.withSession { try $0.execute("START SLAVE") }
            try await waitUntil("the replica is back in rotation") {
                await mariadb.checkReplicas()
                return mariadb.replicaStatus.first?.inRotation == true
            }
            // A replica lagging past the threshold (1 s here; MASTER_DELAY makes it lag) leaves rotation too.
            _ = try await opsReplica.withSession { s in
                try s.execute("STOP SLAVE")
                try s.execute("CHANGE MASTER TO MASTER_DELAY = 30")
                try s.execute("START SLAVE")
            }
            _ = try await storefront.database.products.create(NewProduct(sku: "lag-probe", name: "Lag probe", description: "", priceMinor: 1,
                                                                         currency: "USD", stock: 1), now: Date())
            try await waitUntil("the lagging replica leaves rotation") {
                await mariadb.checkReplicas()
                return mariadb.replicaStatus.first?.inRotation == false && mariadb.replicaStatus.first?.reason.hasPrefix("lagging") == true
            }
            _ = try await opsReplica.withSession { s in
                try s.execute("STOP SLAVE")
                try s.execute("CHANGE MASTER TO MASTER_DELAY = 0")
                try s.execute("START SLAVE")
            }
            await opsReplica.close()
            try await waitUntil("the caught-up replica is back in rotation") {
                await mariadb.checkReplicas()
                return mariadb.replicaStatus.first?.inRotation == true
            }

            let progress = DrillProgress()

            let (id, outcomes, keys) = try await storefront.test { client in
                let id = try await client.createProduct(stock: 1000)
                let (outcomes, keys) = try await drillPurchaseLoop(client, product: id, workers: workers, perWorker: perWorker,
                                                                   keyPrefix: "db-drill", killAfter: killAfter, progress: progress) {
                    try Self.kill(pidFile: "\(dir)/primary.pid")
                    progress.killed.withLock { $0 = (primary.port, .now) }
                    // The operator (or automatic mode) promotes the replica.
                    let promotion = try await operations.promote(replica)
                    print("[measure] mariadb failover: promoted \(promotion.promoted) at \(promotion.gtidPosition), \(ContinuousClock.now - progress.killed.withLock { $0! }.at) after the kill")
                }
                return (id, outcomes, keys)
            }
            let victim = try #require(progress.killed.withLock { $0 })
            let resumed = progress.firstSuccessAfterKill.withLock { $0 }.map { $0 - victim.at }
            print("[measure] mariadb failover purchases=\(outcomes.count) confirmed=\(outcomes.filter { $0 == "confirmed" }.count) firstPurchaseAfterKill=\(resumed.map { "\($0)" } ?? "none") primarySwitches=\(mariadb.primaryGeneration)")
            #expect(outcomes.count == workers * perWorker)
            #expect(outcomes.allSatisfy { $0 == "confirmed" }, "\(Dictionary(grouping: outcomes, by: { $0 }).mapValues(\.count))")
            #expect(mariadb.primaryEndpoint.hasPrefix("\(replica.host):\(replica.port)"), "the app switched to the promoted replica by itself")

            // Invariants, by SQL on the new primary: every purchase the clients saw confirmed is there, confirmed.
            var settle = ContinuousClock.now + .seconds(20)
            while try await storefront.services.sagas.countUnfinished() > 0, ContinuousClock.now < settle {
                _ = try? await storefront.recovery.recoverOnce()
                try await Task.sleep(for: .milliseconds(200))
            }
            let row = try await mariadb.read(.primary) { s in
                try s.query("""
                    SELECT p.stock, p.reserved,
                        (SELECT COALESCE(SUM(qty), 0) FROM orders WHERE product_id = p.id AND status = 'CONFIRMED') AS sold,
                        (SELECT COUNT(*) FROM sagas WHERE state NOT IN ('CONFIRMED', 'COMPENSATED', 'FAILED')) AS unfinished,
                        (SELECT COUNT(*) FROM sagas s JOIN orders o ON o.saga_id = s.id
                            WHERE s.idempotency_key LIKE 'db-drill-%' AND s.state = 'CONFIRMED' AND o.status = 'CONFIRMED') AS confirmed,
                        (SELECT COUNT(*) FROM payments WHERE status = 'CHARGED') AS charged
                    FROM products p WHERE p.id = ?
                    """, [id]).rows[0]
            }
            let (stock, reserved, sold): (Int64, Int64, Int64) = (try row.decode("stock"), try row.decode("reserved"), try row.decode("sold"))
            #expect(try row.decode("confirmed", as: Int.self) == keys.count, "no confirmed order lost")
            #expect(stock + sold == 1000, "stock conserved")
            #expect(sold == Int64(keys.count))
            #expect(reserved == 0)
            #expect(try row.decode("unfinished", as: Int.self) == 0, "every saga terminal")
            #expect(try row.decode("charged", as: Int.self) == keys.count, "one charge per confirmed order")

            // The old primary restarts read-only: fenced. The app keeps writing to the new primary.
            try await Self.restartOldPrimary(dir: dir)
            var onOld = primary
            onOld.database = nil
            let old = try await MariaDBConnection.connect(onOld)
            let refused = await #expect(throws: MariaDBError.self) { try await old.query("CREATE DATABASE storefront_fenced_probe") }
            #expect(refused?.kind == .readOnly, "the old primary is fenced")
            await old.close()
            await mariadb.monitor()
            #expect(mariadb.primaryEndpoint.hasPrefix("\(replica.host):\(replica.port)"), "a fenced old primary is not chosen")
            let after = try await storefront.test { client in try await client.purchase(id, qty: 1, key: "db-drill-after") }
            #expect(after.status == .created)

            // Re-attached as a replica of the new primary, it catches up.
            try await operations.attach(primary, to: replica, replicationUser: "repl", replicationPassword: "replpass")
            settle = ContinuousClock.now + .seconds(20)
            var caughtUp = false
            while !caughtUp, ContinuousClock.now < settle {
                let statuses = await operations.status()
                caughtUp = statuses[0].role == "replica" && statuses[0].replicationRunning == true && statuses[0].gtidPosition == statuses[1].gtidPosition
                if !caughtUp { try await Task.sleep(for: .milliseconds(200)) }
            }
            let finalStatus = await operations.status()
            #expect(caughtUp, "\(finalStatus)")

            try await automaticPromotion(primaryURL: replicaURLs[0], replicaURL: primaryURL, dir: dir)
        }

        /// Phase 2, on the re-attached pair (the promoted server is the primary, the old primary its replica):
        /// a Storefront with automatic promotion on; the primary is killed; the app promotes the replica by
        /// itself (elected through the named lock) and purchases resume.
        /// Two app servers run with automatic promotion; exactly one of them promotes.
        func automaticPromotion(primaryURL: String, replicaURL: String, dir: String) async throws {
            func server(_ name: String) async throws -> Storefront {
                try await makeStorefront(instance: name) {
                    $0.databaseURL = primaryURL
                    $0.mariadb.replicaURLs = [replicaURL]
                    $0.mariadb.autoPromoteSeconds = 1
                    $0.mariadb.checkSeconds = 1
                    $0.mariadb.adminUser = "ops"
                    $0.mariadb.adminPassword = "opspass"
                    $0.sagaLeaseSeconds = 2
                    $0.recoveryIntervalSeconds = 1
                }
            }
            let storefront = try await server("auto-1")
            let other = try await server("auto-2")
            let mariadb = try #require(storefront.database.mariadb)
            let otherDatabase = try #require(other.database.mariadb)
            let replica = try MariaDBConfiguration(url: replicaURL)
            // The second server runs (its monitor included) until it too has switched to the promoted replica.
            let second = Task {
                try await other.test { _ in
                    try await waitUntil("the second server switched", timeout: .seconds(60)) {
                        otherDatabase.primaryEndpoint.hasPrefix("\(replica.host):\(replica.port)")
                    }
                }
            }
            let (id, confirmedAfterKill, promotedAfter) = try await storefront.test { client -> (Int64, Int, Duration?) in
                let id = try await client.createProduct(stock: 100)
                for i in 0..<5 { #expect(try await client.purchase(id, key: "auto-before-\(i)").status == .created) }
                try Self.kill(pidFile: "\(dir)/replica.pid")  // the promoted server, primary since phase 1
                let killed = ContinuousClock.now
                var confirmed = 0
                var promotedAfter: Duration?
                for i in 0..<5 {
                    let deadline = ContinuousClock.now + .seconds(30)
                    var reply = try await client.purchase(id, key: "auto-after-\(i)")
                    while reply.status != .created, ContinuousClock.now < deadline, reply.error == "service_unavailable" {
                        try await Task.sleep(for: .milliseconds(200))
                        reply = try await client.purchase(id, key: "auto-after-\(i)")
                    }
                    if reply.status == .created { confirmed += 1 }
                    if promotedAfter == nil, reply.status == .created { promotedAfter = ContinuousClock.now - killed }
                }
                return (id, confirmed, promotedAfter)
            }
            try await second.value
            print("[measure] mariadb automatic promotion: purchases resumed \(promotedAfter.map { "\($0)" } ?? "never") after the kill; promotions by server: \(mariadb.automaticPromotions), \(otherDatabase.automaticPromotions)")
            #expect(confirmedAfterKill == 5, "purchases resumed after the automatic promotion")
            #expect(mariadb.automaticPromotions + otherDatabase.automaticPromotions == 1, "one elected server promoted, once")
            #expect(mariadb.primaryEndpoint.hasPrefix("\(replica.host):\(replica.port)"), "the replica was promoted and chosen")
            let row = try await mariadb.read(.primary) { s in
                try s.query("""
                    SELECT p.stock, p.reserved, @@global.read_only AS ro,
                        (SELECT COALESCE(SUM(qty), 0) FROM orders WHERE product_id = p.id AND status = 'CONFIRMED') AS sold
                    FROM products p WHERE p.id = ?
                    """, [id]).rows[0]
            }
            #expect(try row.decode("ro", as: Int.self) == 0)
            #expect(try row.decode("sold", as: Int64.self) == 10)
            #expect(try row.decode("stock", as: Int64.self) == 90)
            #expect(try row.decode("reserved", as: Int64.self) == 0)
        }

        func waitUntil(_ what: String, timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws {
            let deadline = ContinuousClock.now + timeout
            while try await !condition() {
                guard ContinuousClock.now < deadline else { Issue.record("timed out waiting until \(what)"); return }
                try await Task.sleep(for: .milliseconds(100))
            }
        }

        static func kill(pidFile: String) throws {
            let pidText = try String(contentsOfFile: pidFile, encoding: .utf8)
            let pid = try #require(Int32(pidText.trimmingCharacters(in: .whitespacesAndNewlines)))
            #expect(Glibc.kill(pid, SIGKILL) == 0)
        }

        /// `scripts/mariadb-pair start drill primary` (the same flags: read_only=ON at start).
        static func restartOldPrimary(dir: String) async throws {
            let root = URL(fileURLWithPath: dir).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            // system(3) on a dispatch thread: it blocks, and the cooperative pool must not.
            let command = "cd '\(root.path)' && scripts/mariadb-pair start drill primary"
            let status = await withCheckedContinuation { continuation in
                DispatchQueue.global().async { continuation.resume(returning: system(command)) }
            }
            #expect(status == 0, "the old primary restarted")
        }
    }
}
