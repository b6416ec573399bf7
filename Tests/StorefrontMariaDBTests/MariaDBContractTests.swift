import Foundation
import MariaDB
import StorefrontBench
import StorefrontContracts
import StorefrontCore
@testable import StorefrontMariaDB
@testable import StorefrontSQL
import Synchronization
import Testing

/// Server URLs from `scripts/test-servers up`; a missing one fails the test (never a silent skip).
func serverURL(_ variable: String) -> String? {
    try? TestServers.required(variable)
}

/// A migrated database of its own (`storefront_t_…`) on the test primary, reached through the test replica
/// too. `replicas` overrides the replica URLs (e.g. a dead one).
func freshMariaDB(primaryVariable: String = "STOREFRONT_TEST_MARIADB_URL", replicaVariable: String = "STOREFRONT_TEST_MARIADB_REPLICA_URL",
                  replicas: [String]? = nil, settings: MariaDBSettings = .init()) async throws -> MariaDBDatabase? {
    guard let primaryURL = serverURL(primaryVariable), let replicaURL = serverURL(replicaVariable) else { return nil }
    let (_, urls) = try await ScratchDatabase.create(on: primaryURL, prefix: "storefront_t",
                                                                    pointing: [primaryURL] + (replicas ?? [replicaURL]))
    let primary = try MariaDBConfiguration(url: urls[0])
    let replicaConfigs = try urls.dropFirst().map { url -> MariaDBConfiguration in
        var c = try MariaDBConfiguration(url: url)
        c.connectTimeout = .seconds(2)
        return c
    }
    let database = MariaDBDatabase(primary: primary, replicas: replicaConfigs, settings: settings)
    try await database.migrate()
    return database
}

@Suite("MariaDB adapters (real primary + replica)")
struct MariaDBContractTests {
    @Test func productStoreContract() async throws {
        guard let db = try await freshMariaDB() else { return }
        try await ProductStoreContract.run(db.products)
        await db.close()
    }

