import ArgumentParser
import Foundation
import MariaDB
import StorefrontCore
import StorefrontMariaDB

/// `storefront db …`: the MariaDB primary/replica runbook (docs/operations.md).
struct Database: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "Operate the MariaDB primary and replicas: status, promote, fence, attach.",
        discussion: """
            Uses STOREFRONT_DATABASE_URL and STOREFRONT_DATABASE_REPLICA_URLS for the servers and the operations
            account STOREFRONT_DATABASE_ADMIN_USER / STOREFRONT_DATABASE_ADMIN_PASSWORD (never the application's).
            """,
        subcommands: [DatabaseStatus.self, DatabasePromote.self, DatabaseFence.self, DatabaseAttach.self])
}

struct AdminOptions: ParsableArguments {
    @OptionGroup var options: ConfigOptions

    /// The configured servers (primary first) as the operations account sees them.
    func operations() throws -> (MariaDBOperations, StorefrontConfig) {
        let config = try options.load()
        guard config.databaseURL.hasPrefix("mysql:") || config.databaseURL.hasPrefix("mariadb:") else {
            throw ValidationError("STOREFRONT_DATABASE_URL is not a mysql:// URL: these commands operate the MariaDB engine")
        }
        guard let user = config.databaseAdminUser else {
            throw ValidationError("set STOREFRONT_DATABASE_ADMIN_USER (and _PASSWORD): the operations account, not the application's")
        }
        do {
            let nodes = try ([config.databaseURL] + config.databaseReplicaURLs).map { try MariaDBConfiguration(url: $0) }
            return (MariaDBOperations(nodes: nodes, adminUser: user, adminPassword: config.databaseAdminPassword, logger: makeLogger(config)), config)
        } catch let error as MariaDBError {
            throw ValidationError("database URL: \(error.message)")
        }
    }

    /// `host:port` (or a 1-based index into the configured servers) → that server.
    static func node(_ spec: String, in operations: MariaDBOperations) throws -> MariaDBConfiguration {
        if let index = Int(spec), (1...operations.nodes.count).contains(index) { return operations.nodes[index - 1] }
        let parts = spec.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("give a server as host:port or its number in `storefront db status`") }
        guard let node = operations.nodes.first(where: { $0.host == parts[0] && $0.port == port }) else {
            throw ValidationError("\(spec) is not one of the configured servers (STOREFRONT_DATABASE_URL, STOREFRONT_DATABASE_REPLICA_URLS)")
        }
        return node
    }
}

struct DatabaseStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show each server: role, read_only, replication, lag, GTID position.")
    @OptionGroup var admin: AdminOptions

    func run() async throws {
        let (operations, _) = try admin.operations()
        for (index, status) in await operations.status().enumerated() { print("\(index + 1). \(status)") }
    }
}

struct DatabasePromote: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "promote",
        abstract: "Make a replica the primary (fences any other writable server first).",
        discussion: "Waits until the replica applied everything it received, then STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=OFF. App servers switch by themselves.")
    @OptionGroup var admin: AdminOptions
    @Option(help: "The replica to promote: host:port or its number in `storefront db status` (default: the first replica).") var replica: String?
    @Option(help: "Seconds to wait for the replica to catch up.") var timeout = 30
    @Flag(help: "Promote even if the replica did not catch up in time (may lose the last writes).") var force = false

    func run() async throws {
        let (operations, _) = try admin.operations()
        guard operations.nodes.count > 1 else { throw ValidationError("no replica configured (STOREFRONT_DATABASE_REPLICA_URLS)") }
        let target = try replica.map { try AdminOptions.node($0, in: operations) } ?? operations.nodes[1]
        let promotion = try await operations.promote(target, catchUp: .seconds(timeout), force: force)
        print("promoted \(promotion.promoted) at GTID \(promotion.gtidPosition)\(promotion.fencedOldPrimary ? "; the old primary was reachable and is now read-only" : "")")
        print("next: once the old primary is back (it restarts read-only), re-attach it: storefront db attach <host:port> --to \(promotion.promoted)")
    }
}

struct DatabaseFence: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fence", abstract: "Make a server read-only (an old primary that came back writable).")
    @OptionGroup var admin: AdminOptions
    @Argument(help: "host:port or its number in `storefront db status`.") var server: String

    func run() async throws {
        let (operations, _) = try admin.operations()
        try await operations.fence(try AdminOptions.node(server, in: operations))
        print("\(server) is read-only")
    }
}

struct DatabaseAttach: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "attach", abstract: "Re-attach a fenced old primary as a replica of the current primary (GTID).")
    @OptionGroup var admin: AdminOptions
    @Argument(help: "The server to attach: host:port or its number in `storefront db status`.") var server: String
    @Option(help: "The current primary: host:port or its number.") var to: String
    @Option(help: "Replication account on the primary.") var replicationUser = "repl"
    @Option(help: "Its password (default: STOREFRONT_DATABASE_REPLICATION_PASSWORD).") var replicationPassword: String?

    func run() async throws {
        let (operations, _) = try admin.operations()
        guard let password = replicationPassword ?? ProcessInfo.processInfo.environment["STOREFRONT_DATABASE_REPLICATION_PASSWORD"] else {
            throw ValidationError("give --replication-password or set STOREFRONT_DATABASE_REPLICATION_PASSWORD")
        }
        try await operations.attach(try AdminOptions.node(server, in: operations), to: try AdminOptions.node(to, in: operations),
                                    replicationUser: replicationUser, replicationPassword: password)
        print("\(server) now replicates from \(to); check with: storefront db status")
    }
}
