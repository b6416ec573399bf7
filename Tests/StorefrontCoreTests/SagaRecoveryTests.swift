import Foundation
import StorefrontContracts
import StorefrontCore
import Testing

@Suite("Saga recovery")
struct SagaRecoveryTests {
    /// An instance "dies" at `point`; after its lease expires, another instance finishes or compensates.
    @Test(arguments: [
        (SagaFaultPoint.after(.reserveInventory), SagaState.compensated),
        (.after(.createOrder), .compensated),
        (.before(.processPayment), .compensated),
        // charged, not yet recorded: still before the pivot, so the survivor refunds the key
        (.before(.confirmOrder), .compensated),
        (.after(.startCompensation), .compensated),
        // refunded, not yet recorded
        (.before(.cancelOrder), .compensated),
    ])
    func survivorFinishesSagasOfADeadInstance(point: SagaFaultPoint, expected: SagaState) async throws {
        let h = SagaHarness(point == .after(.startCompensation) || point == .before(.cancelOrder) ? .init(declineRate: 1) : .reliable)
        let p = try await h.product()
        let saga = try await h.begin(p)
        let dying = FaultScript([point: .crash])
        await #expect(throws: SimulatedCrash.self) { try await h.orchestrator("app-1", faults: dying).drive(saga) }
        let stuck = try #require(try await h.store.saga(id: saga.id))
        #expect(!stuck.state.isTerminal)

        h.gateway.setBehavior(.reliable)
        let survivor = h.orchestrator("app-2", faults: FaultScript())
        let recovery = SagaRecovery(store: h.store, orchestrator: survivor, clock: h.clock.wall)
        // Lease still valid: nothing is taken from a live owner.
        #expect(try await recovery.recoverOnce().claimed == 0)
        h.clock.advance(by: 31)
        let report = try await recovery.recoverOnce()
        #expect(report.claimed == 1 && report.finished == 1)
        let done = try #require(try await h.store.saga(id: saga.id))
        #expect(done.state == expected)
        #expect(done.owner == "app-2")
        let stock = try await h.stock(p)
        #expect(stock.reserved == 0)
        #expect(stock.stock == (expected == .confirmed ? 8 : 10))
        #expect(try await h.store.chargedTotals().count == (expected == .confirmed ? 1 : 0))
        #expect(try await h.store.countUnfinished() == 0)
    }

    /// The payment is recorded in the confirmation's transaction: when that keeps failing, the saga is still
    /// before the pivot and unwinds — the charge is refunded, never kept without an order.
    @Test func paymentThatCannotBeRecordedIsRefunded() async throws {
        let h = SagaHarness()
        let p = try await h.product()
        h.faults.set(.before(.confirmOrder), .fail(times: 100))
        let done = try await h.orchestrator().drive(try await h.begin(p))
        #expect(done.state == .compensated && done.failureCode == "step_failed")
        #expect(h.faults.count(.before(.confirmOrder)) == 5, "retried like every step that follows a charge")
        #expect(try await h.store.chargedTotals().count == 0, "refunded")
        #expect(try await h.stock(p) == (10, 0))
    }

    /// A saga left in `PAID` (written by a version that recorded the payment on its own) is confirmed by recovery.
    @Test func paidSagaIsConfirmedByRecovery() async throws {
        let h = SagaHarness()
        let p = try await h.product()
        let saga = try await h.begin(p)
        for t in SagaPlan.chain(from: .started, .forward) + [SagaPlan.paymentSucceeded(reference: "legacy")] {
            guard case .applied = try await h.store.apply(t, sagaId: saga.id, fence: saga.fence, lease: .seconds(30), now: Date()) else {
                Issue.record("\(t.step)"); return
            }
        }
        h.clock.advance(by: 31)
        let report = try await SagaRecovery(store: h.store, orchestrator: h.orchestrator("app-2"), clock: h.clock.wall).recoverOnce()
        #expect(report.finished == 1)
        #expect(try await h.store.saga(id: saga.id)?.state == .confirmed)
        #expect(try await h.stock(p) == (8, 0))
    }

    @Test func ownerRenewsLeasesOfSagasInFlight() async throws {
        let h = SagaHarness(.init(latency: .milliseconds(300)))
        let p = try await h.product()
        let saga = try await h.begin(p)
        let owner = h.orchestrator("app-1")
        let running = Task { try await owner.drive(saga) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(owner.activeSagas == [saga.id])
        h.clock.advance(by: 25)
        try await owner.renewLeases()
        h.clock.advance(by: 25)  // 50 s after start, but renewed at 25 s
        let report = try await SagaRecovery(store: h.store, orchestrator: h.orchestrator("app-2"), clock: h.clock.wall).recoverOnce()
        #expect(report.claimed == 0)
        #expect(try await running.value.state == .confirmed)
    }
}
