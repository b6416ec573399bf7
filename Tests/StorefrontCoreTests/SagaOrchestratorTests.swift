import Foundation
import StorefrontContracts
import StorefrontCore
import Testing

/// Everything a saga needs, in memory.
struct SagaHarness {
    let clock = TestClock()
    let store: InMemoryStore
    let faults = FaultScript()
    let gateway: SimulatedPaymentGateway

    init(_ behavior: SimulatedPaymentGateway.Behavior = .reliable) {
        store = InMemoryStore(clock: clock.wall)
        gateway = SimulatedPaymentGateway(ledger: store, behavior: behavior)
    }

    /// An orchestrator of a new "process" whose store and gateway run `faults` (the harness's own by default).
    func orchestrator(_ owner: String = "app-1", faults: (any SagaFaultInjector)? = nil) -> SagaOrchestrator {
        let faults = faults ?? self.faults
        let crashed = CrashedSagas()
        return SagaOrchestrator(store: FaultInjectingSagaStore(store, faults: faults, crashed: crashed),
                                gateway: FaultInjectingPaymentGateway(gateway, faults: faults, crashed: crashed), owner: owner,
                                settings: SagaSettings(leaseDuration: .seconds(30), retryBackoff: .milliseconds(1)), clock: clock.wall)
    }

    func product(stock: Int64 = 10) async throws -> Product {
        try await store.create(NewProduct(sku: "p-\(UUID().uuidString.prefix(8))", name: "P", description: "", priceMinor: 1999,
                                          currency: "USD", stock: stock), now: clock.now)
    }

    func begin(_ product: Product, qty: Int64 = 2, owner: String = "app-1") async throws -> Saga {
        let new = NewSaga(idempotencyKey: nil, productId: product.id, qty: qty, amountMinor: product.priceMinor * qty,
                          currency: "USD", mode: .lock, owner: owner, lease: .seconds(30))
        guard case .created(let saga) = try await store.begin(new, now: clock.now) else { throw StorefrontError.validation("exists") }
        return saga
    }

    func stock(_ product: Product) async throws -> (stock: Int64, reserved: Int64) {
        let p = try #require(try await store.product(id: product.id, consistency: .primary))
        return (p.stock, try await store.unitsHeld(productId: product.id))
    }

    func eventTypes(_ saga: Saga) async throws -> [SagaEventType] {
        let events = try await store.records(after: 0, limit: 1000, sagaId: saga.id).map { try SagaEvent.decode($0.payload) }
        #expect(events.map(\.sequence) == Array(1...max(events.count, 1)).prefix(events.count).map { $0 }, "contiguous sequences")
        return events.map(\.type)
    }
}

@Suite("Saga orchestrator")
struct SagaOrchestratorTests {
    @Test func happyPathConfirmsAndCharges() async throws {
        let h = SagaHarness()
        let p = try await h.product()
        let done = try await h.orchestrator().drive(try await h.begin(p))
        #expect(done.state == .confirmed && done.paymentRef != nil)
        #expect(try await h.stock(p) == (8, 0))
        #expect(try await h.store.order(id: try #require(done.orderId))?.status == .confirmed)
        #expect(try await h.store.chargedTotals() == (1, 3998))
        #expect(try await h.eventTypes(done) == [.sagaStarted, .inventoryReserved, .orderCreated, .paymentProcessed, .orderConfirmed])
    }

    @Test func failureBeforeReservationFailsWithNothingToUndo() async throws {
        let h = SagaHarness()
        h.faults.set(.before(.reserveInventory), .fail(times: 1))
        let p = try await h.product()
        let done = try await h.orchestrator().drive(try await h.begin(p))
        #expect(done.state == .failed && done.failureCode == "step_failed")
        #expect(try await h.stock(p) == (10, 0))
        #expect(try await h.eventTypes(done) == [.sagaStarted, .sagaFailed])
    }

    /// Reserve and create-order are one transaction: a failure in its second half writes nothing of the first.
    @Test func failureOfCreateOrderWritesNoReservation() async throws {
        let h = SagaHarness()
        h.faults.set(.before(.createOrder), .fail(times: 1))
        let p = try await h.product()
        let done = try await h.orchestrator().drive(try await h.begin(p))
        #expect(done.state == .failed && done.orderId == nil && done.failureCode == "step_failed")
        #expect(try await h.stock(p) == (10, 0))
        #expect(try await h.eventTypes(done) == [.sagaStarted, .sagaFailed])
    }

