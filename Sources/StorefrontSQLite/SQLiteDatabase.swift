import Foundation
import GRDB
import Logging
import StorefrontCore
import StorefrontSQL

/// The embedded database: one SQLite file in WAL mode, opened through GRDB's `DatabasePool`
/// (one serialized writer, concurrent readers; every call runs on GRDB's own threads, never blocking the
/// cooperative pool).
///
/// Durability: the writer commits with `synchronous = FULL` — a commit has reached the disk (the WAL is
/// fsynced) before the write returns, so an answered purchase survives a power cut, not only a crash of the
/// process (GRDB's WAL default, `NORMAL`, syncs only at checkpoints). The `fsync` is shared: concurrent writes
/// are group-committed (`SQLiteGroupCommit`).
public final class SQLiteDatabase: Sendable, HealthCheckable {
    public let path: String
    let writer: any DatabaseWriter
    let groupCommit: SQLiteGroupCommit

    /// Opens (creating if needed) the database at `path` (`:memory:` for a private in-memory database).
    /// `maxBatch`: the most writes group-committed in one transaction (1: each commits alone).
    public init(path: String, maxBatch: Int = 64) throws {
        self.path = path
        var config = Configuration()
        config.busyMode = .timeout(10)  // several processes may share the file
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA foreign_keys = ON")
        }
        if path == ":memory:" {
            writer = try DatabaseQueue(configuration: config)
        } else {
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            writer = try DatabasePool(path: path, configuration: config)
        }
        // After opening: GRDB sets NORMAL on a pool's writer when it switches it to WAL, after
        // `prepareDatabase`. The writer is one long-lived connection; only it commits.
        // temp_store MEMORY: the savepoint each group-committed write runs in journals the original of every page
        // it changes; on disk that journal (a temporary file) took three times the WAL's writes.
        try writer.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
        }
        groupCommit = SQLiteGroupCommit(writer: writer, maxBatch: max(1, maxBatch))
    }

    /// A `PRAGMA` as the writer connection has it (`synchronous`: 2 = FULL; `temp_store`: 2 = MEMORY).
    func writerPragma(_ name: String) throws -> Int {
        try writer.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA \(name)") ?? -1 }
    }

    /// Parses `sqlite:///absolute/path.db`, `sqlite://relative.db`, `sqlite:relative.db` or `sqlite::memory:`.
    public static func path(fromURL url: String) throws -> String {
        for prefix in ["sqlite://", "sqlite:"] where url.hasPrefix(prefix) {
            let rest = String(url.dropFirst(prefix.count))
            guard !rest.isEmpty else { break }
            return rest == ":memory:" ? rest : rest
        }
        throw StorefrontError.validation("not a SQLite URL: \(url) (expected sqlite:///path/to/file.db)")
    }

    /// Applies every migration not yet applied (versioned, idempotent).
    public func migrate() throws {
        // Migrations may rebuild tables or indexes: their temporary data may spill to disk as SQLite's default
        // allows, rather than be held in memory like the savepoint journals of everyday writes.
        try writer.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA temp_store = DEFAULT") }
        defer { try? writer.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA temp_store = MEMORY") } }
        try SQLiteSchema.migrator.migrate(writer)
    }

    /// Migration identifiers already applied.
    public func appliedMigrations() throws -> [String] {
        try writer.read { db in try SQLiteSchema.migrator.appliedIdentifiers(db).sorted() }
    }

    /// Closes the connections; later calls fail (used on shutdown and by tests of a dead database).
    public func close() throws {
        try writer.close()
    }

    public var healthName: String { "database" }

    public func checkHealth() async throws {
        _ = try await writer.read { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }

    public var products: SQLProductStore { SQLProductStore(database: self) }
    public func sagas(topic: String = SagaEvent.defaultTopic) -> SQLSagaStore { SQLSagaStore(database: self, topic: topic) }
    public var payments: SQLPaymentLedger { SQLPaymentLedger(database: self) }
}

extension DatabaseError {
    var isUniqueViolation: Bool { extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE || extendedResultCode == .SQLITE_CONSTRAINT_PRIMARYKEY }
}
