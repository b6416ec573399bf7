import Foundation
import StorefrontCore

/// An engine the SQL stores run on: SQLite (embedded) or MariaDB (primary + replicas). The engine owns
/// connections, routing, retries of deadlock victims and the mapping of outages to
/// `StorefrontError.unavailable`; the stores own the SQL.
public protocol SQLExecutor: Sendable {
    /// What differs between the engines' SQL.
    var dialect: SQLDialect { get }
    /// `body` without a transaction, where `consistency` says (a replica may lag).
    func read<T: Sendable>(_ consistency: ReadConsistency, _ body: @escaping @Sendable (any SQLStatements) throws -> T) async throws -> T
    /// `body` in one transaction on the primary: committed when it returns, rolled back when it throws.
    func write<T: Sendable>(_ body: @escaping @Sendable (any SQLStatements) throws -> T) async throws -> T
    /// `body` on the primary with each statement committed on its own (no enclosing transaction): for a write
    /// that is one statement, or whose statements need not commit together — it saves a client/server engine
    /// the START TRANSACTION and COMMIT round trips.
    func writeAutocommit<T: Sendable>(_ body: @escaping @Sendable (any SQLStatements) throws -> T) async throws -> T
}

extension SQLExecutor {
    /// An engine without round trips to save (SQLite, in-process) runs it as one transaction.
    public func writeAutocommit<T: Sendable>(_ body: @escaping @Sendable (any SQLStatements) throws -> T) async throws -> T {
        try await write(body)
    }
}
