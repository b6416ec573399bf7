import MariaDB

/// Versioned schema (DESIGN §4), InnoDB + utf8mb4 with binary collation (exact, case-sensitive keys, as on
/// SQLite). Money is integer minor units; times are integer UTC milliseconds. Every statement is idempotent
/// (`IF NOT EXISTS`), because MariaDB commits DDL implicitly: a migration interrupted half-way is re-run whole.
enum MariaDBSchema {
    static let table = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

    static let migrations: [(id: String, statements: [String])] = [
        ("001_initial", [
            """
            CREATE TABLE IF NOT EXISTS products (
                id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
                sku VARCHAR(64) NOT NULL,
                name VARCHAR(1000) NOT NULL,
                description TEXT NOT NULL,
                price_minor BIGINT NOT NULL,
                currency CHAR(3) NOT NULL,
                stock BIGINT NOT NULL,
                reserved BIGINT NOT NULL DEFAULT 0,
                version BIGINT NOT NULL DEFAULT 1,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                UNIQUE KEY products_sku (sku),
                CONSTRAINT products_price CHECK (price_minor >= 0),
                CONSTRAINT products_stock CHECK (stock >= 0),
                CONSTRAINT products_reserved CHECK (reserved >= 0 AND reserved <= stock)
            ) \(table)
            """,
            """
            CREATE TABLE IF NOT EXISTS sagas (
                id CHAR(36) NOT NULL PRIMARY KEY,
                idempotency_key VARCHAR(128) NULL,
                product_id BIGINT NOT NULL,
                qty BIGINT NOT NULL,
                amount_minor BIGINT NOT NULL,
                currency CHAR(3) NOT NULL,
                mode VARCHAR(16) NOT NULL,
                state VARCHAR(32) NOT NULL,
                order_id BIGINT NULL,
                payment_ref VARCHAR(128) NULL,
                attempts INT NOT NULL DEFAULT 0,
                owner VARCHAR(128) NOT NULL,
                lease_until BIGINT NOT NULL,
                failure_code VARCHAR(64) NULL,
                last_error TEXT NULL,
                event_seq INT NOT NULL DEFAULT 0,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                UNIQUE KEY sagas_idempotency_key (idempotency_key),
                KEY sagas_lease (lease_until),
                CONSTRAINT sagas_product FOREIGN KEY (product_id) REFERENCES products (id),
                CONSTRAINT sagas_qty CHECK (qty > 0)
            ) \(table)
            """,
            """
            CREATE TABLE IF NOT EXISTS orders (
                id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
                saga_id CHAR(36) NOT NULL,
                product_id BIGINT NOT NULL,
                qty BIGINT NOT NULL,
                amount_minor BIGINT NOT NULL,
                currency CHAR(3) NOT NULL,
                status VARCHAR(16) NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                UNIQUE KEY orders_saga (saga_id),
                CONSTRAINT orders_saga FOREIGN KEY (saga_id) REFERENCES sagas (id),
                CONSTRAINT orders_product FOREIGN KEY (product_id) REFERENCES products (id)
            ) \(table)
            """,
            """
            CREATE TABLE IF NOT EXISTS saga_steps (
                id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
                saga_id CHAR(36) NOT NULL,
                name VARCHAR(32) NOT NULL,
                status VARCHAR(16) NOT NULL,
                detail TEXT NULL,
                at BIGINT NOT NULL,
                KEY saga_steps_by_saga (saga_id, id),
                CONSTRAINT saga_steps_saga FOREIGN KEY (saga_id) REFERENCES sagas (id)
            ) \(table)
            """,
            """
            CREATE TABLE IF NOT EXISTS outbox (
                id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
                event_id CHAR(36) NOT NULL,
                topic VARCHAR(249) NOT NULL,
                `key` VARCHAR(64) NOT NULL,
                payload MEDIUMTEXT NOT NULL,
                created_at BIGINT NOT NULL,
                published_at BIGINT NULL,
                UNIQUE KEY outbox_event (event_id),
                KEY outbox_unpublished (published_at, id),
                KEY outbox_by_key (`key`, id)
            ) \(table)
            """,
            """
            CREATE TABLE IF NOT EXISTS payments (
                idempotency_key VARCHAR(128) NOT NULL PRIMARY KEY,
                status VARCHAR(16) NOT NULL,
                amount_minor BIGINT NOT NULL,
                currency CHAR(3) NOT NULL,
                reference VARCHAR(128) NOT NULL,
                reason TEXT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            ) \(table)
            """,
        ]),
        // Issue 10.1: a fencing token on every saga; a takeover increments it.
        ("002_saga_epoch", [
            "ALTER TABLE sagas ADD COLUMN IF NOT EXISTS epoch BIGINT NOT NULL DEFAULT 1",
        ]),
        // Issue 10.5: sagas recovery gave up on wait for a person.
        ("003_saga_attention", [
            "ALTER TABLE sagas ADD COLUMN IF NOT EXISTS needs_attention TINYINT NOT NULL DEFAULT 0",
            "CREATE INDEX IF NOT EXISTS sagas_attention ON sagas (needs_attention, created_at)",
        ]),
        // Issue 12: a reservation takes units out of `stock` and a confirmation does not touch the product row
        // (a hot product's row is locked once per purchase, not twice); held units are the sagas' (the index
        // sums them). The foreign keys to products go: each took a shared lock on the product row that a
        // reservation's exclusive lock queued behind (products are never deleted). Idempotent: re-run whole.
        // Every app server must run this version before purchases resume (an older one would confirm by
        // `reserved −= qty`): stop them all, migrate, start the new ones.
        ("004_stock_excludes_held", [
            "ALTER TABLE sagas DROP FOREIGN KEY IF EXISTS sagas_product",
            "ALTER TABLE orders DROP FOREIGN KEY IF EXISTS orders_product",
            "CREATE INDEX IF NOT EXISTS sagas_by_product ON sagas (product_id, state)",
            "UPDATE products SET stock = stock - reserved, reserved = 0 WHERE reserved <> 0",
        ]),
        // Issue 12: recovery's claim scanned `sagas_lease` over every saga whose lease had passed — all the
        // finished ones, so each round read the whole history and, a locking read in REPEATABLE READ, held
        // it while purchases stepped. Unfinished sagas are found by state now: `state IN (unfinished states)
        // AND lease_until < now` is one short range per state (SQLite has a partial index for the same). An
        // index is added online (no table rebuild). `sagas_lease` stays while servers from before this version
        // may run (their claim uses it); a later migration drops it.
        ("005_sagas_by_state", [
            "CREATE INDEX IF NOT EXISTS sagas_by_state ON sagas (state, lease_until)",
        ]),
        // Issue 12: one app server relays the outbox at a time (each relayed every row before: twice the reads,
        // marks and broker traffic, every event sent twice); the others stand by and take over a lapsed lease.
        ("006_relay_lease", [
            """
            CREATE TABLE IF NOT EXISTS relay_leases (
                name VARCHAR(64) NOT NULL PRIMARY KEY,
                owner VARCHAR(128) NOT NULL,
                lease_until BIGINT NOT NULL
            ) \(table)
            """,
        ]),
        // Issue 12: order ids come from blocks each app server reserves here (`SQLOrderIDs`), so a saga's opening
        // transaction is one batch (an AUTO_INCREMENT id had to come back before the rest could be sent). The
        // first block starts past every existing order. Every app server must run this version before purchases
        // resume (an older one's AUTO_INCREMENT id could fall in a block already handed out): stop them all,
        // migrate, start the new ones.
        ("007_order_ids", [
            """
            CREATE TABLE IF NOT EXISTS id_blocks (
                name VARCHAR(64) NOT NULL PRIMARY KEY,
                next_id BIGINT NOT NULL
            ) \(table)
            """,
            "INSERT IGNORE INTO id_blocks (name, next_id) SELECT 'orders', COALESCE(MAX(id), 0) + 1 FROM orders",
        ]),
    ]

    static let bookkeeping = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            id VARCHAR(64) NOT NULL PRIMARY KEY,
            applied_at BIGINT NOT NULL
        ) \(table)
        """
}
