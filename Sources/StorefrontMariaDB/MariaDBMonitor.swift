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
    private let writableServers = Gauge(label: "storefront_db_writable_servers")
    private let splitBrains = Counter(label: "storefront_db_split_brain_total")
    private let primaryWaiting = Gauge(label: "storefront_db_primary_waiting_for_replica")
    /// How long a probe waits for a server (a frozen one accepts connections and never answers).
    static let probeTimeout: Duration = .seconds(2)

    init(nodes: [MariaDBNode], topology: SharedTopology, settings: MariaDBSettings, logger: Logger) {
        self.nodes = nodes
        self.topology = topology
        self.settings = settings
        self.logger = logger
    }

    /// How many automatic promotions this engine carried out (it won the election and promoted).
    var automaticPromotions: Int { autoPromotions.load(ordering: .relaxed) }

    /// One monitoring round: asks every server whether it can acknowledge writes (more than one → writes
    /// refused everywhere) and fences a stale former primary; the primary gone, read-only or unable to
    /// acknowledge → look for the new one; gone long enough and automatic promotion on → promote; then the
    /// replicas' rotation.
    func round() async {
        if topology.snapshot.hasReplicas {
            let probes = await probeAll()
            let writable = await observed(probes)
            let (downFor, blockedChanged, primary) = topology.withLock { t in
                var changed: Bool?
                if let probe = probes[t.primary] {
                    if probe.writable { changed = t.primaryObserved(lossless: probe.lossless, semiSyncReplicas: probe.semiSyncReplicas) } else { t.primaryReadOnly() }
                }
                return (t.primaryChecked(writable: writable.contains(t.primary), at: .now), changed, t.primary)
            }
            primaryWaiting.record(topology.withLock { $0.primaryBlocked } ? 1 : 0)
            if let blocked = blockedChanged {
                if blocked {
                    logger.error("""
                        the primary waits for a replica to acknowledge every commit and none is connected: writes are refused \
                        until one is (lossless semi-sync; see docs/operations.md "Lossless failover, and the trade it makes")
                        """, metadata: ["primary": "\(nodes[primary].endpoint)"])
                } else {
                    logger.notice("a replica acknowledges the primary's commits again: writes accepted", metadata: ["primary": "\(nodes[primary].endpoint)"])
                }
            }
            if downFor != nil {
                let switched = topology.withLock({ $0.beginDiscovery(at: .now) }) ? discovered(writable) : false
                if !switched, topology.snapshot.shouldAutoPromote(downFor: downFor) { await autoPromote() }
            }
        }
        await checkReplicas()
    }

    /// Every server probed at once (`MariaDBNode.probe`); nil where one did not answer.
    func probeAll() async -> [MariaDBNode.Probe?] {
        await withTaskGroup(of: (Int, MariaDBNode.Probe?).self) { group in
            for node in nodes { group.addTask { (node.index, await node.probe(timeout: Self.probeTimeout)) } }
            var probes = [MariaDBNode.Probe?](repeating: nil, count: nodes.count)
            for await (index, probe) in group { probes[index] = probe }
            return probes
        }
    }

    /// Acts on one look at every server; returns those that can acknowledge writes.
    ///
    /// More than one: writes are refused everywhere (503 + Retry-After) rather than sent to a guess, with an
    /// error log and `storefront_db_split_brain_total`. A server with `read_only` off that cannot acknowledge
    /// writes (lossless, no replica) next to exactly one that can is stale (it froze or was cut off while its
    /// replica was promoted): fenced, with the operations account. One whose commits wait for a replica it no
    /// longer has cannot be fenced (`read_only` waits for those commits) — nor can it acknowledge anything:
    /// logged once, with what to do.
    func observed(_ probes: [MariaDBNode.Probe?]) async -> [Int] {
        let acknowledging = probes.indices.filter { probes[$0]?.acknowledgesWrites == true }
        let readWrite = probes.indices.filter { probes[$0]?.writable == true }
        writableServers.record(acknowledging.count)
        switch topology.withLock({ $0.writableChecked(acknowledging) }) {
        case .single(let resolved):
            if resolved { logger.notice("one writable database server again: writes accepted", metadata: ["writable": "\(acknowledging.map { nodes[$0].endpoint })"]) }
        case .conflict(let all, let started):
            if started {
                splitBrains.increment()
                logger.error("more than one writable database server can acknowledge writes: refusing every write until one remains (fence the stale one: storefront db fence host:port)",
                             metadata: ["writable": "\(all.map { nodes[$0].endpoint })", "primary": "\(nodes[topology.snapshot.primary].endpoint)"])
            }
        }
        let stale = topology.snapshot.staleServers(readWrite: readWrite, acknowledging: acknowledging)
        if !stale.isEmpty, let current = acknowledging.first { await fence(stale, keeping: current) }
        return acknowledging
    }

    private let unfenceable = Mutex<Set<Int>>([])

    private func fence(_ stale: [Int], keeping current: Int) async {
        guard let admin = settings.admin else {
            if unfenceable.withLock({ $0.insert(-1).inserted }) {
                logger.error("a former primary is writable again; fence it (storefront db fence host:port), or set STOREFRONT_DATABASE_ADMIN_USER so that app servers fence it",
                             metadata: ["nodes": "\(stale.map { nodes[$0].endpoint })"])
            }
            return
        }
        let operations = MariaDBOperations(nodes: nodes.map(\.pool.configuration), adminUser: admin.user, adminPassword: admin.password, logger: logger)
        for index in stale {
            // Looked at again, one after the other: the stale server writable, *then* the primary still
            // writable. A planned switchover fences the old primary before it makes the new one writable, so
            // two probes taken in parallel across it could make the new primary look stale — fencing it would
            // leave no writable server.
            guard let again = await nodes[index].probe(timeout: Self.probeTimeout), again.writable, !again.acknowledgesWrites,
                  await nodes[current].probe(timeout: Self.probeTimeout)?.acknowledgesWrites == true else { continue }
            do {
                try await operations.fence(operations.nodes[index], lockWait: Self.probeTimeout)
                unfenceable.withLock { _ = $0.remove(index) }
                logger.warning("fenced a former primary that was writable again", metadata: ["node": "\(nodes[index].endpoint)"])
            } catch {
                if unfenceable.withLock({ $0.insert(index).inserted }) {
                    logger.error("""
                        a former primary is writable again and cannot be fenced: its commits wait for a replica it no longer has \
                        (none of them was acknowledged, and it acknowledges nothing now). Stop it (kill -9) and start it again: \
                        recovery drops what no replica acknowledged and it starts read-only; then storefront db attach it
                        """, metadata: ["node": "\(nodes[index].endpoint)", "error": "\(error)"])
                }
            }
        }
    }

    /// Finds the writable server and makes it the primary. Returns true if the primary changed.
    @discardableResult
    func discoverPrimary() async -> Bool {
        guard topology.withLock({ $0.beginDiscovery(at: .now) }) else { return false }
        return discovered(await observed(await probeAll()))
    }

    /// Ends a search that found `writable`. Returns true if the primary changed.
    private func discovered(_ writable: [Int]) -> Bool {
        switch topology.withLock({ $0.discovered(writable: writable) }) {
        case .unchanged, .conflict:
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
