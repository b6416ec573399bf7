import Foundation
import StorefrontContracts
import StorefrontCore
import Testing

@Suite("Saga fencing")
struct SagaFencingTests {
    /// Issue 10.1: A charges, then stalls past its lease; B takes the saga over and refunds; A resumes and
    /// tries to record the payment and confirm. Only one of them may drive the saga: the order must never be
    /// CONFIRMED while its money is refunded.
    @Test func stalledOwnerCannotConfirmWhatTheNewOwnerRefunded() async throws {
        let h = SagaHarness()
        let p = try await h.product()
        let saga = try await h.begin(p)
        let stalledA = FaultGate()
        let a = SagaOrchestrator(store: h.store, gateway: StallingPaymentGateway(h.gateway, afterCharge: stalledA), owner: "app-1",
                                 settings: SagaSettings(leaseDuration: .seconds(30), retryBackoff: .milliseconds(1)), clock: h.clock.wall)
        let runA = Task { try await a.drive(saga) }
        await stalledA.reached()  // A charged; the provider's answer is not recorded yet
        #expect(try await h.gateway.status(idempotencyKey: saga.id.uuidString) != .unknown)

        h.clock.advance(by: 31)
        let stalledB = FaultGate()
        let b = SagaOrchestrator(store: h.store, gateway: StallingPaymentGateway(h.gateway, afterRefund: stalledB), owner: "app-2",
                                 settings: SagaSettings(leaseDuration: .seconds(30), retryBackoff: .milliseconds(1)), clock: h.clock.wall)
        let runB = Task { try await SagaRecovery(store: h.store, orchestrator: b, clock: h.clock.wall).recoverOnce() }
        await stalledB.reached()  // B refunded; not recorded yet

        stalledA.open()
        let resultA = await runA.result
        stalledB.open()
        let report = try await runB.value

        let final = try #require(try await h.store.saga(id: saga.id))
        let payment = try #require(try await h.store.payment(idempotencyKey: saga.id.uuidString))
        #expect(final.state == .compensated, "the new owner's compensation wins")
        #expect(payment.status == .refunded)
        #expect(try await h.store.order(id: try #require(final.orderId))?.status == .cancelled)
        #expect(try await h.stock(p) == (10, 0))
        #expect(try await h.eventTypes(final).contains(.paymentRefunded))
        #expect(report.finished == 1)
        #expect(throws: SagaOwnershipLost.self) { try resultA.get() }
    }

    /// Lease renewal finds the saga taken over: the former owner stops before its next step, without calling
    /// the payment provider.
    @Test func ownerThatLostItsLeaseStopsBeforeTheNextStep() async throws {
        let h = SagaHarness()
        let p = try await h.product()
        let saga = try await h.begin(p)
        let stalled = FaultGate()
        let scriptA = FaultScript([.after(.createOrder): .pause(stalled)])
        let a = h.orchestrator("app-1", faults: scriptA)
        let runA = Task { try await a.drive(saga) }
        await stalled.reached()
        #expect(a.activeSagas == [saga.id])

        h.clock.advance(by: 31)
        let report = try await SagaRecovery(store: h.store, orchestrator: h.orchestrator("app-2", faults: FaultScript()), clock: h.clock.wall)
            .recoverOnce()
        #expect(report.finished == 1)
        #expect(try await a.renewLeases() == 1, "renewal reports the lease lost")
        stalled.open()
        await #expect(throws: SagaOwnershipLost.self) { try await runA.value }
        #expect(scriptA.count(.before(.processPayment)) == 0, "the former owner never called the provider")
        #expect(try await h.store.saga(id: saga.id)?.state == .compensated)
        #expect(try await h.gateway.status(idempotencyKey: saga.id.uuidString) == .voided)
        #expect(try await h.stock(p) == (10, 0))
    }

    /// The compensation-started record is durable before the refund: a recovering instance that finds a saga at
    /// REFUNDING refunds again (idempotently) and never moves it forward, even if the charge went through.
    @Test func refundingIsResumedNeverReversed() async throws {
        let h = SagaHarness()
        let p = try await h.product()
        let saga = try await h.begin(p)
        let dying = FaultScript([.before(.refundPayment): .crash])
        let a = h.orchestrator("app-1", faults: dying)
        // A charged (the provider has the money), then decided to compensate and died before refunding.
        _ = try await h.gateway.charge(idempotencyKey: saga.id.uuidString, amountMinor: saga.amountMinor, currency: "USD")
        h.faults.set(.before(.processPayment), nil)
        await #expect(throws: SimulatedCrash.self) {
            var s = saga
            for state in [SagaState.started, .reserved] {
                guard case .apply(let t) = SagaPlan.next(state, .forward), case .applied(let next) = try await h.store.apply(
                    t, sagaId: s.id, fence: s.fence, lease: .seconds(30), now: h.clock.now) else { return }
                s = next
            }
            try await a.drive(s, direction: .compensate(code: "cancelled", reason: "test"))
        }
        #expect(try await h.store.saga(id: saga.id)?.state == .refunding)
        // A late forward step (the charge's answer recorded) is refused.
        let late = try await h.store.apply(SagaPlan.paymentSucceeded(reference: "late"), sagaId: saga.id, fence: saga.fence,
                                           lease: .seconds(30), now: h.clock.now)
        guard case .stale(let seen) = late else { Issue.record("late payment recorded: \(late)"); return }
        #expect(seen.state == .refunding)

        h.clock.advance(by: 31)
        let report = try await SagaRecovery(store: h.store, orchestrator: h.orchestrator("app-2", faults: FaultScript()), clock: h.clock.wall)
            .recoverOnce()
        #expect(report.finished == 1)
        let done = try #require(try await h.store.saga(id: saga.id))
        #expect(done.state == .compensated && done.failureCode == "cancelled", "the reason recorded at REFUNDING survives the takeover")
        #expect(try await h.store.payment(idempotencyKey: saga.id.uuidString)?.status == .refunded)
        #expect(try await h.eventTypes(done).contains(.paymentRefunded))
        #expect(try await h.stock(p) == (10, 0))
    }
}
