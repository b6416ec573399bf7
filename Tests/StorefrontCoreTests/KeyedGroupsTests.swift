import StorefrontContracts
import StorefrontCore
import Synchronization
import Testing

@Suite("KeyedGroups: one group per key at a time, waiting items go together")
struct KeyedGroupsTests {
    /// Records each group `execute` was called with; the first call for key "a" parks at `gate`.
    final class Recorder: Sendable {
        let calls = Mutex<[[Int]]>([])
        let gate = FaultGate()

        func execute(_ items: [Int]) async -> [Result<Int, any Error>] {
            let first = calls.withLock { calls in
                calls.append(items)
                return calls.count == 1
            }
            if first { await gate.pass() }
            return items.map { $0 < 0 ? .failure(Refused(item: $0)) : .success($0 * 10) }
        }
    }

    struct Refused: Error, Equatable { let item: Int }

    static func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() {
            try #require(ContinuousClock.now < deadline, "condition not reached in 10 s")
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    @Test func itemsArrivingWhileAGroupRunsGoTogetherInOrderOfArrival() async throws {
        let groups = KeyedGroups<String, Int, Int>(maxGroup: 3)
        let recorder = Recorder()
        let execute: KeyedGroups<String, Int, Int>.Execute = { await recorder.execute($0) }
        async let first = groups.submit(1, key: "a", execute: execute)
        await recorder.gate.reached()
        // Five more while the first is parked: they wait (in arrival order), then go as groups of at most 3.
        var later: [Task<Int, any Error>] = []
        for item in [2, 3, -4, 5, 6] {
            later.append(Task { try await groups.submit(item, key: "a", execute: execute) })
            try await Self.waitUntil { groups.waitingCount("a") == later.count }
        }
        // Another key is not held up by "a".
        #expect(try await groups.submit(7, key: "b", execute: execute) == 70)
        recorder.gate.open()
        #expect(try await first == 10)
        let (r2, r3, r5, r6) = (try await later[0].value, try await later[1].value, try await later[3].value, try await later[4].value)
        #expect([r2, r3, r5, r6] == [20, 30, 50, 60])
        await #expect(throws: Refused(item: -4)) { try await later[2].value }
        #expect(recorder.calls.withLock { $0 } == [[1], [7], [2, 3, -4], [5, 6]])
        #expect(groups.counts.groups == 4 && groups.counts.itemsGrouped == 5)
        try await Self.waitUntil { groups.busyKeys == 0 }
        // Idle again: the next item runs alone, at once.
        #expect(try await groups.submit(8, key: "a", execute: execute) == 80)
        #expect(recorder.calls.withLock { $0.last } == [8])
    }

    @Test func anItemLeftWithoutAResultGetsAnError() async throws {
        let groups = KeyedGroups<String, Int, Int>(maxGroup: 8)
        let gate = FaultGate()
        let calls = Atomic<Int>(0)
        let execute: KeyedGroups<String, Int, Int>.Execute = { items in
            if calls.add(1, ordering: .relaxed).newValue == 1 { await gate.pass() }
            return items.dropLast().map { .success($0) }  // one result short
        }
        let first = Task { try await groups.submit(1, key: "k", execute: execute) }
        await gate.reached()
        let a = Task { try await groups.submit(2, key: "k", execute: execute) }
        try await Self.waitUntil { groups.waitingCount("k") == 1 }
        let b = Task { try await groups.submit(3, key: "k", execute: execute) }
        try await Self.waitUntil { groups.waitingCount("k") == 2 }
        gate.open()
        await #expect(throws: KeyedGroupsMissingResult.self) { try await first.value }
        #expect(try await a.value == 2)
        await #expect(throws: KeyedGroupsMissingResult.self) { try await b.value }
    }
}
