import Foundation
import MariaDB
import StorefrontCore

/// `ProductStore` on MariaDB: reads at `.replica` consistency go to a replica in rotation, everything else
/// to the primary.
public struct MariaDBProductStore: ProductStore {
    let database: MariaDBDatabase

    static let columns = "id, sku, name, description, price_minor, currency, stock, reserved, version, updated_at"

    static func product(_ row: MariaDBRow) throws -> Product {
        Product(
            id: try row.decode("id"), sku: try row.decode("sku"), name: try row.decode("name"), description: try row.decode("description"),
            priceMinor: try row.decode("price_minor"), currency: try row.decode("currency"), stock: try row.decode("stock"),
            reserved: try row.decode("reserved"), version: try row.decode("version"), updatedAt: try row.date("updated_at"))
    }

    static func fetch(_ s: MariaDBSession, id: Int64, lock: Bool = false) throws -> Product? {
        try s.query("SELECT \(columns) FROM products WHERE id = ?\(lock ? " FOR UPDATE" : "")", [id]).first.map(product)
    }

    public func product(id: Int64, consistency: ReadConsistency) async throws -> Product? {
        try await database.read(consistency) { s in try Self.fetch(s, id: id) }
    }

    public func products(after: Int64?, limit: Int, consistency: ReadConsistency) async throws -> ProductPage {
        try await database.read(consistency) { s in
            let rows = try s.query("SELECT \(Self.columns) FROM products WHERE id > ? ORDER BY id LIMIT ?", [after ?? 0, limit + 1]).rows
            let items = try rows.prefix(limit).map(Self.product)
            return ProductPage(items: items, next: rows.count > limit ? items.last?.id : nil)
        }
    }

    public func create(_ p: NewProduct, now: Date) async throws -> Product {
        do {
            return try await database.write { s in
                let ms = Millis.from(now)
                let id = try s.query(
                    """
                    INSERT INTO products (sku, name, description, price_minor, currency, stock, reserved, version, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, 0, 1, ?, ?)
                    """,
                    [p.sku, p.name, p.description, p.priceMinor, p.currency, p.stock, ms, ms]).lastInsertID
                return try Self.fetch(s, id: Int64(id))!
            }
        } catch let error as MariaDBError where error.kind == .duplicateKey {
            throw StorefrontError.skuConflict(p.sku)
        }
    }

    public func update(id: Int64, _ update: ProductUpdate, now: Date) async throws -> Product {
        do {
            return try await database.write { s in
                guard let current = try Self.fetch(s, id: id, lock: true) else { throw StorefrontError.productNotFound(id) }
                let p = try update.applied(to: current)
                _ = try s.query(
                    """
                    UPDATE products SET sku = ?, name = ?, description = ?, price_minor = ?, currency = ?,
                        version = version + 1, updated_at = ? WHERE id = ?
                    """,
                    [p.sku, p.name, p.description, p.priceMinor, p.currency, Millis.from(now), id])
                return try Self.fetch(s, id: id)!
            }
        } catch let error as MariaDBError where error.kind == .duplicateKey {
            throw StorefrontError.skuConflict(update.sku ?? "")
        }
    }

    public func restock(id: Int64, qty: Int64, now: Date) async throws -> Product {
        try await database.write { s in
            let matched = try s.query("UPDATE products SET stock = stock + ?, version = version + 1, updated_at = ? WHERE id = ?",
                                      [qty, Millis.from(now), id]).affectedRows
            guard matched == 1, let p = try Self.fetch(s, id: id) else { throw StorefrontError.productNotFound(id) }
            return p
        }
    }

    public func seed(count: Int, stock: Int64, now: Date, progress: @Sendable (Int) -> Void) async throws {
        let batch = 500
        var done = 0
        while done < count {
            let start = done
            let end = min(done + batch, count)
            try await database.write { s in
                let ms = Millis.from(now)
                let rows = Array(repeating: "(?, ?, ?, ?, 'USD', ?, 0, 1, ?, ?)", count: end - start).joined(separator: ", ")
                var values: [any MariaDBEncodable] = []
                for n in start..<end {
                    values += ["demo-\(n + 1)", "Demo product \(n + 1)", "Seeded demo product number \(n + 1).",
                               Int64(199 + (n * 37) % 9800), stock, ms, ms] as [any MariaDBEncodable]
                }
                _ = try s.query(
                    "INSERT IGNORE INTO products (sku, name, description, price_minor, currency, stock, reserved, version, created_at, updated_at) VALUES \(rows)",
                    values)
            }
            done = end
            progress(done)
        }
    }
}
