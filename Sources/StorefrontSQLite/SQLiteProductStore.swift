import Foundation
import GRDB
import StorefrontCore

/// `ProductStore` on SQLite. There is no replica: both consistencies read the same file.
public struct SQLiteProductStore: ProductStore {
    let database: SQLiteDatabase

    static let columns = "id, sku, name, description, price_minor, currency, stock, reserved, version, updated_at"

    static func product(_ row: Row) -> Product {
        Product(
            id: row["id"], sku: row["sku"], name: row["name"], description: row["description"],
            priceMinor: row["price_minor"], currency: row["currency"], stock: row["stock"], reserved: row["reserved"],
            version: row["version"], updatedAt: Millis.date(row["updated_at"]))
    }

    static func fetch(_ db: Database, id: Int64) throws -> Product? {
        try Row.fetchOne(db, sql: "SELECT \(columns) FROM products WHERE id = ?", arguments: [id]).map(product)
    }

    public func product(id: Int64, consistency: ReadConsistency) async throws -> Product? {
        try await database.writer.read { db in try Self.fetch(db, id: id) }
    }

    public func products(after: Int64?, limit: Int, consistency: ReadConsistency) async throws -> ProductPage {
        try await database.writer.read { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT \(Self.columns) FROM products WHERE id > ? ORDER BY id LIMIT ?",
                arguments: [after ?? 0, limit + 1])
            let items = rows.prefix(limit).map(Self.product)
            return ProductPage(items: Array(items), next: rows.count > limit ? items.last?.id : nil)
        }
    }

    public func create(_ p: NewProduct, now: Date) async throws -> Product {
        do {
            return try await database.writer.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO products (sku, name, description, price_minor, currency, stock, reserved, version, created_at, updated_at)
                        VALUES (?, ?, ?, ?, ?, ?, 0, 1, ?, ?)
                        """,
                    arguments: [p.sku, p.name, p.description, p.priceMinor, p.currency, p.stock, Millis.from(now), Millis.from(now)])
                return try Self.fetch(db, id: db.lastInsertedRowID)!
            }
        } catch let error as DatabaseError where error.isUniqueViolation {
            throw StorefrontError.skuConflict(p.sku)
        }
    }

    public func update(id: Int64, _ update: ProductUpdate, now: Date) async throws -> Product {
        do {
            return try await database.writer.write { db in
                guard let current = try Self.fetch(db, id: id) else { throw StorefrontError.productNotFound(id) }
                let p = try update.applied(to: current)
                try db.execute(
                    sql: """
                        UPDATE products SET sku = ?, name = ?, description = ?, price_minor = ?, currency = ?,
                            version = version + 1, updated_at = ? WHERE id = ?
                        """,
                    arguments: [p.sku, p.name, p.description, p.priceMinor, p.currency, Millis.from(now), id])
                return try Self.fetch(db, id: id)!
            }
        } catch let error as DatabaseError where error.isUniqueViolation {
            throw StorefrontError.skuConflict(update.sku ?? "")
        }
    }

    public func restock(id: Int64, qty: Int64, now: Date) async throws -> Product {
        try await database.writer.write { db in
            try db.execute(
                sql: "UPDATE products SET stock = stock + ?, version = version + 1, updated_at = ? WHERE id = ?",
                arguments: [qty, Millis.from(now), id])
            guard db.changesCount == 1, let p = try Self.fetch(db, id: id) else { throw StorefrontError.productNotFound(id) }
            return p
        }
    }

    public func seed(count: Int, stock: Int64, now: Date, progress: @Sendable (Int) -> Void) async throws {
        let batch = 1000
        var done = 0
        while done < count {
            let start = done
            let end = min(done + batch, count)
            try await database.writer.write { db in
                let ms = Millis.from(now)
                for n in start..<end {
                    try db.execute(
                        sql: """
                            INSERT OR IGNORE INTO products (sku, name, description, price_minor, currency, stock, reserved, version, created_at, updated_at)
                            VALUES (?, ?, ?, ?, 'USD', ?, 0, 1, ?, ?)
                            """,
                        arguments: ["demo-\(n + 1)", "Demo product \(n + 1)", "Seeded demo product number \(n + 1).",
                                    Int64(199 + (n * 37) % 9800), stock, ms, ms])
                }
            }
            done = end
            progress(done)
        }
    }
}
