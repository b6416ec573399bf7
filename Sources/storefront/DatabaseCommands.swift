import ArgumentParser
import Foundation
import StorefrontApp
import StorefrontCore

/// `storefront db …`: the MariaDB primary/replica runbook (docs/operations.md).
struct Database: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "Operate the MariaDB primary and replicas: status, promote, fence, unfence, attach.",
        discussion: """
            Uses STOREFRONT_DATABASE_URL and STOREFRONT_DATABASE_REPLICA_URLS for the servers and the operations
            account STOREFRONT_DATABASE_ADMIN_USER / STOREFRONT_DATABASE_ADMIN_PASSWORD (never the application's).
            """,
        subcommands: [DatabaseStatus.self, DatabasePromote.self, DatabaseFence.self, DatabaseUnfence.self, DatabaseAttach.self])
}

struct AdminOptions: ParsableArguments {
    @OptionGroup var options: ConfigOptions

    /// The runbook over the configured servers (primary first), as the operations account sees them.
    func runbook() throws -> DatabaseRunbook {
        let config = try options.load()
        do {
            return try DatabaseRunbook(config: config, logger: makeLogger(config))
        } catch let error as ConfigError {
            throw ValidationError(error.description)
        }
    }
}

struct DatabaseStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show each server: role, read_only, replication, lag, GTID position.")
    @OptionGroup var admin: AdminOptions

    func run() async throws {
        for (index, line) in try await admin.runbook().status().enumerated() { print("\(index + 1). \(line)") }
    }
}

struct DatabasePromote: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "promote",
        abstract: "Make a replica the primary (checks it, fences any other writable server, waits for catch-up).",
        discussion: """
            Refuses a replica that does not answer or whose SQL thread is stopped, before changing anything. Then fences
            every other writable server and waits until the replica applied everything the old primary wrote (its binary
            log position when it answers, else what the replica received), then STOP SLAVE; RESET SLAVE ALL; semi-sync
            waiting off (no replica yet: `attach` turns it on again); read_only=OFF. A replica that does not catch up in
            time is refused and the servers it fenced are writable again. App servers switch by themselves.
            """)
    @OptionGroup var admin: AdminOptions
    @Option(help: "The replica to promote: host:port or its number in `storefront db status` (default: the first replica).") var replica: String?
    @Option(help: "Seconds to wait for the replica to catch up.") var timeout = 30
    @Flag(help: "Promote even if the replica did not catch up in time (may lose the last writes).") var force = false

    func run() async throws {
        let lines = try await asValidation { try await admin.runbook().promote(replica: replica, catchUp: .seconds(timeout), force: force) }
        for line in lines { print(line) }
    }
}

struct DatabaseFence: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fence", abstract: "Make a server read-only (an old primary that came back writable).")
    @OptionGroup var admin: AdminOptions
    @Argument(help: "host:port or its number in `storefront db status`.") var server: String

    func run() async throws {
        try await asValidation { try await admin.runbook().fence(server) }
        print("\(server) is read-only")
    }
}

struct DatabaseUnfence: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unfence", abstract: "Make a fenced server writable again (refused for a replica, or while another server is writable).")
    @OptionGroup var admin: AdminOptions
    @Argument(help: "host:port or its number in `storefront db status`.") var server: String

    func run() async throws {
        try await asValidation { try await admin.runbook().unfence(server) }
        print("\(server) is writable")
    }
}

struct DatabaseAttach: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "attach", abstract: "Re-attach a fenced old primary as a replica of the current primary (GTID); the primary then waits for it (semi-sync).")
    @OptionGroup var admin: AdminOptions
    @Argument(help: "The server to attach: host:port or its number in `storefront db status`.") var server: String
    @Option(help: "The current primary: host:port or its number.") var to: String
    @Option(help: "Replication account on the primary.") var replicationUser = "repl"
    @Option(help: "Its password (default: STOREFRONT_DATABASE_REPLICATION_PASSWORD).") var replicationPassword: String?

    func run() async throws {
        let runbook = try admin.runbook()
        guard let password = replicationPassword ?? ProcessInfo.processInfo.environment["STOREFRONT_DATABASE_REPLICATION_PASSWORD"] else {
            throw ValidationError("give --replication-password or set STOREFRONT_DATABASE_REPLICATION_PASSWORD")
        }
        try await asValidation { try await runbook.attach(server, to: to, replicationUser: replicationUser, replicationPassword: password) }
        print("\(server) now replicates from \(to); check with: storefront db status")
    }
}

/// A wrong server name or a missing replica is a usage error, as ArgumentParser reports them.
func asValidation<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as ConfigError {
        throw ValidationError(error.description)
    }
}
