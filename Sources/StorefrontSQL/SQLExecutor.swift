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
}
