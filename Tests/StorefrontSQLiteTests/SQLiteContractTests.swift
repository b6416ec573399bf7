import Foundation
import GRDB
import StorefrontContracts
import StorefrontCore
import StorefrontSQL
@testable import StorefrontSQLite
import Testing

func temporarySQLite() throws -> SQLiteDatabase {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("storefront-test-\(UUID().uuidString).db").path
    let db = try SQLiteDatabase(path: path)
    try db.migrate()
    return db
}

@Suite("SQLite adapters")
struct SQLiteContractTests {
    @Test func productStoreContract() async throws {
        try await ProductStoreContract.run(try temporarySQLite().products)
    }

    @Test func sagaStoreContract() async throws {
        let db = try temporarySQLite()
        try await SagaStoreContract.run(products: db.products, sagas: db.sagas())
    }

    @Test func purchaseLookupContract() async throws {
        let db = try temporarySQLite()
        try await SagaStoreContract.purchaseLookup(products: db.products, sagas: db.sagas())
    }

    @Test func relayLeaseContract() async throws {
        try await SagaStoreContract.relayLease(try temporarySQLite().sagas())
    }

    @Test func orderIDsContract() async throws {
        let db = try temporarySQLite()
        let a = SQLOrderIDs(database: db, blockSize: 7), b = SQLOrderIDs(database: db, blockSize: 7)
        try await SagaStoreContract.orderIDs(products: db.products, sagas: db.sagas(), allocators: [{ try await a.next() }, { try await b.next() }],
                                             rewind: { try await db.write { s in _ = try s.run("UPDATE id_blocks SET next_id = 1") } },
                                             freshStore: { db.sagas() },
                                             insertOrder: { id, saga in
                                                 try await db.write { s in _ = try s.run(SagaStoreContract.insertOrderSQL, [id, saga]) }
                                             })
    }

    @Test func paymentLedgerContract() async throws {
        try await PaymentLedgerContract.run(try temporarySQLite().payments)
    }

    @Test func migrationsAreVersionedAndIdempotent() async throws {
        let db = try temporarySQLite()
        try db.migrate()
        #expect(try db.appliedMigrations() == ["001_initial", "002_saga_epoch", "003_saga_attention", "004_stock_excludes_held",
                                            "006_relay_lease", "007_order_ids"])
        try await db.checkHealth()
    }

    /// Migration 004: units a first-schema row counted as `reserved` leave `stock` (they are the sagas' now).
    @Test func migration004MovesReservedUnitsOutOfStock() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("storefront-test-\(UUID().uuidString).db").path
        let db = try SQLiteDatabase(path: path)
        try SQLiteSchema.migrator.migrate(db.writer, upTo: "003_saga_attention")
        try await db.writer.write { d in
            try d.execute(sql: """
                INSERT INTO products (sku, name, description, price_minor, currency, stock, reserved, version, created_at, updated_at)
                VALUES ('old', 'Old', '', 100, 'USD', 10, 3, 1, 0, 0)
                """)
        }
        try db.migrate()
        let product = try #require(try await db.products.product(id: 1, consistency: .primary))
        #expect(product.stock == 7 && product.available == 7)
        #expect(try await db.writer.read { d in try Int.fetchOne(d, sql: "SELECT reserved FROM products WHERE id = 1") } == 0)
    }

    @Test func parsesDatabaseURLs() throws {
        #expect(try SQLiteDatabase.path(fromURL: "sqlite:///var/lib/storefront.db") == "/var/lib/storefront.db")
        #expect(try SQLiteDatabase.path(fromURL: "sqlite://data/x.db") == "data/x.db")
        #expect(try SQLiteDatabase.path(fromURL: "sqlite::memory:") == ":memory:")
        #expect(throws: StorefrontError.self) { try SQLiteDatabase.path(fromURL: "mysql://x") }
    }

    @Test func databaseRejectsImpossibleStock() async throws {
        // The schema itself refuses reserved > stock, a last line of defence against oversell.
        let db = try temporarySQLite()
        let p = try await db.products.create(ProductStoreContract.mug(stock: 1), now: Date())
        await #expect(throws: (any Error).self) {
            try await db.writer.write { db in try db.execute(sql: "UPDATE products SET reserved = stock + 1 WHERE id = ?", arguments: [p.id]) }
        }
        await #expect(throws: (any Error).self) {
            try await db.writer.write { db in try db.execute(sql: "UPDATE products SET stock = -1 WHERE id = ?", arguments: [p.id]) }
        }
        #expect(try await db.products.product(id: p.id, consistency: .primary)?.available == 1)
    }
}
