import Foundation
import StorefrontContracts
import StorefrontCore
import Testing

/// Issue 10.5: bounded waits, bounded retries, and sagas that need a person.
@Suite("Saga timeouts and attention")
struct SagaTimeoutTests {
    /// Drives `saga` and gives up waiting after `limit`: nil when it did not finish (the test then fails).
    func finishes(_ orchestrator: SagaOrchestrator, _ saga: Saga, within limit: Duration) async -> Result<Saga, any Error>? {
        let run = Task { try await orchestrator.drive(saga) }
        let watchdog = Task {
            try await Task.sleep(for: limit)
            run.cancel()
        }
        let result = await run.result
        watchdog.cancel()
        if case .failure(let error) = result, error is CancellationError { return nil }
        return result
    }

    /// A provider that never answers used to pin the saga and its reserved units forever.
    @Test func aHungProviderTimesOutAndTheSagaCompensates() async throws {
        let h = SagaHarness(.init(hangRate: 1))
        let p = try await h.product()
        let saga = try await h.begin(p)
        let orchestrator = SagaOrchestrator(
            store: h.store, gateway: h.gateway, owner: "app-1",
            settings: SagaSettings(leaseDuration: .seconds(30), paymentAttempts: 2, stepAttempts: 2, retryBackoff: .milliseconds(1),
                                   providerTimeout: .milliseconds(100)),
            clock: h.clock.wall)
        // Charges hang: each attempt times out (outcome unknown; the status query says nothing was charged), the
        // saga compensates; the refund hangs too, so after its attempts the saga is left for recovery.
        let outcome = await finishes(orchestrator, saga, within: .seconds(5))
        guard let outcome else { Issue.record("the saga was still waiting for the provider after 5 s"); return }
        #expect(throws: (any Error).self) { try outcome.get() }
        #expect(try await h.store.saga(id: saga.id)?.state == .refunding)
        // The provider answers again: the compensation finishes and the units come back.
        h.gateway.setBehavior(.reliable)
        let done = try await orchestrator.drive(try #require(try await h.store.saga(id: saga.id)))
        #expect(done.state == .compensated && done.failureCode == .paymentUnavailable)
        #expect(try await h.stock(p) == (10, 0))
    }

    /// Recovery retries a failing saga with backoff, then leaves it to a person: flagged, never claimed again,
    /// its units still reserved. An operator's retry hands it back, and it finishes.
    @Test func recoveryGivesUpAfterItsAttemptsAndAnOperatorRetries() async throws {
        let h = SagaHarness(.init(hangRate: 1))
        let p = try await h.product()
        var saga = try await h.begin(p)
        // Its owner reserved and created the order, then died: recovery must refund (void) — and the provider hangs.
        for state in [SagaState.started, .reserved] {
            guard case .apply(let t) = SagaPlan.next(state, .forward),
                  case .applied(let next) = try await h.store.apply(t, sagaId: saga.id, fence: saga.fence, lease: .seconds(30), now: h.clock.now)
            else { Issue.record("setup"); return }
            saga = next
        }
        let settings = SagaSettings(leaseDuration: .seconds(30), paymentAttempts: 1, stepAttempts: 1, retryBackoff: .milliseconds(1),
                                    providerTimeout: .milliseconds(20), maxRecoveryAttempts: 3, recoveryBackoff: .seconds(10))
        let orchestrator = SagaOrchestrator(store: h.store, gateway: h.gateway, owner: "app-2", settings: settings, clock: h.clock.wall)
        let recovery = SagaRecovery(store: h.store, orchestrator: orchestrator, clock: h.clock.wall)
        h.clock.advance(by: 31)
        var flagged = 0
        for attempt in 1...3 {
            let report = try await recovery.recoverOnce()
            #expect(report.claimed == 1 && report.leftUnfinished == 1, "attempt \(attempt)")
            flagged += report.flagged
            // backed off: not claimed again before the delay (8–12 s, then 16–24 s)
            h.clock.advance(by: 7)
            #expect(try await recovery.recoverOnce().claimed == 0)
            h.clock.advance(by: 30)
        }
        #expect(flagged == 1)
        let stuck = try #require(try await h.store.saga(id: saga.id))
        #expect(stuck.needsAttention && stuck.attempts == 3 && !stuck.state.isTerminal)
        #expect(stuck.lastError?.contains("did not answer within") == true, "\(stuck.lastError ?? "")")
        #expect(try await h.stock(p) == (8, 2), "its units stay held, not lost")
        h.clock.advance(by: 3600)
        #expect(try await recovery.recoverOnce().claimed == 0, "never claimed while it needs attention")

        h.gateway.setBehavior(.reliable)
        _ = try await h.store.retry(sagaId: saga.id, force: false, now: h.clock.now)
        #expect(try await recovery.recoverOnce().finished == 1)
        #expect(try await h.store.saga(id: saga.id)?.state == .compensated)
        #expect(try await h.stock(p) == (10, 0))
    }

    /// A saga that has not reached the pivot by its deadline compensates instead of going on.
    @Test func aSagaPastItsDeadlineCompensates() async throws {
        let h = SagaHarness()
        let p = try await h.product()
        let saga = try await h.begin(p)
        h.clock.advance(by: 61)
        let done = try await h.orchestrator().drive(saga)
        #expect(done.state == .failed && done.failureCode == .deadlineExceeded)
        #expect(try await h.stock(p) == (10, 0))
    }
}
