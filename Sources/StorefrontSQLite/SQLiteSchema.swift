import GRDB

/// Versioned schema (DESIGN §4). Money is integer minor units; times are integer UTC milliseconds.
enum SQLiteSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("001_initial") { db in
            try db.execute(sql: """
                CREATE TABLE products (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    sku TEXT NOT NULL UNIQUE,
                    name TEXT NOT NULL,
                    description TEXT NOT NULL DEFAULT '',
                    price_minor INTEGER NOT NULL CHECK (price_minor >= 0),
                    currency TEXT NOT NULL,
                    stock INTEGER NOT NULL CHECK (stock >= 0),
                    reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= stock),
                    version INTEGER NOT NULL DEFAULT 1,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL
                );
                CREATE TABLE sagas (
                    id TEXT PRIMARY KEY,
                    idempotency_key TEXT UNIQUE,
                    product_id INTEGER NOT NULL REFERENCES products(id),
                    qty INTEGER NOT NULL CHECK (qty > 0),
                    amount_minor INTEGER NOT NULL,
                    currency TEXT NOT NULL,
                    mode TEXT NOT NULL,
                    state TEXT NOT NULL,
                    order_id INTEGER,
                    payment_ref TEXT,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    owner TEXT NOT NULL,
                    lease_until INTEGER NOT NULL,
                    failure_code TEXT,
                    last_error TEXT,
                    event_seq INTEGER NOT NULL DEFAULT 0,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL
                );
                CREATE INDEX sagas_unfinished ON sagas(lease_until)
                    WHERE state NOT IN ('CONFIRMED', 'COMPENSATED', 'FAILED');
                CREATE TABLE orders (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    saga_id TEXT NOT NULL UNIQUE REFERENCES sagas(id),
                    product_id INTEGER NOT NULL REFERENCES products(id),
                    qty INTEGER NOT NULL,
                    amount_minor INTEGER NOT NULL,
                    currency TEXT NOT NULL,
                    status TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL
                );
                CREATE TABLE saga_steps (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    saga_id TEXT NOT NULL REFERENCES sagas(id),
                    name TEXT NOT NULL,
                    status TEXT NOT NULL,
                    detail TEXT,
                    at INTEGER NOT NULL
                );
                CREATE INDEX saga_steps_by_saga ON saga_steps(saga_id, id);
                CREATE TABLE outbox (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    event_id TEXT NOT NULL UNIQUE,
                    topic TEXT NOT NULL,
                    key TEXT NOT NULL,
                    payload TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    published_at INTEGER
                );
                CREATE INDEX outbox_unpublished ON outbox(id) WHERE published_at IS NULL;
                CREATE INDEX outbox_by_key ON outbox(key, id);
                CREATE TABLE payments (
                    idempotency_key TEXT PRIMARY KEY,
                    status TEXT NOT NULL,
                    amount_minor INTEGER NOT NULL,
                    currency TEXT NOT NULL,
                    reference TEXT NOT NULL,
                    reason TEXT,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL
                );
                """)
        }
        // Issue 10.1: a fencing token on every saga; a takeover increments it.
        migrator.registerMigration("002_saga_epoch") { db in
            try db.execute(sql: "ALTER TABLE sagas ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1")
        }
        // Issue 10.5: sagas recovery gave up on wait for a person.
        migrator.registerMigration("003_saga_attention") { db in
            try db.execute(sql: "ALTER TABLE sagas ADD COLUMN needs_attention INTEGER NOT NULL DEFAULT 0")
            try db.execute(sql: "CREATE INDEX sagas_attention ON sagas(needs_attention) WHERE needs_attention = 1")
        }
        // Issue 12: a reservation takes units out of `stock`; a confirmation does not touch the product row. Held
        // units are the sagas' (`reserved` stays 0).
        migrator.registerMigration("004_stock_excludes_held") { db in
            try db.execute(sql: "UPDATE products SET stock = stock - reserved, reserved = 0 WHERE reserved <> 0")
            try db.execute(sql: "CREATE INDEX sagas_by_product ON sagas(product_id, state)")
        }
        // Issue 12: one relay at a time on a shared outbox (the MariaDB schema's 006; here for the same store code).
        migrator.registerMigration("006_relay_lease") { db in
            try db.execute(sql: "CREATE TABLE relay_leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, lease_until INTEGER NOT NULL)")
        }
        // Issue 12: order ids from blocks (the MariaDB schema's 007; the same store code).
        migrator.registerMigration("007_order_ids") { db in
            try db.execute(sql: "CREATE TABLE id_blocks (name TEXT PRIMARY KEY, next_id INTEGER NOT NULL)")
            try db.execute(sql: "INSERT INTO id_blocks (name, next_id) SELECT 'orders', COALESCE(MAX(id), 0) + 1 FROM orders")
        }
        return migrator
    }
}
