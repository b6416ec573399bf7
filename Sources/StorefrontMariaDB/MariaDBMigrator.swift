import Foundation
import MariaDB
import StorefrontCore

/// Applies the versioned schema (`MariaDBSchema`) on the primary, under an advisory lock so that servers
/// starting together do not race.
struct MariaDBMigrator: Sendable {
    let primary: MariaDBPool

    func migrate() async throws {
        try await primary.session { s in
            let lock = try s.query("SELECT GET_LOCK('storefront_migrate', 60) AS got", [] as [MariaDBValue]).rows.first?.decode("got", as: Int?.self)
            guard lock == 1 else { throw MariaDBError(kind: .lockWaitTimeout, message: "another server is migrating") }
            defer { _ = try? s.query("SELECT RELEASE_LOCK('storefront_migrate')", [] as [MariaDBValue]) }
            try s.execute(MariaDBSchema.bookkeeping)
            let applied = Set(try s.query("SELECT id FROM schema_migrations", [] as [MariaDBValue]).rows.map { try $0.decode("id", as: String.self) })
            for migration in MariaDBSchema.migrations where !applied.contains(migration.id) {
                for statement in migration.statements { try s.execute(statement) }
                _ = try s.query("INSERT INTO schema_migrations (id, applied_at) VALUES (?, ?)",
                                [migration.id, Millis.from(Date())] as [any MariaDBEncodable])
            }
        }
    }

    func applied() async throws -> [String] {
        try await primary.session { s in
            try s.query("SELECT id FROM schema_migrations ORDER BY id", [] as [MariaDBValue]).rows.map { try $0.decode("id") }
        }
    }
}
