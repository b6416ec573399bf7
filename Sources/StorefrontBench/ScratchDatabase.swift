import Foundation
import MariaDB

/// A throw-away MariaDB database (`prefix_<random>`) for benchmarks and tests that want one of their own.
public enum ScratchDatabase {
    /// Creates the database on the server of `url` (whose user needs CREATE on it) and returns its name and
    /// `urls` pointed at it (the same database seen through a replica, for instance).
    public static func create(on url: String, prefix: String, pointing urls: [String]) async throws -> (name: String, urls: [String]) {
        let name = "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
        try await execute("CREATE DATABASE \(name)", on: url)
        let renamed = try urls.map { url -> String in
            guard var components = URLComponents(string: url) else { throw MariaDBError(kind: .other, message: "not a URL: \(url)") }
            components.path = "/" + name
            return components.string ?? url
        }
        return (name, renamed)
    }

    /// Drops a database `create` made.
    public static func drop(_ name: String, on url: String) async throws {
        try await execute("DROP DATABASE \(name)", on: url)
    }

    private static func execute(_ sql: String, on url: String) async throws {
        var admin = try MariaDBConfiguration(url: url)
        admin.database = nil
        _ = try await MariaDBConnection.withConnection(admin) { connection in
            try await connection.withSession { try $0.execute(sql) }
        }
    }
}
