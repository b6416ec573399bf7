import Foundation
import StorefrontContracts
import StorefrontCore
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

    @Test func paymentLedgerContract() async throws {
        try await PaymentLedgerContract.run(try temporarySQLite().payments)
    }

    @Test func migrationsAreVersionedAndIdempotent() async throws {
        let db = try temporarySQLite()
        try db.migrate()
        #expect(try db.appliedMigrations() == ["001_initial", "002_saga_epoch", "003_saga_attention"])
        try await db.checkHealth()
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
