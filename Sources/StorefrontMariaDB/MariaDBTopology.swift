import Foundation

/// What the engine believes about its servers, and every decision it takes from what it observes — a pure
/// state machine (no I/O, no clock of its own), so failover decisions are unit-tested without servers.
/// `MariaDBMonitor` feeds it observations (probes, replication status) and carries out what it answers;
/// `MariaDBDatabase` asks it where to send a statement.
///
/// Nodes are the configured servers by index; index 0 is the configured primary. The primary is the one
/// writable node (`@@read_only = 0`); every other node is a replica, in read rotation or not.
struct MariaDBTopology: Sendable {
    /// Whether a replica serves reads, and why.
    struct Rotation: Sendable, Equatable {
        var inRotation: Bool
        var reason: String
        var lagSeconds: Int?

        static let unchecked = Rotation(inRotation: true, reason: "not checked yet", lagSeconds: nil)
    }

    /// A replica's `SHOW SLAVE STATUS`, reduced to what rotation depends on.
    struct ReplicationStatus: Sendable, Equatable {
        var ioRunning: Bool
        var sqlRunning: Bool
        var io: String
        var sql: String
        var secondsBehind: Int?
    }

    /// What a search for the writable server found.
    enum Discovery: Sendable, Equatable {
        /// The primary is still the one writable node (or no node answered writable).
        case unchanged
        /// Another node is the one writable node: it is the primary now.
        case switched(from: Int, to: Int)
        /// More than one node is writable: nothing is chosen (an operator must fence one).
        case conflict(writable: [Int])
    }

    let nodeCount: Int
    let maxLagSeconds: Int
    let autoPromoteAfter: Duration?
    private(set) var primary = 0
    /// How many times the primary changed.
    private(set) var generation = 0
    private(set) var rotation: [Rotation]
    private var primaryDownSince: ContinuousClock.Instant?
    private var discovering = false
    private var lastDiscovery: ContinuousClock.Instant?
    private var nextReplica = 0
    /// The servers found writable together, while more than one is: every write is refused until one remains.
    private(set) var writableConflict: [Int]?
    /// The last time the primary answered, its commits waited for a replica with no asynchronous fallback
    /// (nil: not seen since it became the primary). Automatic promotion needs it: else it could lose writes.
    private(set) var primaryLossless: Bool?
    /// The primary is writable and lossless with no semi-sync replica connected: every commit blocks until one
    /// connects. Writes are refused (fast 503) meanwhile.
    private(set) var primaryBlocked = false

    init(nodeCount: Int, maxLagSeconds: Int, autoPromoteAfter: Duration?) {
        self.nodeCount = nodeCount
        self.maxLagSeconds = maxLagSeconds
        self.autoPromoteAfter = autoPromoteAfter
        rotation = Array(repeating: .unchecked, count: nodeCount)
    }

    var hasReplicas: Bool { nodeCount > 1 }
    var replicas: [Int] { (0..<nodeCount).filter { $0 != primary } }

    /// Automatic promotion is possible at all (a replica is configured).
    var canPromote: Bool { nodeCount > 1 }

    /// One server as automatic promotion sees it (`SHOW SLAVE STATUS`, `@@read_only`, `@@gtid_current_pos`).
    struct PromotionView: Sendable, Equatable {
        var node: Int
        var reachable: Bool
        var writable: Bool
        var replicating: Bool
        var ioRunning: Bool
        var sqlRunning: Bool
        var secondsBehind: Int?
        var gtid: String
    }

    enum PromotionDecision: Sendable, Equatable {
        case promote(Int)
        case refuse(String)
    }

