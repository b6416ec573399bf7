import Foundation
import Logging
import Metrics

/// Finishes sagas whose owner went silent: claims those with an expired lease and drives each to a terminal
/// state — forward if past the payment pivot, otherwise compensating — and tells the stock guard, whose cached
/// counter and product may be off. (This instance's own leases are renewed by `SagaOrchestrator.renewLeases`,
/// on a task of its own, so a slow recovery batch never lets them lapse.)
public final class SagaRecovery: Sendable {
    public struct Report: Sendable, Equatable {
        public var claimed = 0
        public var finished = 0
        public var leftUnfinished = 0
        /// Sagas recovery gave up on after `SagaSettings.maxRecoveryAttempts`: left to a person.
        public var flagged = 0
    }

    private let store: any SagaStore
    private let orchestrator: SagaOrchestrator
    private let clock: WallClock
    private let batchSize: Int
    private let stock: (any StockGuard)?
    private let logger: Logger
    private let needingAttention = Gauge(label: "storefront_sagas_needing_attention")

    public init(
        store: any SagaStore, orchestrator: SagaOrchestrator, clock: WallClock = .system, batchSize: Int = 10,
        stock: (any StockGuard)? = nil, logger: Logger = Logger(label: "storefront.recovery")
    ) {
        self.store = store
        self.orchestrator = orchestrator
        self.clock = clock
        self.batchSize = batchSize
        self.logger = logger
        self.stock = stock
    }

    /// One pass: claim expired sagas (in batches until none is left) and drive each to a terminal state.
    @discardableResult
    public func recoverOnce() async throws -> Report {
        var report = Report()
        while true {
            let claimed = try await store.claimExpired(owner: orchestrator.owner, lease: orchestrator.settings.leaseDuration, limit: batchSize,
                                                       now: clock.now())
            if claimed.isEmpty { break }
            report.claimed += claimed.count
            // Every claimed saga's lease is renewed from now on, not only from when its turn comes.
            orchestrator.hold(claimed)
            for saga in claimed {
                defer { orchestrator.release(saga) }
                let direction: SagaDirection = saga.state.isPastPivot
                    ? .forward
                    : .compensate(code: saga.failureCode ?? .recovered, reason: "previous owner's lease expired; recovered by \(orchestrator.owner)")
                logger.notice("recovering saga", metadata: ["saga": "\(saga.id)", "state": "\(saga.state.rawValue)", "attempt": "\(saga.attempts)",
                                                            "epoch": "\(saga.epoch)"])
                do {
                    let done = try await orchestrator.drive(saga, direction: direction)
                    report.finished += 1
                    Counter(label: "storefront_sagas_recovered_total", dimensions: [("state", done.state.rawValue)]).increment()
                    await stock?.afterRecovery(done)
                } catch is SagaOwnershipLost {
                    report.leftUnfinished += 1  // another instance has it now (logged by the orchestrator)
                } catch {
                    report.leftUnfinished += 1
                    await giveUpForNow(saga, error: error, report: &report)
                }
            }
            if claimed.count < batchSize { break }
        }
        return report
    }

    /// After a failed attempt: try again later (jittered exponential backoff), or — after
    /// `maxRecoveryAttempts` — flag the saga for a person. Its reserved units stay reserved either way.
    private func giveUpForNow(_ saga: Saga, error: any Error, report: inout Report) async {
        let settings = orchestrator.settings
        do {
            if saga.attempts >= settings.maxRecoveryAttempts {
                if try await store.flagForAttention(sagaId: saga.id, fence: saga.fence, error: "\(error)", now: clock.now()) {
                    report.flagged += 1
                    Counter(label: "storefront_sagas_flagged_total").increment()
                    logger.error("saga needs attention: recovery gave up after \(saga.attempts) attempts; its units stay reserved. See `storefront sagas list`", metadata: [
                        "saga": "\(saga.id)", "state": "\(saga.state.rawValue)", "error": "\(error)"])
                }
            } else {
                let delay = settings.recoveryDelay(afterAttempts: saga.attempts)
                _ = try await store.postpone(sagaId: saga.id, fence: saga.fence, delay: delay, error: "\(error)", now: clock.now())
                logger.error("recovery could not finish saga; trying again later", metadata: [
                    "saga": "\(saga.id)", "attempt": "\(saga.attempts)", "retryIn": "\(delay)", "error": "\(error)"])
            }
        } catch {
            logger.error("recovery could not record its failed attempt; the saga's lease decides", metadata: ["saga": "\(saga.id)", "error": "\(error)"])
        }
    }

    /// One round of the app server's recovery service: recovers expired sagas and logs what it did (the app
    /// runs it every `STOREFRONT_RECOVERY_INTERVAL_SECONDS`).
    @discardableResult
    public func pass() async throws -> Report {
        let report = try await recoverOnce()
        needingAttention.record(try await store.unfinished(needingAttention: true, limit: 1_000).count)
        if report.claimed > 0 {
            logger.info("recovery pass", metadata: ["claimed": "\(report.claimed)", "finished": "\(report.finished)", "unfinished": "\(report.leftUnfinished)"])
        }
        return report
    }
}
