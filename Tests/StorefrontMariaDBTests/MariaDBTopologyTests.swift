import Foundation
@testable import StorefrontMariaDB
import Testing

/// The failover decisions, without servers: `MariaDBTopology` takes observations and answers what to do.
@Suite("MariaDB topology state machine")
struct MariaDBTopologyTests {
    let t0 = ContinuousClock.now

    func topology(nodes: Int = 3, autoPromoteAfter: Duration? = .seconds(3)) -> MariaDBTopology {
        MariaDBTopology(nodeCount: nodes, maxLagSeconds: 5, autoPromoteAfter: autoPromoteAfter)
    }

    @Test func discoverySwitchesOnlyToTheOneWritableNode() {
        var t = topology()
        #expect(t.primary == 0 && t.replicas == [1, 2])
        let r1 = t.beginDiscovery(at: t0)
        #expect(r1)
        let r2 = t.discovered(writable: [0])
        #expect(r2 == .unchanged, "the primary is still the writable one")
        let r3 = t.beginDiscovery(at: t0 + .seconds(2))
        #expect(r3)
        let r4 = t.discovered(writable: [])
        #expect(r4 == .unchanged, "nobody writable: keep the primary, writes answer 503")
        let r5 = t.beginDiscovery(at: t0 + .seconds(4))
        #expect(r5)
        let r6 = t.discovered(writable: [2, 0])
        #expect(r6 == .conflict(writable: [0, 2]), "two writable: never guess")
        #expect(t.primary == 0 && t.generation == 0)
        let r7 = t.beginDiscovery(at: t0 + .seconds(6))
        #expect(r7)
        let r8 = t.discovered(writable: [2])
        #expect(r8 == .switched(from: 0, to: 2))
        #expect(t.primary == 2 && t.generation == 1 && t.replicas == [0, 1])
        // Replicas are not trusted until checked against the new primary.
        #expect(t.replicas.allSatisfy { !t.rotation[$0].inRotation })
        var copy = t
        let r9 = copy.pickReplica()
        #expect(r9 == nil, "reads go to the primary until a replica is checked")
    }

    @Test func oneSearchAtATimeAndAtMostOneASecond() {
        var t = topology()
        let r10 = t.beginDiscovery(at: t0)
        #expect(r10)
        let r11 = t.beginDiscovery(at: t0 + .seconds(5))
        #expect(!r11, "one search at a time")
        _ = t.discovered(writable: [0])
        let r12 = t.beginDiscovery(at: t0 + .milliseconds(500))
        #expect(!r12, "at most one a second")
        let r13 = t.beginDiscovery(at: t0 + .milliseconds(1001))
        #expect(r13)
        _ = t.discovered(writable: [0])
        t.allowDiscoveryNow()
        let r14 = t.beginDiscovery(at: t0 + .milliseconds(1002))
        #expect(r14, "after a promotion the next search runs at once")
    }

    @Test func automaticPromotionAfterTheThresholdOnly() {
        var t = topology()
        let r15 = t.primaryChecked(writable: false, at: t0)
        #expect(r15 == .zero)
        let early = t.primaryChecked(writable: false, at: t0 + .seconds(2))
        #expect(!t.shouldAutoPromote(downFor: early))
        let down = t.primaryChecked(writable: false, at: t0 + .seconds(3))
        #expect(down == .seconds(3) && t.shouldAutoPromote(downFor: down))
        let r16 = t.primaryChecked(writable: true, at: t0 + .seconds(4))
        #expect(r16 == nil, "a primary that answers resets the outage")
        let r17 = t.primaryChecked(writable: false, at: t0 + .seconds(5))
        #expect(r17 == .zero)
        // An outage seen by the request path counts from its first failure.
        var u = topology()
        u.primaryUnreachable(at: t0)
        u.primaryUnreachable(at: t0 + .seconds(1))
        let r18 = u.primaryChecked(writable: false, at: t0 + .seconds(3))
        #expect(r18 == .seconds(3))
        #expect(!topology(autoPromoteAfter: nil).shouldAutoPromote(downFor: .seconds(3600)), "off unless configured")
        #expect(!topology(nodes: 1).shouldAutoPromote(downFor: .seconds(3600)), "no replica to promote")
    }

