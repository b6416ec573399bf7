import Foundation
import Logging
import MariaDB
import Metrics
import Synchronization

/// Watches the servers and carries out what the topology decides: finds the writable server when the
/// primary fails or turns read-only, promotes a replica after a long outage (opt-in, leader-elected), and
/// puts replicas in or out of read rotation.
final class MariaDBMonitor: Sendable {
    let nodes: [MariaDBNode]
    let topology: SharedTopology
    let settings: MariaDBSettings
    let logger: Logger
    private let primarySwitches = Counter(label: "storefront_db_primary_switches_total")
    private let autoPromotions = Atomic<Int>(0)
    private let promotionsRefused = Counter(label: "storefront_db_promotions_refused_total")

    init(nodes: [MariaDBNode], topology: SharedTopology, settings: MariaDBSettings, logger: Logger) {
        self.nodes = nodes
        self.topology = topology
        self.settings = settings
        self.logger = logger
    }

    /// How many automatic promotions this engine carried out (it won the election and promoted).
    var automaticPromotions: Int { autoPromotions.load(ordering: .relaxed) }

    /// One monitoring round: checks the primary (gone or read-only → look for the new one; gone long enough
    /// and automatic promotion on → promote), then the replicas' rotation.
    func round() async {
        if topology.snapshot.hasReplicas {
            let primary = nodes[topology.snapshot.primary]
            let writable = await primary.isWritable() == true
            let downFor = topology.withLock { $0.primaryChecked(writable: writable, at: .now) }
            if !writable, !(await discoverPrimary()), topology.snapshot.shouldAutoPromote(downFor: downFor) {
                await autoPromote()
            }
        }
        await checkReplicas()
    }

    /// Finds the writable server and makes it the primary. Returns true if the primary changed.
    @discardableResult
    func discoverPrimary() async -> Bool {
        guard topology.withLock({ $0.beginDiscovery(at: .now) }) else { return false }
        let writable = await withTaskGroup(of: (Int, Bool?).self) { group in
            for node in nodes {
                group.addTask { (node.index, await node.isWritable()) }
            }
            var writable: [Int] = []
            for await (index, isWritable) in group where isWritable == true { writable.append(index) }
            return writable
        }
        switch topology.withLock({ $0.discovered(writable: writable) }) {
        case .unchanged:
            return false
        case .conflict(let writable):
            logger.critical("more than one writable database server: not choosing; fence the old primary (storefront db fence)",
                            metadata: ["writable": "\(writable.map { nodes[$0].endpoint })"])
            return false
        case .switched(let from, let to):
            primarySwitches.increment()
            logger.notice("database primary switched", metadata: ["from": "\(nodes[from].endpoint)", "to": "\(nodes[to].endpoint)"])
            return true
        }
    }

    /// Automatic promotion with a single elected leader. Every server is looked at: the topology decides
    /// (`promotionDecision`: nothing writable, a replica that lost the primary too, not stopped or lagging,
    /// the most advanced). Only the app server holding the named lock `storefront_promotion` on the chosen
    /// replica promotes, after checking again that no server is writable; the others find the new primary by
    /// discovery.
    func autoPromote() async {
        guard let admin = settings.admin else { return }
        let operations = MariaDBOperations(nodes: nodes.map(\.pool.configuration), adminUser: admin.user, adminPassword: admin.password, logger: logger)
        let statuses = await operations.status()
        let views = statuses.enumerated().map { index, status in
            MariaDBTopology.PromotionView(
                node: index, reachable: status.reachable, writable: status.readOnly == false, replicating: status.replicatingFrom != nil,
                ioRunning: status.ioRunning == true, sqlRunning: status.sqlRunning == true, secondsBehind: status.secondsBehind,
                gtid: status.gtidPosition ?? "")
        }
        let candidateIndex: Int
        switch topology.snapshot.promotionDecision(views) {
        case .refuse(let reason):
            promotionsRefused.increment()
            logger.warning("automatic promotion refused", metadata: ["reason": "\(reason)", "servers": "\(statuses.map(\.description))"])
            return
        case .promote(let index):
            candidateIndex = index
        }
        let candidate = operations.nodes[candidateIndex]
        do {
            // The named lock lives as long as this connection: closing it releases the lock.
            try await MariaDBConnection.withConnection(candidate) { lock in
                let got = try await lock.withSession { s in try s.query("SELECT GET_LOCK('storefront_promotion', 0) AS got").first?.decode("got", as: Int?.self) }
                guard got == 1 else { return }
                let writable = await operations.status().filter { $0.reachable && $0.readOnly == false }
                guard writable.isEmpty else {
                    logger.notice("automatic promotion not needed: a writable server exists", metadata: ["writable": "\(writable.map(\.endpoint))"])
                    return
                }
                logger.warning("primary unreachable from here and from the replica: promoting automatically",
                               metadata: ["candidate": "\(candidate.host):\(candidate.port)", "gtid": "\(views[candidateIndex].gtid)"])
                let promotion = try await operations.promote(candidate)
                autoPromotions.add(1, ordering: .relaxed)
                logger.notice("automatic promotion done", metadata: ["promoted": "\(promotion.promoted)", "gtid": "\(promotion.gtidPosition)"])
            }
            topology.withLock { $0.allowDiscoveryNow() }
            await discoverPrimary()
        } catch {
            logger.error("automatic promotion failed", metadata: ["error": "\(error)"])
        }
    }

    /// Puts replicas in or out of read rotation (`MariaDBTopology.verdict`).
    func checkReplicas() async {
        for index in topology.snapshot.replicas {
            let node = nodes[index]
            let verdict: MariaDBTopology.Rotation
            do {
                verdict = topology.snapshot.verdict(try await node.replicationStatus())
            } catch {
                verdict = .init(inRotation: false, reason: "unreachable: \(error)", lagSeconds: nil)
            }
            if let changed = topology.withLock({ $0.replicaChecked(index, verdict) }) {
                logger.notice(changed.inRotation ? "replica back in read rotation" : "replica out of read rotation",
                              metadata: ["replica": "\(node.endpoint)", "reason": "\(changed.reason)"])
            }
        }
    }
}
