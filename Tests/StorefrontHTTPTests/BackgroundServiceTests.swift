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

    @Test func roundsRepeatAFailingRoundIsRetriedAndShutdownRunsOnce() async throws {
        let tally = Tally()
        let service = PeriodicService("test job", retryAfter: .milliseconds(5), logger: Logger(label: "test"),
                                      atShutdown: { tally.shutdowns.withLock { $0 += 1 } }) {
            let n = tally.rounds.withLock { r in r += 1; return r }
            if n == 2 { throw Flaky() }  // a failing round does not stop the service
            return .milliseconds(5)
        }
        try await run(service) { tally.count >= 5 }
        let rounds = tally.count
        #expect(rounds >= 5)
        #expect(tally.shutdowns.withLock { $0 } == 1)
        try await Task.sleep(for: .milliseconds(50))
        #expect(tally.count == rounds, "no round after graceful shutdown")
    }

    @Test func theFirstRoundWaitsForTheFirstPause() async throws {
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

    /// The relay's rounds: no pause while records keep coming, back-off doubling while publishing fails, back
    /// to the idle pause once the outbox is empty.
    @Test func outboxRelayStepsBackOffWhileThePublisherFails() async throws {
        let outbox = ListOutbox((1...3).map { OutboxRecord(id: $0, eventId: UUID(), topic: "t", key: "k", payload: "{}", createdAt: Date(), publishedAt: nil) })
        let publisher = FailingPublisher(failures: 3)
        let relay = OutboxRelay(outbox: outbox, publisher: publisher, batchSize: 1)
        let idle = Duration.milliseconds(100)
        var pauses: [Duration] = []
        for _ in 0..<7 { pauses.append(await relay.step(idle: idle)) }
        #expect(pauses == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .zero, .zero, .zero, idle])
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
    func publish(_ records: [OutboxRecord]) async -> PublishOutcome {
        let fail = remaining.withLock { r in defer { if r > 0 { r -= 1 } }; return r > 0 }
        return fail ? PublishOutcome(delivered: 0, error: Down()) : PublishOutcome(delivered: records.count, error: nil)
    }
}
