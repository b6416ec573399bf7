import Foundation
import HummingbirdTesting
import StorefrontApp
import Testing

/// The MariaDB engine through the HTTP API.
@Suite("Routes on MariaDB")
struct MariaDBRoutesTests {
    /// A dead replica does not make the server unready: `/health/ready` is 200 with the replicas `degraded`,
    /// and product views are served (from the primary).
    @Test func aDeadReplicaIsDegradedNotUnready() async throws {
        let (primary, _) = try await freshMariaDBURLs()
        let storefront = try await makeStorefront {
            $0.databaseURL = primary
            $0.mariadb.replicaURLs = ["mysql://app:apppass@127.0.0.1:1/storefront"]
        }
        try await storefront.test { client in
            let id = try await client.createProduct(stock: 3)
            #expect(try await client.call(.get, "/products/\(id)").int("available") == 3)
            let ready = try await client.call(.get, "/health/ready")
            #expect(ready.status == .ok)
            let checks = ready.json["checks"] as? [String: any Sendable]
            #expect((checks?["database"] as? [String: any Sendable])?["status"] as? String == "up")
            #expect((checks?["database_replicas"] as? [String: any Sendable])?["status"] as? String == "degraded", "\(ready.raw)")
            // Each server behind the check, when asked for: the primary up, the dead replica down.
            #expect((checks?["database"] as? [String: any Sendable])?["nodes"] == nil, "not unless asked for")
            let detailed = try await client.call(.get, "/health/ready?nodes=true")
            let detailedChecks = detailed.json["checks"] as? [String: any Sendable]
            let nodes = (detailedChecks?["database"] as? [String: any Sendable])?["nodes"] as? [[String: any Sendable]] ?? []
            #expect(nodes.map { $0["role"] as? String } == ["primary", "replica"], "\(detailed.raw)")
            #expect(nodes.map { $0["status"] as? String } == ["up", "down"], "\(detailed.raw)")
            #expect(try await client.call(.get, "/health/ready?nodes=maybe").status == .badRequest)
            // The console shows the same rows.
            let (cookie, _) = try await ConsolePageTests.signIn(client)
            let status = try await client.call(.get, "/admin/console/status", headers: [.cookie: cookie])
            let servers = try #require(status.json["servers"] as? [[String: Any]])
            #expect(servers.map { $0["check"] as? String } == ["database", "database"])
            #expect(servers.last?["endpoint"] as? String == "127.0.0.1:1/storefront" && servers.last?["status"] as? String == "down")
            let dashboard = try await client.call(.get, "/admin/console", headers: [.cookie: cookie])
            #expect(dashboard.raw.contains("<td>127.0.0.1:1/storefront</td>") && dashboard.raw.contains("out of read rotation"), "\(dashboard.raw)")
        }
    }
}