    /// `start` opens, reserves and orders in one transaction: a purchase that ends confirmed writes two saga
    /// transactions (plus the provider's own ledger entry).
    @Test func startChainsTheOpeningAndTheClosing() async throws {
        let h = SagaHarness()
        let p = try await h.product()
        guard case .ran(let done) = try await h.orchestrator().start(SagaOrder(idempotencyKey: "k-chain", productId: p.id, qty: 2,
                                                                               amountMinor: 3998, currency: "USD", mode: .atomic)) else {
            Issue.record("did not run"); return
        }
        #expect(done.state == .confirmed)
        #expect(try await h.stock(p) == (8, 0))
        #expect(h.faults.count(.before(.reserveInventory)) == 1 && h.faults.count(.before(.createOrder)) == 1)
        #expect(try await h.eventTypes(done) == [.sagaStarted, .inventoryReserved, .orderCreated, .paymentProcessed, .orderConfirmed])
    }

    @Test func declinedPaymentCompensatesInReverseOrder() async throws {
        let h = SagaHarness(.init(declineRate: 1))
        let p = try await h.product()
        let done = try await h.orchestrator().drive(try await h.begin(p))
        #expect(done.state == .compensated && done.failureCode == "payment_declined")
        #expect(try await h.stock(p) == (10, 0))
        #expect(try await h.store.order(id: try #require(done.orderId))?.status == .cancelled)
        #expect(try await h.store.chargedTotals() == (0, 0))
        let steps = try await h.store.steps(sagaId: done.id).map(\.name)
        #expect(steps == [.startSaga, .reserveInventory, .createOrder, .startCompensation, .refundPayment, .cancelOrder, .releaseInventory])
        #expect(try await h.eventTypes(done) == [.sagaStarted, .inventoryReserved, .orderCreated, .orderCancelled, .inventoryReleased, .sagaCompensated])
    }

    @Test func unavailableProviderIsRetriedThenCompensatedAndKeyVoided() async throws {
        let h = SagaHarness(.init(failureRate: 1))
        let p = try await h.product()
        let saga = try await h.begin(p)
        let done = try await h.orchestrator().drive(saga)
        #expect(done.state == .compensated && done.failureCode == "payment_unavailable")
        #expect(try await h.stock(p) == (10, 0))
        #expect(try await h.gateway.status(idempotencyKey: saga.id.uuidString) == .voided)
        // a charge arriving late with the same key (hanging request) cannot take money
        h.gateway.setBehavior(.reliable)
        #expect(try await h.gateway.charge(idempotencyKey: saga.id.uuidString, amountMinor: 1, currency: "USD") != .charged(reference: ""))
        #expect(try await h.store.chargedTotals() == (0, 0))
    }

    @Test func timeoutAfterChargingIsResolvedByQueryingNotGuessing() async throws {
        let h = SagaHarness(.init(timeoutAfterChargeRate: 1))
        let p = try await h.product()
        let done = try await h.orchestrator().drive(try await h.begin(p))
        #expect(done.state == .confirmed)
        #expect(try await h.store.chargedTotals() == (1, 3998), "exactly one charge")
        #expect(try await h.stock(p) == (8, 0))
    }

    @Test func confirmationFailingOnceIsRetriedPastThePivot() async throws {
        let h = SagaHarness()
        h.faults.set(.before(.confirmOrder), .fail(times: 1))
        let p = try await h.product()
        let done = try await h.orchestrator().drive(try await h.begin(p))
        #expect(done.state == .confirmed)
        #expect(h.faults.count(.before(.confirmOrder)) == 2)
    }

