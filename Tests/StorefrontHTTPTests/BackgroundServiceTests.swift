import Foundation
import Logging
import ServiceLifecycle
import StorefrontApp
import StorefrontCore
import Synchronization
import Testing

@Suite("Background services")
struct BackgroundServiceTests {
    final class Tally: Sendable {
        let rounds = Mutex(0)
        let shutdowns = Mutex(0)
        var count: Int { rounds.withLock { $0 } }
    }

    struct Flaky: Error {}

    /// Runs `service` in a ServiceGroup until `until` holds, then shuts the group down gracefully.
    func run(_ service: PeriodicService, until: @Sendable () -> Bool) async throws {
        let group = ServiceGroup(configuration: .init(services: [service], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let deadline = ContinuousClock.now + .seconds(10)
            while !until(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    /// Sleeps only give lower bounds on a busy machine: the pauses are far apart (100 ms vs 2 s) so that the
    /// one upper bound below holds with a wide margin.
    @Test(.timeLimit(.minutes(1)))
    func roundsRepeatAFailingRoundIsRetriedAfterRetryAfterAndShutdownRunsOnce() async throws {
        let tally = Tally()
        let times = Mutex<[ContinuousClock.Instant]>([])
        let service = PeriodicService("test job", retryAfter: .seconds(2), logger: Logger(label: "test"),
                                      atShutdown: { tally.shutdowns.withLock { $0 += 1 } }) {
            times.withLock { $0.append(.now) }
            let n = tally.rounds.withLock { r in r += 1; return r }
            if n == 2 { throw Flaky() }  // a failing round does not stop the service
            return .milliseconds(100)
        }
        try await run(service) { tally.count >= 4 }
        let rounds = tally.count
        #expect(rounds >= 4)
        #expect(tally.shutdowns.withLock { $0 } == 1)
        let t = times.withLock { $0 }
        #expect(t[1] - t[0] >= .milliseconds(100), "the pause the round returned")
        #expect(t[1] - t[0] < .seconds(2), "not retryAfter: that round did not fail")
        #expect(t[2] - t[1] >= .seconds(2), "after a failed round: retryAfter")
        try await Task.sleep(for: .milliseconds(300))
        #expect(tally.count == rounds, "no round after graceful shutdown")
    }

    @Test(.timeLimit(.minutes(1)))
    func theFirstRoundWaitsForTheFirstPause() async throws {
        let tally = Tally()
        let started = ContinuousClock.now
        let firstRound = Mutex<Duration?>(nil)
        let service = PeriodicService("test job", firstPause: .milliseconds(200), logger: Logger(label: "test")) {
            firstRound.withLock { if $0 == nil { $0 = ContinuousClock.now - started } }
            tally.rounds.withLock { $0 += 1 }
            return .seconds(60)
        }
        try await run(service) { tally.count >= 1 }
        #expect(try #require(firstRound.withLock { $0 }) >= .milliseconds(200))
        #expect(tally.count == 1, "the next round waits for the pause the round returned (cut short by shutdown)")
    }

    /// Graceful shutdown ends a pause, never a round in flight: the round completes, then `atShutdown` runs.
    @Test(.timeLimit(.minutes(1)))
    func gracefulShutdownLetsTheRoundInFlightFinish() async throws {
        let tally = Tally()
        let inRound = Mutex(false)
        let finished = Mutex(false)
        let service = PeriodicService("test job", logger: Logger(label: "test"), atShutdown: {
            #expect(finished.withLock { $0 }, "atShutdown after the round")
            tally.shutdowns.withLock { $0 += 1 }
        }) {
            inRound.withLock { $0 = true }
            try await Task.sleep(for: .milliseconds(300))  // would throw if the round were cancelled
            finished.withLock { $0 = true }
            return .seconds(60)
        }
        try await run(service) { inRound.withLock { $0 } }
        #expect(finished.withLock { $0 })
        #expect(tally.shutdowns.withLock { $0 } == 1)
    }

    /// The relay's rounds: back-off doubling (capped at 5 s) while publishing fails, no pause while records keep
    /// coming, the idle pause once the outbox is empty; the back-off starts over after a success.
    @Test func outboxRelayStepsBackOffWhileThePublisherFails() async throws {
        let outbox = ListOutbox((1...3).map { OutboxRecord(id: $0, eventId: UUID(), topic: "t", key: "k", payload: "{}", createdAt: Date(), publishedAt: nil) })
        let publisher = FailingPublisher(failures: 8)
        let relay = OutboxRelay(outbox: outbox, publisher: publisher, batchSize: 1)
        let idle = Duration.milliseconds(50)
        var pauses: [Duration] = []
        await #expect(throws: Never.self, "healthy before its first round") { try await relay.checkHealth() }
        pauses.append(await relay.step(idle: idle))
        await #expect(throws: StorefrontError.self, "degraded while rounds fail") { try await relay.checkHealth() }
        #expect(relay.healthName == "kafka_relay" && !relay.healthIsCritical, "never makes the server unready")
        for _ in 1..<10 { pauses.append(await relay.step(idle: idle)) }
        await #expect(throws: Never.self, "healthy again after a round succeeded") { try await relay.checkHealth() }
        let backOff: [Duration] = [100, 200, 400, 800, 1600, 3200, 5000, 5000].map { .milliseconds($0) }
        #expect(pauses == backOff + [.zero, .zero])
        #expect(relay.isFailing == false)
        publisher.fail(1)
        #expect(await relay.step(idle: idle) == .milliseconds(100), "the back-off starts over")
        #expect(relay.isFailing)
        #expect(await relay.step(idle: idle) == .zero)
        #expect(await relay.step(idle: idle) == idle, "empty outbox: the idle pause")
        #expect(outbox.left == 0)
    }
}

/// Outbox records in memory (the relay's store).
final class ListOutbox: OutboxStore {
    private let records: Mutex<[OutboxRecord]>
    init(_ records: [OutboxRecord]) { self.records = Mutex(records) }
    var left: Int { records.withLock { $0.filter { $0.publishedAt == nil }.count } }
    func unpublished(limit: Int) async throws -> [OutboxRecord] {
        records.withLock { Array($0.filter { $0.publishedAt == nil }.prefix(limit)) }
    }
    func records(after: Int64, limit: Int, sagaId: UUID?) async throws -> [OutboxRecord] {
        records.withLock { Array($0.filter { $0.id > after }.prefix(limit)) }
    }
    func markPublished(ids: [Int64], at: Date) async throws {
        records.withLock { all in for i in all.indices where ids.contains(all[i].id) { all[i].publishedAt = at } }
    }
}

/// Fails its first `failures` batches, then delivers everything.
final class FailingPublisher: EventPublisher {
    struct Down: Error {}
    private let remaining: Mutex<Int>
    init(failures: Int) { remaining = Mutex(failures) }
    /// Fails the next `n` batches.
    func fail(_ n: Int) { remaining.withLock { $0 = n } }
    func publish(_ records: [OutboxRecord]) async -> PublishOutcome {
        let fail = remaining.withLock { r in defer { if r > 0 { r -= 1 } }; return r > 0 }
        return fail ? PublishOutcome(delivered: 0, error: Down()) : PublishOutcome(delivered: records.count, error: nil)
    }
}