    /// Whether, and which replica, to promote after this server lost the primary for the threshold. Lossless
    /// and from two vantage points: never while a server is writable; only a replica whose own replication
    /// lost the primary too (else it is this app server that is cut off — a partition — and promoting would
    /// make two primaries); never a stopped or lagging one; the most advanced by GTID (ties: the lowest index,
    /// so every app server picks the same one).
    func promotionDecision(_ views: [PromotionView]) -> PromotionDecision {
        let writable = views.filter { $0.reachable && $0.writable }
        if !writable.isEmpty { return .refuse("a server is writable (node \(writable.map(\.node)))") }
        guard primaryLossless == true else {
            return .refuse(primaryLossless == nil
                ? "this server never saw the primary answer, so it cannot know it acknowledged writes only once a replica had them"
                : "the primary acknowledged writes without waiting for a replica (semi-sync off, or with an asynchronous fallback): promoting could lose them; promote by hand if that is acceptable")
        }
        let replicas = views.filter { $0.node != primary && $0.reachable && $0.replicating }
        let applying = replicas.filter(\.sqlRunning)
        guard !applying.isEmpty else {
            return .refuse(replicas.isEmpty ? "no reachable replica" : "every reachable replica has its replication stopped (SQL thread)")
        }
        let lostToo = applying.filter { !$0.ioRunning }
        guard !lostToo.isEmpty else {
            return .refuse("every replica still hears from the primary: this server alone lost it (a partition?)")
        }
        let fresh = lostToo.filter { ($0.secondsBehind ?? 0) <= maxLagSeconds }
        guard !fresh.isEmpty else { return .refuse("every candidate lags more than \(maxLagSeconds) s") }
        let best = fresh.max { a, b in
            let (ga, gb) = (Self.gtidTotal(a.gtid), Self.gtidTotal(b.gtid))
            return ga != gb ? ga < gb : a.node > b.node
        }!
        return .promote(best.node)
    }

    /// The sum of a GTID position's sequence numbers over its domains (`0-1-120,1-2-7` → 127): how far a
    /// server got (positions of one replication stream compare per domain; the sum orders them).
    static func gtidTotal(_ position: String) -> Int64 {
        position.split(separator: ",").reduce(0) { total, gtid in
            total + (gtid.split(separator: "-").last.flatMap { Int64($0.trimmingCharacters(in: .whitespaces)) } ?? 0)
        }
    }

    // MARK: routing

    /// The replica the next `.replica` read goes to (round robin over those in rotation), nil = the primary.
    mutating func pickReplica() -> Int? {
        let healthy = replicas.filter { rotation[$0].inRotation }
        guard !healthy.isEmpty else { return nil }
        defer { nextReplica &+= 1 }
        return healthy[Int(UInt(bitPattern: nextReplica) % UInt(healthy.count))]
    }

    /// A read on `node` broke its connection: it leaves rotation until the next check. True if it was in.
    mutating func readFailed(on node: Int, reason: String) -> Bool {
        let was = rotation[node].inRotation
        rotation[node] = Rotation(inRotation: false, reason: reason, lagSeconds: rotation[node].lagSeconds)
        return was
    }

    /// The primary could not be reached (connect failed or connection lost): the outage clock starts.
    mutating func primaryUnreachable(at now: ContinuousClock.Instant) {
        if primaryDownSince == nil { primaryDownSince = now }
    }

    // MARK: discovery

    /// Whether a search for the writable server may start now: one at a time, at most one a second.
    /// Every `true` must be followed by `discovered(…)` or `discoveryAbandoned()`.
    mutating func beginDiscovery(at now: ContinuousClock.Instant) -> Bool {
        guard !discovering else { return false }
        if let last = lastDiscovery, now - last < .seconds(1) { return false }
        discovering = true
        lastDiscovery = now
        return true
    }

    /// Forgets the rate limit, so the next search may run at once (after a promotion).
    mutating func allowDiscoveryNow() { lastDiscovery = nil }

    /// The search found these nodes writable.
    mutating func discovered(writable: [Int]) -> Discovery {
        discovering = false
        let writable = writable.sorted()
        if writable.count > 1 { return .conflict(writable: writable) }
        guard let next = writable.first, next != primary else { return .unchanged }
        let from = primary
        primary = next
        generation += 1
        primaryDownSince = nil
        primaryLossless = nil
        primaryBlocked = false
        for node in replicas { rotation[node] = Rotation(inRotation: false, reason: "not checked since the primary changed", lagSeconds: nil) }
        return .switched(from: from, to: next)
    }

