import Foundation
import Logging
import MariaDB
import StorefrontCore
import StorefrontMariaDB

/// `storefront db status|promote|fence|unfence|attach` (docs/operations.md): the MariaDB primary/replica runbook,
/// with the operations account, never the application's. Servers are named `host:port` or by their number in
/// `status` (1 = the configured primary).
public struct DatabaseRunbook: Sendable {
    let operations: MariaDBOperations

    /// Checks that the configuration names a MariaDB engine and an operations account.
    public init(config: StorefrontConfig, logger: Logger) throws {
        guard config.databaseURL.hasPrefix("mysql:") || config.databaseURL.hasPrefix("mariadb:") else {
            throw ConfigError("STOREFRONT_DATABASE_URL is not a mysql:// URL: these commands operate the MariaDB engine")
        }
        guard let user = config.mariadb.adminUser else {
            throw ConfigError("set STOREFRONT_DATABASE_ADMIN_USER (and _PASSWORD): the operations account, not the application's")
        }
        do {
            let nodes = try ([config.databaseURL] + config.mariadb.replicaURLs).map { try MariaDBConfiguration(url: $0) }
            operations = MariaDBOperations(nodes: nodes, adminUser: user, adminPassword: config.mariadb.adminPassword, logger: logger)
        } catch let error as MariaDBError {
            throw ConfigError("database URL: \(error.message)")
        }
    }

    /// One line per server: role, read_only, replication, lag, GTID position.
    public func status() async -> [String] {
        await operations.status().map(\.description)
    }

    /// Promotes `replica` (default: the first configured replica). Returns what to print.
    public func promote(replica: String?, catchUp: Duration, force: Bool) async throws -> [String] {
        guard operations.nodes.count > 1 else { throw ConfigError("no replica configured (STOREFRONT_DATABASE_REPLICA_URLS)") }
        let target = try replica.map(node) ?? operations.nodes[1]
        let promotion = try await operations.promote(target, catchUp: catchUp, force: force)
        return [
            "promoted \(promotion.promoted) at GTID \(promotion.gtidPosition)\(promotion.fencedOldPrimary ? "; the old primary was reachable and is now read-only" : "")",
            "next: once the old primary is back (it restarts read-only), re-attach it: storefront db attach <host:port> --to \(promotion.promoted)",
        ]
    }

    public func fence(_ server: String) async throws {
        try await operations.fence(try node(server))
    }

    public func unfence(_ server: String) async throws {
        try await operations.unfence(try node(server))
    }

    public func attach(_ server: String, to primary: String, replicationUser: String, replicationPassword: String) async throws {
        try await operations.attach(try node(server), to: try node(primary), replicationUser: replicationUser, replicationPassword: replicationPassword)
    }

    /// `host:port` (or a 1-based index into the configured servers) → that server.
    func node(_ spec: String) throws -> MariaDBConfiguration {
        if let index = Int(spec), (1...operations.nodes.count).contains(index) { return operations.nodes[index - 1] }
        let parts = spec.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw ConfigError("give a server as host:port or its number in `storefront db status`") }
        guard let node = operations.nodes.first(where: { $0.host == parts[0] && $0.port == port }) else {
            throw ConfigError("\(spec) is not one of the configured servers (STOREFRONT_DATABASE_URL, STOREFRONT_DATABASE_REPLICA_URLS)")
        }
        return node
    }
}