    @Test(arguments: [SagaStepName.refundPayment, .cancelOrder, .releaseInventory])
    func everyCompensationFailingOnceThenSucceeding(step: SagaStepName) async throws {
        let h = SagaHarness(.init(declineRate: 1))
        h.faults.set(.before(step), .fail(times: 1))
        let p = try await h.product()
        let done = try await h.orchestrator().drive(try await h.begin(p))
        #expect(done.state == .compensated)
        #expect(h.faults.count(.before(step)) == 2, "failed once, retried once")
        #expect(try await h.stock(p) == (10, 0))
        #expect(try await h.store.steps(sagaId: done.id).filter { $0.name == step }.count == 1, "applied exactly once")
    }

    @Test func duplicateStepDeliveryHasNoEffect() async throws {
        let h = SagaHarness()
        let p = try await h.product()
        let saga = try await h.begin(p)
        // The owner delivers every step of the same saga twice, concurrently (a retried request).
        async let a = h.orchestrator("app-1").drive(saga)
        async let b = h.orchestrator("app-1").drive(saga)
        let (da, db) = try await (a, b)
        #expect(da.state == .confirmed && db.state == .confirmed)
        #expect(try await h.stock(p) == (8, 0))
        #expect(try await h.store.chargedTotals() == (1, 3998))
        #expect(try await h.eventTypes(da) == [.sagaStarted, .inventoryReserved, .orderCreated, .paymentProcessed, .orderConfirmed])
        // and a step re-delivered after the fact is stale
        guard case .apply(let reserve) = SagaPlan.next(.started, .forward) else { return }
        let again = try await h.store.apply(reserve, sagaId: saga.id, fence: saga.fence, lease: .seconds(30), now: h.clock.now)
        #expect(again == .stale(try #require(try await h.store.saga(id: saga.id))))
        #expect(try await h.stock(p) == (8, 0))
    }

    @Test func nullCompensationOfAStepThatNeverRan() async throws {
        let h = SagaHarness()
        let p = try await h.product()
        // Compensate a saga whose reservation never happened: nothing is released (no negative reserved).
        let s1 = try await h.begin(p)
        let done1 = try await h.orchestrator().drive(s1, direction: .compensate(code: "cancelled", reason: "test"))
        #expect(done1.state == .failed)
        #expect(try await h.stock(p) == (10, 0))
        // Compensate a saga whose payment never ran: the refund is a void, nothing was charged.
        let s2 = try await h.begin(p)
        h.faults.set(.after(.createOrder), .crash)
        await #expect(throws: SimulatedCrash.self) { try await h.orchestrator().drive(s2) }
        h.faults.set(.after(.createOrder), nil)
        let mid = try #require(try await h.store.saga(id: s2.id))
        let done2 = try await h.orchestrator().drive(mid, direction: .compensate(code: "cancelled", reason: "test"))
        #expect(done2.state == .compensated)
        let refund = try #require(try await h.store.steps(sagaId: s2.id).first { $0.name == .refundPayment })
        #expect(refund.status == .skipped)
        #expect(try await h.gateway.status(idempotencyKey: s2.id.uuidString) == .voided)
        #expect(try await h.stock(p) == (10, 0))
    }

    @Test func lateStepAfterCompensationIsIgnored() async throws {
        let h = SagaHarness(.init(declineRate: 1))
        let p = try await h.product()
        let done = try await h.orchestrator().drive(try await h.begin(p))
        #expect(done.state == .compensated)
        // A slow instance now delivers confirm / payment for the same saga: both are stale.
        for transition in [SagaPlan.paymentSucceeded(reference: "late")] + [.paid].compactMap({ SagaPlan.next($0, .forward).transitionValue }) {
            for fence in [done.fence, SagaFence(owner: "slow", epoch: done.epoch)] {
                switch try await h.store.apply(transition, sagaId: done.id, fence: fence, lease: .seconds(30), now: h.clock.now) {
                case .stale(let s) where fence == done.fence, .fenced(let s) where fence != done.fence:
                    #expect(s.state == .compensated)
                case let other:
                    Issue.record("late step \(transition.step) by \(fence): \(other)")
                }
            }
        }
        #expect(try await h.stock(p) == (10, 0))
        #expect(try await h.store.order(id: try #require(done.orderId))?.status == .cancelled)
    }
}

extension SagaPlan.Action {
    var transitionValue: SagaTransition? {
        if case .apply(let t) = self { return t }
        return nil
    }
}
