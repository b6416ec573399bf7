import Foundation
import StorefrontCore

/// `ProductStore` on any SQL engine: reads at `.replica` consistency go where the engine sends them (a
/// MariaDB replica in rotation; SQLite has one file), everything else to the primary.
public struct SQLProductStore: ProductStore {
    let database: any SQLExecutor

    public init(database: any SQLExecutor) {
        self.database = database
    }

    /// (`reserved` is a column of the first schema, always 0 since migration 004: held units are the sagas'.)
    static let columns = "id, sku, name, description, price_minor, currency, stock, version, updated_at"

    static func product(_ row: SQLRow) throws -> Product {
        Product(
            id: try row.int("id"), sku: try row.text("sku"), name: try row.text("name"), description: try row.text("description"),
            priceMinor: try row.int("price_minor"), currency: try row.text("currency"), stock: try row.int("stock"),
            version: try row.int("version"), updatedAt: try row.date("updated_at"))
    }

    static func fetch(_ s: any SQLStatements, id: Int64, lock: String = "") throws -> Product? {
        try s.row("SELECT \(columns) FROM products WHERE id = ?\(lock)", [id]).map(product)
    }

    public func product(id: Int64, consistency: ReadConsistency) async throws -> Product? {
        try await database.read(consistency) { s in try Self.fetch(s, id: id) }
    }

    public func unitsHeld(productId: Int64) async throws -> Int64 {
        try await database.read(.primary) { s in
            try s.row(
                """
                SELECT COALESCE(SUM(qty), 0) AS held FROM sagas
                WHERE product_id = ? AND state IN (\(SQLSagaStore.holdingList))
                """,
                [productId])?.int("held") ?? 0
        }
    }

    public func products(after: Int64?, limit: Int, consistency: ReadConsistency) async throws -> ProductPage {
        try await database.read(consistency) { s in
            let rows = try s.rows("SELECT \(Self.columns) FROM products WHERE id > ? ORDER BY id LIMIT ?", [after ?? 0, limit + 1])
            let items = try rows.prefix(limit).map(Self.product)
            return ProductPage(items: items, next: rows.count > limit ? items.last?.id : nil)
        }
    }

    public func create(_ p: NewProduct, now: Date) async throws -> Product {
        do {
            return try await database.write { s in
                let id = try s.run(
                    """
                    INSERT INTO products (sku, name, description, price_minor, currency, stock, reserved, version, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, 0, 1, ?, ?)
                    """,
                    [p.sku, p.name, p.description, p.priceMinor, p.currency, p.stock, now, now]).lastInsertID
                return try Self.fetch(s, id: id)!
            }
        } catch is SQLUniqueViolation {
            throw StorefrontError.skuConflict(p.sku)
        }
    }

    public func update(id: Int64, _ update: ProductUpdate, now: Date) async throws -> Product {
        let lock = database.dialect.forUpdate
        do {
            return try await database.write { s in
                guard let current = try Self.fetch(s, id: id, lock: lock) else { throw StorefrontError.productNotFound(id) }
                let p = try update.applied(to: current)
                try s.run(
                    """
                    UPDATE products SET sku = ?, name = ?, description = ?, price_minor = ?, currency = ?,
                        version = version + 1, updated_at = ? WHERE id = ?
                    """,
                    [p.sku, p.name, p.description, p.priceMinor, p.currency, now, id])
                return try Self.fetch(s, id: id)!
            }
        } catch is SQLUniqueViolation {
            throw StorefrontError.skuConflict(update.sku ?? "")
        }
    }

    public func restock(id: Int64, qty: Int64, now: Date) async throws -> Product {
        try await database.write { s in
            let matched = try s.run("UPDATE products SET stock = stock + ?, version = version + 1, updated_at = ? WHERE id = ?",
                                    [qty, now, id]).rows
            guard matched == 1, let p = try Self.fetch(s, id: id) else { throw StorefrontError.productNotFound(id) }
            return p
        }
    }

    public func insertIgnoringExisting(_ products: [NewProduct], now: Date) async throws -> Int {
        guard !products.isEmpty else { return 0 }
        let insertIgnore = database.dialect.insertIgnore
        let perStatement = max(1, min(500, database.dialect.maxParameters / 8))
        return try await database.write { s in
            var inserted = 0
            for start in stride(from: 0, to: products.count, by: perStatement) {
                let batch = products[start..<min(start + perStatement, products.count)]
                let rows = Array(repeating: "(?, ?, ?, ?, ?, ?, 0, 1, ?, ?)", count: batch.count).joined(separator: ", ")
                let values = batch.flatMap { p -> [any SQLBindable] in [p.sku, p.name, p.description, p.priceMinor, p.currency, p.stock, now, now] }
                inserted += try s.run(
                    "\(insertIgnore) INTO products (sku, name, description, price_minor, currency, stock, reserved, version, created_at, updated_at) VALUES \(rows)",
                    values).rows
            }
            return inserted
        }
    }
}