    func view(_ node: Int, writable: Bool = false, io: Bool = false, sql: Bool = true, behind: Int? = nil, gtid: String = "0-1-100",
              reachable: Bool = true, replicating: Bool = true) -> MariaDBTopology.PromotionView {
        .init(node: node, reachable: reachable, writable: writable, replicating: replicating, ioRunning: io, sqlRunning: sql,
              secondsBehind: behind, gtid: gtid)
    }

    /// Issue 10.2: automatic promotion decides from two vantage points, never makes a second primary, and never
    /// loses what a more advanced replica has. (It used to promote the first configured replica whatever it
    /// saw — even one still connected to a live primary, or the dead former primary after one failover.)
    @Test func promotionNeedsASecondVantagePointAndTheMostAdvancedReplica() {
        var t = topology()
        _ = t.primaryObserved(lossless: true, semiSyncReplicas: 1)
        let primaryDown = view(0, reachable: false, replicating: false)
        #expect(t.promotionDecision([primaryDown, view(1, gtid: "0-1-100"), view(2, gtid: "0-1-120")]) == .promote(2), "the most advanced")
        #expect(t.promotionDecision([primaryDown, view(1, gtid: "0-1-120"), view(2, gtid: "0-1-120")]) == .promote(1), "ties: the lowest index")
        // A partition seen by this app server alone: the replicas still hear the primary.
        guard case .refuse(let why) = t.promotionDecision([primaryDown, view(1, io: true), view(2, io: true)]) else {
            Issue.record("promoted a replica whose primary is alive"); return
        }
        #expect(why.contains("partition"))
        // The primary answers writable to someone: never a second one.
        guard case .refuse = t.promotionDecision([view(0, writable: true, replicating: false), view(1), view(2)]) else {
            Issue.record("promoted while a server is writable"); return
        }
        // Stopped or lagging replicas are not promoted; a good one is.
        #expect(t.promotionDecision([primaryDown, view(1, sql: false, gtid: "0-1-999"), view(2)]) == .promote(2))
        #expect(t.promotionDecision([primaryDown, view(1, behind: 60, gtid: "0-1-999"), view(2)]) == .promote(2))
        guard case .refuse = t.promotionDecision([primaryDown, view(1, sql: false), view(2, behind: 60)]) else {
            Issue.record("promoted a stopped or lagging replica"); return
        }
        // After one failover (primary = 1) the next candidate is another replica, not the dead former primary.
        var after = topology()
        _ = after.beginDiscovery(at: t0)
        _ = after.discovered(writable: [1])
        #expect(after.primary == 1)
        _ = after.primaryObserved(lossless: true, semiSyncReplicas: 1)
        #expect(after.promotionDecision([view(0, gtid: "0-1-150"), view(1, reachable: false, replicating: false), view(2, gtid: "0-1-140")])
            == .promote(0))
        #expect(MariaDBTopology.gtidTotal("0-1-120,1-2-7") == 127 && MariaDBTopology.gtidTotal("") == 0)
    }

    /// Issue 10.2: a primary that acknowledged writes without a replica's acknowledgement (semi-sync off or
    /// with an asynchronous fallback) is never promoted away automatically — the replica may lack those writes.
    @Test func automaticPromotionNeedsAPrimarySeenLossless() {
        var t = topology()
        let views = [view(0, reachable: false, replicating: false), view(1), view(2)]
        guard case .refuse(let never) = t.promotionDecision(views) else { Issue.record("promoted a primary never seen"); return }
        #expect(never.contains("never saw"))
        _ = t.primaryObserved(lossless: false, semiSyncReplicas: 0)
        guard case .refuse(let lossy) = t.promotionDecision(views) else { Issue.record("promoted away from an asynchronous primary"); return }
        #expect(lossy.contains("semi-sync"))
        _ = t.primaryObserved(lossless: true, semiSyncReplicas: 1)
        #expect(t.promotionDecision(views) == .promote(1))
        // A lossless primary with no replica connected blocks every commit: writes are refused, and
        // accepted again when a replica connects.
        #expect(t.primaryObserved(lossless: true, semiSyncReplicas: 0) == true)
        #expect(t.primaryBlocked)
        #expect(t.primaryObserved(lossless: true, semiSyncReplicas: 0) == nil, "reported once")
        #expect(t.primaryObserved(lossless: true, semiSyncReplicas: 1) == false)
        #expect(!t.primaryBlocked)
        #expect(t.primaryObserved(lossless: false, semiSyncReplicas: 0) == nil, "an asynchronous primary blocks nothing")
        _ = t.primaryObserved(lossless: true, semiSyncReplicas: 1)
        // A new primary is not trusted until seen.
        _ = t.beginDiscovery(at: t0)
        _ = t.discovered(writable: [1])
        #expect(t.primaryLossless == nil)
    }

    /// Issue 10.2: every round looks at every server; more than one writable refuses writes everywhere, and
    /// only a former primary of this server next to the primary is fenced (anything else is an operator's call).
    /// Issue 10.2: every round looks at every server; more than one that can acknowledge writes refuses writes
    /// everywhere, and only a writable server that cannot acknowledge anything next to exactly one that can is
    /// fenced. Judged from the servers, not from this app server's history: a 30-min nemesis caught an app
    /// server still pointing at a woken old primary fencing the newly promoted one as "its former primary".
    @Test func twoWritableServersRefuseWritesAndOnlyAStaleOneIsFenced() {
        var t = topology()
        #expect(t.writableChecked([0]) == .single(resolved: false))
        #expect(t.writableChecked([0, 2]) == .conflict(writable: [0, 2], started: true))
        #expect(t.writableConflict == [0, 2])
        #expect(t.staleServers(readWrite: [0, 2], acknowledging: [0, 2]) == [], "two that acknowledge: no guess")
        #expect(t.writableChecked([2, 0]) == .conflict(writable: [0, 2], started: false))
        #expect(t.writableChecked([0]) == .single(resolved: true))
        #expect(t.writableConflict == nil)
        // 0 froze, 1 was promoted; 0 wakes up writable, lossless, with no replica: it is stale, whichever
        // server this app thinks is the primary.
        #expect(t.primary == 0)
        #expect(t.staleServers(readWrite: [0, 1], acknowledging: [1]) == [0])
        _ = t.beginDiscovery(at: t0)
        _ = t.discovered(writable: [1])
        #expect(t.staleServers(readWrite: [0, 1], acknowledging: [1]) == [0])
        #expect(t.staleServers(readWrite: [0], acknowledging: []) == [], "a primary blocked with no replica is nobody's stale copy")
    }

    @Test func replicaRotationFollowsReplicationAndLag() {
        let t = topology()
        func status(_ io: String = "Yes", _ sql: String = "Yes", lag: Int?) -> MariaDBTopology.ReplicationStatus {
            .init(ioRunning: io == "Yes", sqlRunning: sql == "Yes", io: io, sql: sql, secondsBehind: lag)
        }
        #expect(t.verdict(status(lag: 0)) == .init(inRotation: true, reason: "replicating, 0 s behind", lagSeconds: 0))
        #expect(t.verdict(status(lag: 5)).inRotation)
        #expect(t.verdict(status(lag: 6)) == .init(inRotation: false, reason: "lagging 6 s behind", lagSeconds: 6))
        #expect(t.verdict(status(lag: nil)).reason == "lagging an unknown time behind")
        #expect(t.verdict(status("No", "Yes", lag: 0)).reason == "replication stopped (io No, sql Yes)")
        #expect(!t.verdict(status("Yes", "No", lag: 0)).inRotation)
        #expect(t.verdict(nil).reason == "not a replica (no slave status)")
    }

    @Test func readsRotateOverHealthyReplicasOnly() {
        var t = topology()
        let picks = (0..<4).map { _ in t.pickReplica() }
        #expect(picks == [1, 2, 1, 2])
        let r19 = t.readFailed(on: 1, reason: "connection lost")
        #expect(r19)
        let r20 = t.readFailed(on: 1, reason: "again")
        #expect(!r20, "reported once")
        let after = (0..<2).map { _ in t.pickReplica() }
        #expect(after == [2, 2])
        let r21 = t.replicaChecked(2, .init(inRotation: false, reason: "lagging 9 s behind", lagSeconds: 9))
        #expect(r21 != nil)
        let r22 = t.pickReplica()
        #expect(r22 == nil, "no replica in rotation: reads use the primary")
        let r23 = t.replicaChecked(1, .init(inRotation: true, reason: "replicating, 0 s behind", lagSeconds: 0))
        #expect(r23?.inRotation == true)
        let r24 = t.replicaChecked(1, .init(inRotation: true, reason: "replicating, 1 s behind", lagSeconds: 1))
        #expect(r24 == nil, "no change, no news")
        let r25 = t.pickReplica()
        #expect(r25 == 1)
    }
}
