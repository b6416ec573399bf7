import Foundation
import HummingbirdTesting
import MariaDB
import StorefrontApp
import StorefrontCore
@testable import StorefrontMariaDB
import Synchronization
import Testing

/// Whether a background statement has returned yet.
final class Finished: Sendable {
    private let state = Mutex(false)
    var value: Bool { state.withLock { $0 } }
    func set() { state.withLock { $0 = true } }
}

extension LoadDrills.MariaDBFailoverTests {
    /// Phase 0 of the drill, on the drill pair as `scripts/mariadb-pair up` made it (lossless semi-sync):
    /// a commit the replica never received is never acknowledged; a promotion that would lose it is refused and
    /// leaves the primary writable; a stopped replica is refused before anything is fenced; an operator can
    /// unfence; two writable servers make every app server refuse writes. Leaves the pair as it found it.
    func losslessPromotion(primaryURL: String, replicaURL: String) async throws {
        let primary = try MariaDBConfiguration(url: primaryURL)
        let replica = try MariaDBConfiguration(url: replicaURL)
        let operations = MariaDBOperations(nodes: [primary, replica], adminUser: "ops", adminPassword: "opspass")
        func readOnly(_ index: Int) async -> Bool? { await operations.status()[index].readOnly }
        let start = await operations.status()
        #expect(start[0].readOnly == false && start[1].readOnly == true, "the pair starts as made: \(start)")

        let app = try await MariaDBConnection.connect(primary)
        let probe = try await MariaDBConnection.connect(primary)
        let opsReplica = try await MariaDBConnection.connect(operations.nodes[1])
        _ = try await app.withSession { try $0.execute("CREATE TABLE lossless_probe (id INT PRIMARY KEY)") }
        try await waitUntil("the probe table replicated") {
            (try? await opsReplica.query("SELECT COUNT(*) AS n FROM `\(replica.database!)`.lossless_probe")) != nil
        }
        func rows(_ connection: MariaDBConnection, database: String? = nil) async throws -> Int {
            let table = database.map { "`\($0)`.lossless_probe" } ?? "lossless_probe"
            return try await connection.query("SELECT COUNT(*) AS n FROM \(table)").first?.decode("n", as: Int.self) ?? -1
        }

        // 1. The replica stops receiving: a commit on the primary waits for it, however long (no silent fallback
        //    to asynchronous replication, which would acknowledge a write a promotion then loses).
        _ = try await opsReplica.withSession { try $0.execute("STOP SLAVE IO_THREAD") }
        let finished = Finished()
        let pending = Task {
            defer { finished.set() }
            _ = try await app.withSession { try $0.execute("INSERT INTO lossless_probe VALUES (1)") }
        }
        try await Task.sleep(for: .seconds(3))
        #expect(!finished.value, "a commit no replica received is not acknowledged")
        #expect(try await rows(probe) == 0, "nor visible")

        // 2. Promoting the replica now would lose that write: refused, and the primary is left writable.
        let refusedBehind = await #expect(throws: MariaDBError.self) { try await operations.promote(operations.nodes[1], catchUp: .seconds(2)) }
        print("[measure] lossless: promotion of a replica that lacks the primary's binlog refused: \(refusedBehind.map { "\($0)" } ?? "-")")
        let afterRefusal = await operations.status()
        #expect(afterRefusal[0].readOnly == false, "a refused promotion leaves the primary writable")
        #expect(afterRefusal[1].readOnly == true, "and the replica a replica")

        // 3. The replica receives again: the commit is acknowledged, and the replica has it.
        _ = try await opsReplica.withSession { try $0.execute("START SLAVE IO_THREAD") }
        try await pending.value
        #expect(try await rows(probe) == 1)
        try await waitUntil("the replica applied the write") { (try? await rows(opsReplica, database: replica.database)) == 1 }

        // 4. A replica that does not apply what it receives (SQL thread stopped) is refused before anything is fenced.
        _ = try await opsReplica.withSession { try $0.execute("STOP SLAVE SQL_THREAD") }
        let refusedStopped = await #expect(throws: MariaDBError.self) { try await operations.promote(operations.nodes[1], catchUp: .seconds(2)) }
        #expect(refusedStopped?.message.contains("SQL thread") == true, "\(refusedStopped.map { "\($0)" } ?? "-")")
        let notFenced = await readOnly(0)
        #expect(notFenced == false, "nothing was fenced")
        _ = try await opsReplica.withSession { try $0.execute("START SLAVE SQL_THREAD") }

        // 5. The way back from a fence: unfence (refused for a replica, and while another server is writable).
        try await operations.fence(operations.nodes[0])
        let fencedNow = await readOnly(0)
        #expect(fencedNow == true)
        let replicaRefused = await #expect(throws: MariaDBError.self) { try await operations.unfence(operations.nodes[1]) }
        #expect(replicaRefused?.message.contains("replica") == true)
        try await operations.unfence(operations.nodes[0])
        let unfenced = await readOnly(0)
        #expect(unfenced == false)
        try await operations.unfence(operations.nodes[0])  // idempotent

        // 6. Two writable servers: the app server refuses writes (503 + Retry-After) rather than guess, and
        //    takes them again once one is fenced.
        let storefront = try await makeStorefront {
            $0.databaseURL = primaryURL
            $0.mariadb.replicaURLs = [replicaURL]
        }
        let mariadb = try #require(storefront.database.mariadb)
        try await storefront.test { client in
            let id = try await client.createProduct(stock: 10)
            #expect(try await client.purchase(id, key: "two-writable-0").status == .created)
            _ = try await opsReplica.withSession { try $0.execute("SET GLOBAL read_only = OFF") }
            await mariadb.monitor()
            let refused = try await client.purchase(id, key: "two-writable-1")
            #expect(refused.status == .serviceUnavailable && refused.error == "service_unavailable", "\(refused.raw)")
            #expect(refused.headers[.retryAfter] != nil)
            #expect(mariadb.writesRefused != nil, "the engine says why")
            _ = try await opsReplica.withSession { try $0.execute("SET GLOBAL read_only = ON") }
            await mariadb.monitor()
            #expect(mariadb.writesRefused == nil)
            #expect(try await client.purchase(id, key: "two-writable-1").status == .created, "writes resume once one server is writable")

            // 7. The replica stops receiving: the primary would block every commit. The app server says so
            //    (refused at once: 503, the reason in /health/ready) instead of hanging every purchase.
            _ = try await opsReplica.withSession { try $0.execute("STOP SLAVE IO_THREAD") }
            try await waitUntil("the primary no longer counts its replica") {
                await mariadb.monitor()
                return mariadb.writesRefused?.contains("waits for a replica") == true
            }
            let started = ContinuousClock.now
            let blocked = try await client.purchase(id, key: "blocked-1")
            #expect(blocked.status == .serviceUnavailable && blocked.headers[.retryAfter] != nil, "\(blocked.raw)")
            #expect(ContinuousClock.now - started < .seconds(2), "answered at once, not after the read timeout")
            let ready = try await client.call(.get, "/health/ready")
            #expect(ready.raw.contains("database_writes") && ready.raw.contains("waits for a replica"), "\(ready.raw)")
            _ = try await opsReplica.withSession { try $0.execute("START SLAVE IO_THREAD") }
            try await waitUntil("writes accepted again") {
                await mariadb.monitor()
                return mariadb.writesRefused == nil
            }
            #expect(try await client.purchase(id, key: "blocked-1").status == .created)
        }
        await storefront.shutdown()
        for connection in [app, probe, opsReplica] { await connection.close() }
    }
}