    // MARK: monitoring

    /// What to do about the servers found writable in one round.
    enum WritableVerdict: Sendable, Equatable {
        /// At most one: writes are accepted (`resolved`: they were refused until now).
        case single(resolved: Bool)
        /// More than one: writes are refused everywhere (`started`: from now).
        case conflict(writable: [Int], started: Bool)
    }

    /// Records which servers can acknowledge writes (every server is asked every round).
    mutating func writableChecked(_ writable: [Int]) -> WritableVerdict {
        let writable = writable.sorted()
        guard writable.count > 1 else {
            defer { writableConflict = nil }
            return .single(resolved: writableConflict != nil)
        }
        let started = writableConflict == nil
        writableConflict = writable
        return .conflict(writable: writable, started: started)
    }

    /// Servers with `read_only` off that cannot acknowledge a write (lossless, no replica: an old primary that
    /// froze or was cut off while its replica was promoted) next to exactly one server that can: stale, to be
    /// fenced. Decided from what the servers say, never from this app server's history — an app server whose
    /// own view is stale (it still points at the old primary) must not fence the new one. Two servers that can
    /// both acknowledge writes are not guessed between.
    func staleServers(readWrite: [Int], acknowledging: [Int]) -> [Int] {
        guard acknowledging.count == 1 else { return [] }
        return readWrite.filter { !acknowledging.contains($0) }.sorted()
    }

    /// The primary answered writable: whether its commits wait for a replica with no asynchronous fallback,
    /// and whether one is connected to acknowledge them. Returns the new blocked state when it changed.
    mutating func primaryObserved(lossless: Bool, semiSyncReplicas: Int) -> Bool? {
        primaryLossless = lossless
        let blocked = lossless && semiSyncReplicas == 0
        defer { primaryBlocked = blocked }
        return blocked != primaryBlocked ? blocked : nil
    }

    /// The primary answered read-only: it blocks nothing (writes fail on `read_only` and discovery runs).
    mutating func primaryReadOnly() { primaryBlocked = false }

    /// The monitor probed the primary. Returns how long it has been unreachable (nil when it answered
    /// writable).
    mutating func primaryChecked(writable: Bool, at now: ContinuousClock.Instant) -> Duration? {
        if writable {
            primaryDownSince = nil
            return nil
        }
        if primaryDownSince == nil { primaryDownSince = now }
        return now - primaryDownSince!
    }

    /// Whether an unreachable primary, gone this long and not replaced by discovery, is to be promoted away.
    func shouldAutoPromote(downFor: Duration?) -> Bool {
        guard let after = autoPromoteAfter, let downFor, canPromote else { return false }
        return downFor >= after
    }

    /// The rotation a replica deserves: replication threads running and at most `maxLagSeconds` behind.
    func verdict(_ status: ReplicationStatus?) -> Rotation {
        guard let status else { return Rotation(inRotation: false, reason: "not a replica (no slave status)", lagSeconds: nil) }
        let lag = status.secondsBehind
        if !status.ioRunning || !status.sqlRunning {
            return Rotation(inRotation: false, reason: "replication stopped (io \(status.io), sql \(status.sql))", lagSeconds: lag)
        }
        if let lag, lag <= maxLagSeconds { return Rotation(inRotation: true, reason: "replicating, \(lag) s behind", lagSeconds: lag) }
        return Rotation(inRotation: false, reason: "lagging \(lag.map { "\($0) s" } ?? "an unknown time") behind", lagSeconds: lag)
    }

    /// Records a replica check. Returns the new rotation when it went in or out of rotation.
    mutating func replicaChecked(_ node: Int, _ new: Rotation) -> Rotation? {
        let changed = rotation[node].inRotation != new.inRotation
        rotation[node] = new
        return changed ? new : nil
    }
}