    @Test func sagaStoreContract() async throws {
        guard let db = try await freshMariaDB() else { return }
        let sagas = db.sagas()
        try await SagaStoreContract.run(products: db.products, sagas: sagas)
        // The contract's openings of one product at once went in groups here, and groups committed.
        #expect(sagas.openingGroupCounts.itemsGrouped > 0 && sagas.groupedOpeningOutcomes.together > 0,
                "\(sagas.openingGroupCounts) \(sagas.groupedOpeningOutcomes)")
        await db.close()
    }

    /// A group of one product's openings: one transaction (the product row updated once, for the total), every
    /// saga in its own rows; a group that cannot commit as a whole — a key that is taken, too little stock for
    /// all — is opened one by one, each with its own answer, in order.
    @Test func groupedOpenings() async throws {
        guard let db = try await freshMariaDB() else { return }
        let sagas = db.sagas()
        let p = try await db.products.create(ProductStoreContract.mug("grouped", stock: 11), now: Date())
        let versionBefore = try #require(try await db.products.product(id: p.id, consistency: .primary)).version
        func opening(_ key: String?, qty: Int64 = 2) -> SQLSagaStore.Opening {
            .init(new: NewSaga(idempotencyKey: key, productId: p.id, qty: qty, amountMinor: 100 * qty, currency: "USD", mode: .atomic,
                               owner: "app-1", lease: .seconds(30)),
                  chain: SagaPlan.chain(from: .started, .forward), now: Date())
        }
        func created(_ results: [Result<BeginResult, any Error>]) throws -> [Saga?] {
            try results.map { if case .created(let s) = try $0.get() { s } else { nil } }
        }
        // Together: three sagas, 6 units, one UPDATE of the product row; each saga's rows are its own.
        let openings = [opening("g-1"), opening(nil), opening("g-3", qty: 3)]
        let together = try created(await sagas.open(openings))
        #expect(together.allSatisfy { $0?.state == .orderCreated }, "\(together)")
        #expect(sagas.groupedOpeningOutcomes == (3, 0))
        var product = try #require(try await db.products.product(id: p.id, consistency: .primary))
        #expect(product.stock == 4 && product.version == versionBefore + 1, "stock \(product.stock), version \(product.version)")
        #expect(try await db.products.unitsHeld(productId: p.id) == 7)
        #expect(Set(together.compactMap { $0?.orderId }).count == 3)
        for (saga, opening) in zip(together.compactMap({ $0 }), openings) {
            #expect(saga.id == opening.new.id && saga.idempotencyKey == opening.new.idempotencyKey && saga.qty == opening.new.qty)
            let stored = try #require(try await sagas.saga(id: saga.id))
            #expect(stored.state == .orderCreated && stored.orderId == saga.orderId && stored.qty == opening.new.qty
                    && stored.amountMinor == 100 * opening.new.qty && stored.eventSequence == 3 && stored.fence == SagaFence(owner: "app-1", epoch: 1))
            let lease = stored.leaseUntil.timeIntervalSince(stored.updatedAt)
            #expect(lease > 25 && lease < 35, "lease of \(lease) s")
            #expect(try await sagas.steps(sagaId: saga.id).map(\.name) == [.startSaga, .reserveInventory, .createOrder])
            let order = try #require(try await sagas.order(id: saga.orderId ?? -1))
            #expect(order.sagaId == saga.id && order.qty == opening.new.qty && order.status == .pending)
            let events = try await sagas.records(after: 0, limit: 100, sagaId: saga.id).map { try SagaEvent.decode($0.payload) }
            #expect(events.map(\.type) == [.sagaStarted, .inventoryReserved, .orderCreated] && events.map(\.sequence) == [1, 2, 3])
            #expect(events.allSatisfy { $0.sagaId == saga.id && $0.qty == opening.new.qty && $0.amountMinor == 100 * opening.new.qty })
            #expect(events.last?.orderId == saga.orderId)
        }
        // A taken key: that one finds its saga, the others are created, each alone.
        let withTaken = try await sagas.open([opening("g-4", qty: 1), opening("g-1"), opening(nil, qty: 1)])
        guard case .existing(let found) = try withTaken[1].get() else { Issue.record("\(withTaken)"); return }
        #expect(found.id == together[0]?.id)
        #expect(try created([withTaken[0], withTaken[2]]).allSatisfy { $0?.state == .orderCreated })
        product = try #require(try await db.products.product(id: p.id, consistency: .primary))
        #expect(product.stock == 2 && product.version == versionBefore + 3)
        #expect(sagas.groupedOpeningOutcomes == (3, 3))
        // Too little for all (2 left; 1, 2, 1, 1 asked): split in order into what the stock covers (the first and
        // third, together: the product row updated once — one by one would update it twice) and what it does not
        // (the second and fourth, opened failed, together).
        let short = try created(await sagas.open([opening(nil, qty: 1), opening(nil, qty: 2), opening("g-7", qty: 1), opening(nil, qty: 1)]))
        #expect(short.map { $0?.state } == [.orderCreated, .failed, .orderCreated, .failed])
        #expect(short[1]?.failureCode == .insufficientStock && short[3]?.failureCode == .insufficientStock)
        #expect(short[1]?.orderId == nil && short[3]?.orderId == nil)
        product = try #require(try await db.products.product(id: p.id, consistency: .primary))
        #expect(product.stock == 0 && product.version == versionBefore + 4, "stock \(product.stock), version \(product.version)")
        #expect(try await db.products.unitsHeld(productId: p.id) == 11)
        #expect(sagas.groupedOpeningOutcomes == (7, 3))
        for saga in [short[1], short[3]].compactMap({ $0 }) {
            let events = try await sagas.records(after: 0, limit: 100, sagaId: saga.id).map { try SagaEvent.decode($0.payload) }
            #expect(events.map(\.type) == [.sagaStarted, .sagaFailed])
        }
        await db.close()
    }

    @Test func purchaseLookupContract() async throws {
        guard let db = try await freshMariaDB() else { return }
        try await SagaStoreContract.purchaseLookup(products: db.products, sagas: db.sagas())
        await db.close()
    }

    @Test func orderIDsContract() async throws {
        guard let db = try await freshMariaDB() else { return }
        let a = SQLOrderIDs(database: db, blockSize: 7), b = SQLOrderIDs(database: db, blockSize: 7)
        try await SagaStoreContract.orderIDs(products: db.products, sagas: db.sagas(), allocators: [{ try await a.next() }, { try await b.next() }],
                                             rewind: { try await db.write { s in _ = try s.run("UPDATE id_blocks SET next_id = 1") } },
                                             freshStore: { db.sagas() },
                                             insertOrder: { id, saga in
                                                 try await db.write { s in _ = try s.run(SagaStoreContract.insertOrderSQL, [id, saga]) }
                                             })
        await db.close()
    }

    @Test func relayLeaseContract() async throws {
        guard let db = try await freshMariaDB() else { return }
        try await SagaStoreContract.relayLease(db.sagas())
        await db.close()
    }

    @Test func paymentLedgerContract() async throws {
        guard let db = try await freshMariaDB() else { return }
        try await PaymentLedgerContract.run(db.payments)
        await db.close()
    }

    @Test func migrationsAreVersionedAndIdempotent() async throws {
        guard let db = try await freshMariaDB() else { return }
        try await db.migrate()
        // Concurrent starts: the advisory lock serializes them, nothing is applied twice.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 { group.addTask { try await db.migrate() } }
            try await group.waitForAll()
        }
        #expect(try await db.appliedMigrations() == ["001_initial", "002_saga_epoch", "003_saga_attention", "004_stock_excludes_held",
                                                   "005_sagas_by_state", "006_relay_lease", "007_order_ids"])
        try await db.checkHealth()
        await db.close()
    }

    /// The schema itself refuses reserved > stock and negative stock: the last line of defence.
    @Test func databaseRejectsImpossibleStock() async throws {
        guard let db = try await freshMariaDB() else { return }
        let p = try await db.products.create(ProductStoreContract.mug(stock: 1), now: Date())
        await #expect(throws: MariaDBError.self) {
            try await db.write { s in try s.query("UPDATE products SET reserved = stock + 1 WHERE id = ?", [p.id]) }
        }
        await #expect(throws: MariaDBError.self) {
            try await db.write { s in try s.query("UPDATE products SET stock = -1 WHERE id = ?", [p.id]) }
        }
        #expect(try await db.products.product(id: p.id, consistency: .primary)?.available == 1)
        await db.close()
    }

    /// A product written on the primary is read back through the replica path once replicated; reads at
    /// `.primary` see it at once.
    @Test func replicaReadsSeeWhatThePrimaryWrote() async throws {
        guard let db = try await freshMariaDB() else { return }
        await db.checkReplicas()
        #expect(db.replicaStatus.map(\.inRotation) == [true], "\(db.replicaStatus)")
        // The console's rows: the primary and the replica, up, with the replica's measured lag.
        let rows = await db.healthNodes(checkError: nil)
        #expect(rows.map(\.role) == ["primary", "replica"] && rows.map(\.status) == ["up", "up"], "\(rows)")
        #expect(rows[0].endpoint == db.primaryEndpoint && rows[0].lagSeconds == nil)
        #expect(try #require(rows[1].lagSeconds) >= 0)
        let p = try await db.products.create(ProductStoreContract.mug("replicated", stock: 7), now: Date())
        #expect(try await db.products.product(id: p.id, consistency: .primary)?.sku == "replicated")
        var seen: Product?
        let deadline = ContinuousClock.now + .seconds(10)
        while seen == nil, ContinuousClock.now < deadline {
            seen = try await db.products.product(id: p.id, consistency: .replica)
            if seen == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(seen?.available == 7)
        // And it really came from the replica: the replica has the row, and refuses writes.
        let replica = try await MariaDBConnection.connect(db.replicas[0].pool.configuration)
        #expect(try await replica.query("SELECT COUNT(*) AS n FROM products WHERE id = ?", [p.id]).rows[0].decode("n") == 1)
        let refused = await #expect(throws: MariaDBError.self) { try await replica.query("DELETE FROM products") }
        #expect(refused?.kind == .readOnly)
        await replica.close()
        await db.close()
    }

    /// Product reads at `.replica` use the replica's pool; fresh product reads and saga reads never touch it.
    @Test func readsAreRoutedByConsistency() async throws {
        guard let db = try await freshMariaDB() else { return }
        let replicaPool = db.replicas[0].pool
        let p = try await db.products.create(ProductStoreContract.mug("routed", stock: 2), now: Date())
        _ = try await db.products.product(id: p.id, consistency: .primary)
        _ = try await db.sagas().countUnfinished()
        _ = try await db.sagas().unpublished(limit: 10)
        #expect(replicaPool.openConnections == 0, "primary reads stay on the primary")
        _ = try await db.products.products(after: nil, limit: 10, consistency: .replica)
        _ = try await db.products.product(id: p.id, consistency: .replica)
        #expect(replicaPool.openConnections == 1, "product reads went to the replica")
        await db.close()
    }

    /// A replica that is down: the first read falls back to the primary and takes it out of rotation;
    /// nothing fails. With no replica at all, the primary serves reads.
    @Test func aStoppedReplicaIsBypassed() async throws {
        guard let db = try await freshMariaDB(replicas: ["mysql://app:apppass@127.0.0.1:1/storefront"]) else { return }
        let p = try await db.products.create(ProductStoreContract.mug("bypass", stock: 3), now: Date())
        #expect(try await db.products.product(id: p.id, consistency: .replica)?.sku == "bypass")
        #expect(db.replicaStatus.map(\.inRotation) == [false])
        #expect(try await db.products.products(after: nil, limit: 10, consistency: .replica).items.count == 1)
        await db.checkReplicas()
        #expect(db.replicaStatus.first?.reason.hasPrefix("unreachable") == true)
        // The console's rows: the primary up, the replica down (unreachable), no lag known.
        let rows = await db.healthNodes(checkError: nil)
        #expect(rows.map(\.role) == ["primary", "replica"])
        #expect(rows.map(\.status) == ["up", "down"], "\(rows)")
        #expect(rows[1].endpoint.hasPrefix("127.0.0.1:1/storefront"), "\(rows)")
        #expect(rows[1].lagSeconds == nil && rows[1].detail?.contains("out of read rotation") == true, "\(rows)")
        // Health: degraded (not critical), naming the replica and why.
        #expect(db.replicaHealth.healthIsCritical == false)
        let degraded = await #expect(throws: StorefrontError.self) { try await db.replicaHealth.checkHealth() }
        #expect("\(degraded.map { "\($0)" } ?? "")".contains("127.0.0.1:1"))
        try await db.checkHealth()
        await db.close()

        guard let alone = try await freshMariaDB(replicas: []) else { return }
        let q = try await alone.products.create(ProductStoreContract.mug("alone", stock: 3), now: Date())
        #expect(try await alone.products.product(id: q.id, consistency: .replica)?.sku == "alone")
        await alone.close()
    }

    /// Writes that collide on one row: every one lands (deadlock victims and lock waits are retried).
    /// Recovery's claim reads the unfinished sagas, not the history: with 3,000 finished sagas whose leases have
    /// passed, the claim's index read touches the 3 unfinished ones it is after (it scanned all 3,003, a locking
    /// read held while purchases stepped, each round a little slower as the history grew). The console's count
    /// and the admin list read only unfinished sagas too.
    @Test func recoveryReadsOnlyUnfinishedSagas() async throws {
        guard let db = try await freshMariaDB() else { return }
        let product = try await db.products.create(ProductStoreContract.mug(stock: 10), now: Date())
        let columns = "id, product_id, qty, amount_minor, currency, mode, state, attempts, owner, epoch, lease_until, event_seq, created_at, updated_at"
        try await db.write { s in
            try s.query("""
                INSERT INTO sagas (\(columns))
                SELECT UUID(), ?, 1, 100, 'EUR', 'atomic', ELT(1 + seq % 3, 'CONFIRMED', 'COMPENSATED', 'FAILED'), 0, 'app-1', 1,
                       1000 + seq, 5, 1000, 1000
                FROM seq_1_to_3000
                """, [product.id])
            for n in 1...3 {
                try s.query("INSERT INTO sagas (\(columns)) VALUES (?, ?, 1, 100, 'EUR', 'atomic', 'PAID', 0, 'app-1', 1, ?, 4, 1000, 1000)",
                            [.string(UUID.timeOrdered().uuidString), .int(product.id), .int(Int64(2000 + n))])
            }
        }
        // The rows the storage engine handed over (every Handler_read_* counter of the session), less what
        // reading the counters costs (measured the same way with nothing in between).
        func rowsRead(_ sql: String) async throws -> Int64 {
            try await db.write { s -> Int64 in
                func handlerReads() throws -> Int64 {
                    let row = try s.query("""
                        SELECT CAST(SUM(VARIABLE_VALUE) AS SIGNED) AS n FROM information_schema.SESSION_STATUS
                        WHERE VARIABLE_NAME LIKE 'HANDLER\\_READ\\_%'
                        """).rows.first
                    guard case .int(let n)? = row?.values.first else { throw SagaStoreInconsistency(sagaId: UUID(), detail: "no counters") }
                    return n
                }
                let (a, b) = (try handlerReads(), try handlerReads())
                _ = try s.query(sql, sql.hasSuffix("?") || sql.contains("LIMIT ?") ? [.int(10)] : [])
                let c = try handlerReads()
                return (c - b) - (b - a)
            }
        }
        for (what, sql) in [("the claim", SQLSagaStore.claimQuery(.mariaDB) + " FOR UPDATE SKIP LOCKED"),
                            ("the count", SQLSagaStore.countUnfinishedQuery),
                            ("the list", SQLSagaStore.unfinishedQuery(needingAttention: false))] {
            let read = try await rowsRead(sql)
            #expect(read <= 30, "\(what) read \(read) rows for 3 unfinished sagas among 3,003")
        }
        let claimed = try await db.sagas().claimExpired(owner: "app-2", lease: .seconds(30), limit: 10, now: Date())
        #expect(claimed.count == 3)
        #expect(claimed.allSatisfy { $0.state == .paid && $0.owner == "app-2" && $0.epoch == 2 })
        #expect(try await db.sagas().countUnfinished() == 3)
        #expect(try await db.sagas().unfinished(needingAttention: false, limit: 100).count == 3)
        await db.close()
    }

    @Test func hotRowWritesAllLand() async throws {
        guard let db = try await freshMariaDB() else { return }
        let p = try await db.products.create(ProductStoreContract.mug("hot", stock: 0), now: Date())
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<100 { group.addTask { _ = try await db.products.restock(id: p.id, qty: 1, now: Date()) } }
            try await group.waitForAll()
        }
        let after = try await db.products.product(id: p.id, consistency: .primary)
        #expect(after?.stock == 100)
        #expect(after?.version == 101)
        await db.close()
    }

    /// The primary unreachable: writes fail fast with `unavailable` (503 + Retry-After), not a hang.
    @Test func anUnreachablePrimaryIsUnavailableFast() async throws {
        var settings = MariaDBSettings()
        settings.acquireTimeout = .seconds(1)
        let db = MariaDBDatabase(primary: try MariaDBConfiguration(url: "mysql://app:apppass@127.0.0.1:1/storefront"), settings: settings)
        let started = ContinuousClock.now
        let error = await #expect(throws: StorefrontError.self) {
            try await db.products.create(ProductStoreContract.mug("x", stock: 1), now: Date())
        }
        #expect(error == .unavailable("database", retryAfterSeconds: 1))
        #expect(ContinuousClock.now - started < .seconds(5))
        await #expect(throws: StorefrontError.self) { try await db.checkHealth() }
        await db.close()
    }

    /// A transaction chosen as a deadlock victim is run again from the start — a bounded number of times.
    @Test func deadlockVictimsAreRetriedABoundedNumberOfTimes() async throws {
        guard let db = try await freshMariaDB() else { return }
        let attempts = Attempts()
        let one = try await db.write { s in
            if attempts.next() < 3 { throw MariaDBError(code: 1213, sqlState: "40001", message: "Deadlock found when trying to get lock") }
            return try s.query("SELECT 1 AS one").first!.decode("one", as: Int.self)
        }
        #expect(one == 1)
        #expect(attempts.count == 3, "two victims, then success")
        let always = Attempts()
        let error = await #expect(throws: MariaDBError.self) {
            try await db.write { (_: MariaDBSession) in
                _ = always.next()
                throw MariaDBError(code: 1205, sqlState: "HY000", message: "Lock wait timeout exceeded")
            }
        }
        #expect(error?.kind == .lockWaitTimeout)
        #expect(always.count == db.settings.deadlockAttempts, "gives up after \(db.settings.deadlockAttempts) attempts")
        await db.close()
    }
}

/// Counts the attempts of a transaction body.
final class Attempts: Sendable {
    private let value = Atomic<Int>(0)
    /// This attempt's number, from 1.
    func next() -> Int { value.add(1, ordering: .relaxed).newValue }
    var count: Int { value.load(ordering: .relaxed) }
}
