import Foundation
import Logging
import MariaDB

/// Operator actions on the primary/replica topology (`storefront db status|promote|fence`). They connect
/// with the operations account (replication and read_only administration), never the application's.
public struct MariaDBOperations: Sendable {
    /// Every configured server (primary first), with the operations account's credentials.
    public let nodes: [MariaDBConfiguration]
    let logger: Logger

    public init(nodes: [MariaDBConfiguration], adminUser: String, adminPassword: String?, logger: Logger = Logger(label: "storefront.db")) {
        self.nodes = nodes.map { node in
            var admin = node
            admin.user = adminUser
            admin.password = adminPassword
            admin.database = nil
            admin.connectTimeout = .seconds(3)
            return admin
        }
        self.logger = logger
    }

    /// What one server says about itself.
    public struct NodeStatus: Sendable, CustomStringConvertible {
        public var endpoint: String
        public var reachable: Bool
        public var readOnly: Bool?
        /// Replicating from (host:port), nil when it is not a replica.
        public var replicatingFrom: String?
        public var replicationRunning: Bool?
        /// The replica's connection to its primary (false: it lost it — reconnecting — or it was stopped).
        public var ioRunning: Bool?
        /// The replica applies what it received.
        public var sqlRunning: Bool?
        public var secondsBehind: Int?
        public var gtidPosition: String?
        public var error: String?

        public var role: String {
            guard reachable else { return "unreachable" }
            if replicatingFrom != nil { return "replica" }
            return readOnly == false ? "primary" : "fenced (read-only, not replicating)"
        }

        public var description: String {
            var parts = ["\(endpoint)", role]
            if let replicatingFrom { parts.append("from \(replicatingFrom) \(replicationRunning == true ? "running" : "STOPPED")") }
            if let secondsBehind { parts.append("\(secondsBehind) s behind") }
            if let gtidPosition { parts.append("gtid \(gtidPosition.isEmpty ? "-" : gtidPosition)") }
            if let error { parts.append(error) }
            return parts.joined(separator: "  ")
        }
    }

    public func status() async -> [NodeStatus] {
        var result: [NodeStatus] = []
        for node in nodes { result.append(await status(of: node)) }
        return result
    }

    func status(of node: MariaDBConfiguration) async -> NodeStatus {
        var status = NodeStatus(endpoint: "\(node.host):\(node.port)", reachable: false)
        do {
            let (readOnly, gtid, slave) = try await MariaDBConnection.withConnection(node) { connection in
                try await connection.withSession { s in
                    let row = try s.execute("SELECT @@global.read_only AS ro, @@global.gtid_current_pos AS gtid").rows[0]
                    return (try row.decode("ro", as: String.self), try row.decode("gtid", as: String.self), try s.execute("SHOW SLAVE STATUS").first)
                }
            }
            status.reachable = true
            status.readOnly = readOnly != "0"
            status.gtidPosition = gtid
            if let slave {
                let host = (try? slave.decode("Master_Host", as: String.self)) ?? "?"
                let port = (try? slave.decode("Master_Port", as: String.self)) ?? "?"
                status.replicatingFrom = "\(host):\(port)"
                status.ioRunning = (try? slave.decode("Slave_IO_Running", as: String.self)) == "Yes"
                status.sqlRunning = (try? slave.decode("Slave_SQL_Running", as: String.self)) == "Yes"
                status.replicationRunning = status.ioRunning == true && status.sqlRunning == true
                status.secondsBehind = (try? slave.decode("Seconds_Behind_Master", as: String?.self)).flatMap { $0.flatMap(Int.init) }
            }
        } catch {
            status.error = "\(error)"
        }
        return status
    }

    /// Makes `node` read-only (an old primary that must not take writes). Idempotent.
    public func fence(_ node: MariaDBConfiguration) async throws {
        _ = try await MariaDBConnection.withConnection(admin(node)) { connection in
            try await connection.withSession { s in try s.execute("SET GLOBAL read_only = ON") }
        }
        logger.notice("fenced (read_only=ON)", metadata: ["node": "\(node.host):\(node.port)"])
    }

