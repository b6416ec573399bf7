import StorefrontCore
import Testing

@Suite("Saga state machine (pure)")
struct SagaPlanTests {
    @Test func forwardPathVisitsEveryStepInOrder() {
        var state = SagaState.started
        var steps: [SagaStepName] = []
        while true {
            switch SagaPlan.next(state, .forward) {
            case .apply(let t):
                #expect(t.from == state)
                steps.append(t.step)
                state = t.to
            case .charge:
                steps.append(.processPayment)
                state = SagaPlan.paymentSucceeded(reference: "r").to
            case .refund:
                Issue.record("forward path asked for a refund")
                return
            case .finished:
                #expect(state == .confirmed)
                #expect(steps == [.reserveInventory, .createOrder, .processPayment, .confirmOrder])
                return
            }
        }
    }

    @Test func compensationRunsInReverseOrder() {
        let back = SagaDirection.compensate(code: "payment_declined", reason: "no")
        // "compensation started" is recorded before the provider is asked to refund
        guard case .apply(let start) = SagaPlan.next(.orderCreated, back) else { Issue.record("no durable start"); return }
        #expect(start.step == .startCompensation && start.to == .refunding && start.failureCode == "payment_declined" && start.events.isEmpty)
        #expect(SagaPlan.next(.refunding, back) == .refund)
        #expect(SagaPlan.next(.refunding, .forward) == .refund, "a resumed compensation never turns forward")
        let reversed = SagaPlan.paymentReversed(refunded: true, code: "payment_declined", reason: "no")
        #expect(reversed.from == .refunding && reversed.to == .paymentReversed && reversed.events == [.paymentRefunded])
        guard case .apply(let cancel) = SagaPlan.next(.paymentReversed, back),
              case .apply(let release) = SagaPlan.next(.orderCancelled, back)
        else { Issue.record("missing compensation"); return }
        #expect(cancel.step == .cancelOrder && cancel.effect == .cancelOrder && cancel.to == .orderCancelled)
        #expect(release.step == .releaseInventory && release.effect == .releaseInventory && release.to == .compensated)
        #expect(release.events == [.inventoryReleased, .sagaCompensated])
        #expect(SagaPlan.paymentReversed(refunded: false, code: "x", reason: "y").events.isEmpty)
    }

    @Test func nothingToUndoBeforeReservation() {
        guard case .apply(let t) = SagaPlan.next(.started, .compensate(code: "step_failed", reason: "boom")) else {
            Issue.record("expected a transition"); return
        }
        #expect(t.to == .failed && t.effect == .none && t.events == [.sagaFailed] && t.failureCode == "step_failed")
    }

    @Test func pastThePivotOnlyForward() {
        guard case .apply(let t) = SagaPlan.next(.paid, .compensate(code: "x", reason: "y")) else {
            Issue.record("expected confirm"); return
        }
        #expect(t.step == .confirmOrder && t.to == .confirmed)
    }

    @Test func unwindingOnlyBackward() {
        guard case .apply(let t) = SagaPlan.next(.paymentReversed, .forward) else { Issue.record("expected cancel"); return }
        #expect(t.step == .cancelOrder)
    }

    @Test func terminalStatesAreFinished() {
        for state in SagaState.terminal {
            #expect(SagaPlan.next(state, .forward) == .finished)
            #expect(SagaPlan.next(state, .compensate(code: "x", reason: "y")) == .finished)
        }
        #expect(Set(SagaState.terminal) == [.confirmed, .compensated, .failed])
    }
}
