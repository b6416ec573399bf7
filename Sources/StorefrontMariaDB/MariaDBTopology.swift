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

    init(nodeCount: Int, maxLagSeconds: Int, autoPromoteAfter: Duration?) {
        self.nodeCount = nodeCount
        self.maxLagSeconds = maxLagSeconds
        self.autoPromoteAfter = autoPromoteAfter
        rotation = Array(repeating: .unchecked, count: nodeCount)
    }

    var hasReplicas: Bool { nodeCount > 1 }
    var replicas: [Int] { (0..<nodeCount).filter { $0 != primary } }

    /// The candidate of automatic promotion: always the first configured replica, so two app servers can
    /// never pick two different ones.
    var promotionCandidate: Int? { nodeCount > 1 ? 1 : nil }

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
        for node in replicas { rotation[node] = Rotation(inRotation: false, reason: "not checked since the primary changed", lagSeconds: nil) }
        return .switched(from: from, to: next)
    }

    // MARK: monitoring

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
        guard let after = autoPromoteAfter, let downFor, promotionCandidate != nil else { return false }
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