    public struct Promotion: Sendable {
        public var promoted: String
        /// The replica's GTID position when it stopped replicating (everything it had received was applied).
        public var gtidPosition: String
        public var fencedOldPrimary: Bool
    }

    /// Promotes `replica`: fences every other reachable writable server, waits (at most `catchUp`) until the
    /// replica applied everything it received, stops replication, forgets its primary and turns read_only off.
    /// Refuses (without changing anything on the replica) if it cannot catch up in time, unless `force`.
    public func promote(_ replica: MariaDBConfiguration, catchUp: Duration = .seconds(30), force: Bool = false) async throws -> Promotion {
        let target = admin(replica)
        var fenced = false
        for node in nodes where !(node.host == target.host && node.port == target.port) {
            let status = await status(of: node)
            if status.reachable, status.readOnly == false {
                try await fence(node)
                fenced = true
            }
        }
        let seconds = max(1, Int(catchUp.components.seconds))
        let position = try await MariaDBConnection.withConnection(target) { connection in try await connection.withSession { s -> String in
            guard let slave = try s.execute("SHOW SLAVE STATUS").first else {
                throw MariaDBError(kind: .other, message: "\(target.host):\(target.port) is not a replica (no slave status); nothing to promote")
            }
            let received = (try? slave.decode("Gtid_IO_Pos", as: String.self)) ?? ""
            if !received.isEmpty {
                let waited = try s.query("SELECT MASTER_GTID_WAIT(?, ?) AS r", [received, seconds] as [any MariaDBEncodable]).first?.decode("r", as: Int?.self)
                if waited != 0 && !force {
                    throw MariaDBError(kind: .other, message: "the replica did not apply \(received) within \(seconds) s; retry, or --force to promote anyway")
                }
            }
            try s.execute("STOP SLAVE")
            try s.execute("RESET SLAVE ALL")
            try s.execute("SET GLOBAL read_only = OFF")
            return try s.execute("SELECT @@global.gtid_current_pos AS gtid").rows[0].decode("gtid")
        } }
        logger.notice("promoted to primary", metadata: ["node": "\(target.host):\(target.port)", "gtid": "\(position)"])
        return Promotion(promoted: "\(target.host):\(target.port)", gtidPosition: position, fencedOldPrimary: fenced)
    }

    /// Re-attaches a fenced old primary as a replica of `primary` (GTID auto-positioning from its own position).
    public func attach(_ node: MariaDBConfiguration, to primary: MariaDBConfiguration, replicationUser: String, replicationPassword: String) async throws {
        _ = try await MariaDBConnection.withConnection(admin(node)) { connection in try await connection.withSession { s in
            try s.execute("SET GLOBAL read_only = ON")
            try s.execute("STOP SLAVE")
            try s.execute("""
                CHANGE MASTER TO MASTER_HOST='\(Self.quoted(primary.host))', MASTER_PORT=\(primary.port),
                    MASTER_USER='\(Self.quoted(replicationUser))', MASTER_PASSWORD='\(Self.quoted(replicationPassword))',
                    MASTER_USE_GTID=current_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1
                """)
            try s.execute("START SLAVE")
        } }
        logger.notice("attached as a replica", metadata: ["node": "\(node.host):\(node.port)", "primary": "\(primary.host):\(primary.port)"])
    }

    /// `node` with the operations credentials.
    func admin(_ node: MariaDBConfiguration) -> MariaDBConfiguration {
        if let configured = nodes.first(where: { $0.host == node.host && $0.port == node.port }) { return configured }
        var admin = node
        admin.user = nodes[0].user
        admin.password = nodes[0].password
        admin.database = nil
        return admin
    }

    static func quoted(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'")
    }
}
