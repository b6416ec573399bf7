import Foundation
import Logging
import MariaDB
import Synchronization

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
            // A server frozen (SIGSTOP, a stalled VM) accepts TCP connections and never answers: bound every wait.
            admin.connectTimeout = .seconds(2)
            admin.readTimeout = .seconds(3)
            admin.writeTimeout = .seconds(3)
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
        /// What this server wrote to its binary log (its own commits included, acknowledged or not).
        public var binlogPosition: String?
        /// Commits wait for a replica's acknowledgement, with no fallback to asynchronous replication
        /// (semi-sync on, `wait_no_slave` on, a timeout of a day or more): promoting a replica loses nothing.
        public var lossless: Bool?
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
            if role == "primary", let lossless { parts.append(lossless ? "semi-sync lossless" : "ASYNCHRONOUS (acknowledges writes no replica has)") }
            if let error { parts.append(error) }
            return parts.joined(separator: "  ")
        }
    }

    /// Every server's status, asked at once (a frozen server costs one timeout, not one per server).
    public func status() async -> [NodeStatus] {
        await withTaskGroup(of: (Int, NodeStatus).self) { group in
            for (index, node) in nodes.enumerated() { group.addTask { (index, await status(of: node)) } }
            var result = [NodeStatus?](repeating: nil, count: nodes.count)
            for await (index, status) in group { result[index] = status }
            return result.map { $0! }
        }
    }

    func status(of node: MariaDBConfiguration) async -> NodeStatus {
        var status = NodeStatus(endpoint: "\(node.host):\(node.port)", reachable: false)
        do {
            let (row, slave) = try await MariaDBConnection.withConnection(node) { connection in
                try await connection.withSession { s in
                    (try s.execute("SELECT @@global.read_only AS ro, @@global.gtid_current_pos AS gtid, @@global.gtid_binlog_pos AS binlog, \(Self.losslessSQL) AS lossless").rows[0],
                     try s.execute("SHOW SLAVE STATUS").first)
                }
            }
            status.reachable = true
            status.readOnly = try row.decode("ro", as: String.self) != "0"
            status.gtidPosition = try row.decode("gtid", as: String.self)
            status.binlogPosition = try row.decode("binlog", as: String.self)
            status.lossless = try row.decode("lossless", as: String.self) == "1"
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

    /// Makes `node` read-only (an old primary that must not take writes). Idempotent. `read_only` waits for
    /// the commits in flight — a commit waiting for a replica's acknowledgement waits as long as that takes —
    /// so the wait is bounded by `lockWait`; past it, the fence fails and nothing changed.
    public func fence(_ node: MariaDBConfiguration, lockWait: Duration = .seconds(3)) async throws {
        let seconds = max(1, Int(lockWait.components.seconds))
        var target = admin(node)
        target.readTimeout = .seconds(seconds + 5)
        do {
            _ = try await MariaDBConnection.withConnection(target) { connection in
                try await connection.withSession { s in
                    try s.execute("SET SESSION lock_wait_timeout = \(seconds)")
                    try s.execute("SET GLOBAL read_only = ON")
                }
            }
        } catch let error as MariaDBError {
            throw MariaDBError(kind: error.kind, message: "could not fence \(node.host):\(node.port) within \(seconds) s (commits in flight wait for a replica's acknowledgement?): \(error.message)")
        }
        logger.notice("fenced (read_only=ON)", metadata: ["node": "\(node.host):\(node.port)"])
    }

    public struct Promotion: Sendable {
        public var promoted: String
        /// The replica's GTID position when it stopped replicating (everything it had received was applied).
        public var gtidPosition: String
        public var fencedOldPrimary: Bool
    }

    /// Promotes `replica`, checking before it changes anything: the replica must answer and replicate with its
    /// SQL thread running. Then it fences every other writable server, waits (at most `catchUp`) until the
    /// replica applied everything its primary wrote — the old primary's binary log position when that server
    /// answers (its unacknowledged tail included), else everything the replica received — stops replication,
    /// forgets its primary, turns semi-sync waiting off (no replica can acknowledge yet; `attach` turns it on
    /// again) and read_only off. A replica that cannot catch up in time is refused, unless `force`, and the
    /// servers it fenced are made writable again: a refused promotion leaves the primary as it was.
    public func promote(_ replica: MariaDBConfiguration, catchUp: Duration = .seconds(30), force: Bool = false) async throws -> Promotion {
        var target = admin(replica)
        let name = "\(target.host):\(target.port)"
        let before = await status(of: target)
        guard before.reachable else {
            throw MariaDBError(kind: .other, message: "\(name) does not answer (\(before.error ?? "unreachable")); nothing was changed")
        }
        guard let upstream = before.replicatingFrom else {
            throw MariaDBError(kind: .other, message: "\(name) is not a replica (no slave status); nothing to promote, nothing was changed")
        }
        if before.sqlRunning != true && !force {
            throw MariaDBError(kind: .other, message: "\(name) does not apply what it receives (replication SQL thread stopped); nothing was changed; start it, or --force")
        }
        var fenced: [MariaDBConfiguration] = []
        let halfWay = PassedFlag()
        func halfWayPast(_ error: any Error) -> Bool { halfWay.passed }
        do {
            var waitFor: String?
            for node in nodes where !(node.host == target.host && node.port == target.port) {
                let other = await status(of: node)
                guard other.reachable else { continue }
                if other.readOnly == false {
                    // Commits waiting for the replica's acknowledgement block the fence: the replica lacks them.
                    try await fence(node, lockWait: catchUp)
                    fenced.append(node)
                }
                // The replica's own primary answers: everything it wrote (read after fencing, so nothing follows).
                if "\(node.host):\(node.port)" == upstream, let binlog = await status(of: node).binlogPosition, !binlog.isEmpty {
                    waitFor = binlog
                }
            }
            let oldPrimaryBinlog = waitFor
            let seconds = max(1, Int(catchUp.components.seconds))
            target.readTimeout = .seconds(seconds + 10)
            let position = try await MariaDBConnection.withConnection(target) { connection in try await connection.withSession { s -> String in
                // The old primary does not answer: stop receiving first, so that what was received is all there
                // is — else it could wake up, the replica fetch and acknowledge more commits, and STOP SLAVE drop
                // them unapplied (acknowledged writes lost). (When it answers it is fenced and its binlog
                // position is the target: keep receiving until it is reached.)
                if oldPrimaryBinlog == nil { try s.execute("STOP SLAVE IO_THREAD") }
                guard let slave = try s.execute("SHOW SLAVE STATUS").first else {
                    throw MariaDBError(kind: .other, message: "\(name) is not a replica (no slave status); nothing to promote")
                }
                let received = (try? slave.decode("Gtid_IO_Pos", as: String.self)) ?? ""
                let wanted = oldPrimaryBinlog ?? received
                if !wanted.isEmpty {
                    let waited = try s.query("SELECT MASTER_GTID_WAIT(?, ?) AS r", [wanted, seconds] as [any MariaDBEncodable]).first?.decode("r", as: Int?.self)
                    if waited != 0 && !force {
                        let whose = oldPrimaryBinlog == nil ? "what it received" : "the old primary's binary log"
                        if oldPrimaryBinlog == nil { try? s.execute("START SLAVE IO_THREAD") }
                        throw MariaDBError(kind: .other, message: "\(name) did not apply \(whose) (\(wanted)) within \(seconds) s; promoting it would lose those writes; retry, or --force to promote anyway")
                    }
                }
                halfWay.pass()
                try s.execute("STOP SLAVE")
                try s.execute("RESET SLAVE ALL")
                try s.execute("SET GLOBAL rpl_semi_sync_master_enabled = OFF")
                try s.execute("SET GLOBAL read_only = OFF")
                return try s.execute("SELECT @@global.gtid_current_pos AS gtid").rows[0].decode("gtid")
            } }
            logger.notice("promoted to primary", metadata: ["node": "\(name)", "gtid": "\(position)", "waitedFor": "\(oldPrimaryBinlog ?? "what it received")"])
            return Promotion(promoted: name, gtidPosition: position, fencedOldPrimary: !fenced.isEmpty)
        } catch {
            if halfWayPast(error) {
                logger.error("promotion stopped half-way: replication is stopped on the replica; finish it there (SET GLOBAL read_only = OFF) or re-attach it; the old primary stays fenced",
                             metadata: ["node": "\(name)", "error": "\(error)"])
                throw error
            }
            for node in fenced {
                do {
                    try await unfence(node)
                } catch {
                    logger.error("promotion refused, and the server it fenced could not be made writable again: run storefront db unfence",
                                 metadata: ["node": "\(node.host):\(node.port)", "error": "\(error)"])
                }
            }
            throw error
        }
    }

    /// Makes `node` writable again (the way back from `fence`, or from a promotion refused half-way). Refuses a
    /// replica (writing to it breaks replication) and a second writable server (two primaries).
    public func unfence(_ node: MariaDBConfiguration) async throws {
        let name = "\(node.host):\(node.port)"
        let target = await status(of: admin(node))
        guard target.reachable else { throw MariaDBError(kind: .other, message: "\(name) does not answer: \(target.error ?? "unreachable")") }
        if let upstream = target.replicatingFrom {
            throw MariaDBError(kind: .other, message: "\(name) is a replica of \(upstream): promote it instead (storefront db promote --replica \(name))")
        }
        var replicated = false
        for other in nodes where !(other.host == node.host && other.port == node.port) {
            let status = await status(of: other)
            guard status.reachable else {
                throw MariaDBError(kind: .other, message: "\(status.endpoint) does not answer: it may be writable, and two writable servers would be two primaries; unfence once every server answers")
            }
            if status.readOnly == false {
                throw MariaDBError(kind: .other, message: "\(status.endpoint) is writable: two writable servers would be two primaries; fence it first")
            }
            if status.replicatingFrom == name { replicated = true }
        }
        let hasReplica = replicated
        _ = try await MariaDBConnection.withConnection(admin(node)) { connection in
            try await connection.withSession { s in
                // Lossless again when a replica replicates from it (a restarted server starts without waiting).
                if hasReplica { try s.execute("SET GLOBAL rpl_semi_sync_master_enabled = ON") }
                try s.execute("SET GLOBAL read_only = OFF")
            }
        }
        logger.notice("unfenced (read_only=OFF)", metadata: ["node": "\(name)", "semiSync": "\(hasReplica ? "on (a replica is attached)" : "unchanged")"])
    }

    /// Re-attaches a fenced old primary as a replica of `primary` (GTID auto-positioning from its own position):
    /// read-only, semi-sync waiting off on it, replicating; once it is connected, semi-sync waiting on on the
    /// primary.
    public func attach(_ node: MariaDBConfiguration, to primary: MariaDBConfiguration, replicationUser: String, replicationPassword: String) async throws {
        _ = try await MariaDBConnection.withConnection(admin(node)) { connection in try await connection.withSession { s in
            try s.execute("SET SESSION lock_wait_timeout = 3")
            try s.execute("SET GLOBAL read_only = ON")
            // A replica must not wait for acknowledgements of what it applies (an old primary had it on).
            try s.execute("SET GLOBAL rpl_semi_sync_master_enabled = OFF")
            try s.execute("STOP SLAVE")
            try s.execute("""
                CHANGE MASTER TO MASTER_HOST='\(Self.quoted(primary.host))', MASTER_PORT=\(primary.port),
                    MASTER_USER='\(Self.quoted(replicationUser))', MASTER_PASSWORD='\(Self.quoted(replicationPassword))',
                    MASTER_USE_GTID=slave_pos, MASTER_DEMOTE_TO_SLAVE=1, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1
                """)
            try s.execute("START SLAVE")
        } }
        // Once the replica is connected, the primary waits for its acknowledgement again (lossless).
        let deadline = ContinuousClock.now + .seconds(30)
        var replicating = await status(of: admin(node))
        while replicating.ioRunning != true, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
            replicating = await status(of: admin(node))
        }
        guard replicating.ioRunning == true else {
            throw MariaDBError(kind: .other, message: "\(node.host):\(node.port) did not connect to \(primary.host):\(primary.port) within 30 s (\(replicating.description)); the primary stays asynchronous")
        }
        // Confirmed from the primary's side: a semi-sync replica is connected (an I/O thread can run a moment
        // before the primary refuses its position) — else waiting would block every commit.
        let semiSyncClients = try await MariaDBConnection.withConnection(admin(primary)) { connection in
            try await connection.withSession { s -> Int in
                try s.execute("SET GLOBAL rpl_semi_sync_master_enabled = ON")
                var clients = 0
                for _ in 0..<25 {
                    clients = Int(try s.execute("SELECT VARIABLE_VALUE AS v FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_CLIENTS'")
                        .first?.decode("v", as: String.self) ?? "0") ?? 0
                    if clients > 0 { break }
                    Thread.sleep(forTimeInterval: 0.2)
                }
                if clients == 0 { try s.execute("SET GLOBAL rpl_semi_sync_master_enabled = OFF") }
                return clients
            }
        }
        guard semiSyncClients > 0 else {
            let now = await status(of: admin(node))
            throw MariaDBError(kind: .other, message: "\(node.host):\(node.port) did not connect to \(primary.host):\(primary.port) as a semi-sync replica within 5 s (\(now.description)); the primary stays asynchronous (it would block every commit)")
        }
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

    /// 1 when the server's commits wait for a replica with no fallback to asynchronous replication.
    static let losslessSQL = """
        (@@global.rpl_semi_sync_master_enabled = 1 AND @@global.rpl_semi_sync_master_wait_no_slave = 1 \
        AND @@global.rpl_semi_sync_master_timeout >= 86400000)
        """

    static func quoted(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'")
    }
}

/// Set once a promotion passed the point where replication is stopped (there is no going back from there).
private final class PassedFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var passed: Bool { flag.load(ordering: .relaxed) }
    func pass() { flag.store(true, ordering: .relaxed) }
}
