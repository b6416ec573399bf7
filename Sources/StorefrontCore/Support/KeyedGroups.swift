import Synchronization

/// Work that arrives for a key while earlier work for that key is running waits, and then runs as one group:
/// at most one group per key at a time, each of at most `maxGroup` items, in arrival order. A caller that finds
/// its key idle runs its item alone, on its own task (no hand-off when there is no contention); when a group
/// ends and items are waiting, the next group runs on a new task and the caller returns.
///
/// `execute` answers every item of a group, one result per item in order (a missing one is an error for that
/// item). It never throws as a whole: a failure that concerns every item is that failure for each. A group
/// runs with the `execute` of the caller that found its key idle: every caller of one key must pass an
/// equivalent one. Waiting items are not cancelled with their task (each is answered when its group ends).
public final class KeyedGroups<Key: Hashable & Sendable, Item: Sendable, Output: Sendable>: Sendable {
    public typealias Execute = @Sendable ([Item]) async -> [Result<Output, any Error>]

    private struct Waiter: Sendable {
        let item: Item
        let continuation: CheckedContinuation<Output, any Error>
    }

    /// Keys with a group running, and what waits for each (in arrival order).
    private let waiting = Mutex<[Key: [Waiter]]>([:])
    private let groups = Atomic<Int>(0)
    private let grouped = Atomic<Int>(0)
    public let maxGroup: Int

    public init(maxGroup: Int) {
        precondition(maxGroup >= 1)
        self.maxGroup = maxGroup
    }

    public func submit(_ item: Item, key: Key, execute: @escaping Execute) async throws -> Output {
        let leads = waiting.withLock { map -> Bool in
            guard map[key] == nil else { return false }
            map[key] = []
            return true
        }
        if leads {
            groups.add(1, ordering: .relaxed)
            let result = await Self.run([item], execute).first!
            next(key, execute)
            return try result.get()
        }
        return try await withCheckedThrowingContinuation { continuation in
            let waiter = Waiter(item: item, continuation: continuation)
            let leadsNow = waiting.withLock { map -> Bool in
                guard map[key] != nil else {
                    map[key] = []
                    return true
                }
                map[key]!.append(waiter)
                return false
            }
            // The running group ended between the two looks: this one runs now, on a task of its own.
            if leadsNow { Task { await self.drain(key, [waiter], execute) } }
        }
    }

    /// Groups run so far, and items that ran in a group with at least one other.
    public var counts: (groups: Int, itemsGrouped: Int) { (groups.load(ordering: .relaxed), grouped.load(ordering: .relaxed)) }

    /// Keys with a group running.
    public var busyKeys: Int { waiting.withLock { $0.count } }

    /// Items waiting for `key`'s running group to end.
    public func waitingCount(_ key: Key) -> Int { waiting.withLock { $0[key]?.count ?? 0 } }

    private static func run(_ items: [Item], _ execute: Execute) async -> [Result<Output, any Error>] {
        let results = await execute(items)
        return items.indices.map { results.indices.contains($0) ? results[$0] : .failure(KeyedGroupsMissingResult()) }
    }

    /// The next group for `key` (on a new task), or `key` idle when nothing waits.
    private func next(_ key: Key, _ execute: @escaping Execute) {
        let group = take(key)
        guard !group.isEmpty else { return }
        Task { await drain(key, group, execute) }
    }

    /// Runs `group` and every group that waits after it, until `key` is idle.
    private func drain(_ key: Key, _ first: [Waiter], _ execute: @escaping Execute) async {
        var group = first
        while !group.isEmpty {
            groups.add(1, ordering: .relaxed)
            if group.count > 1 { grouped.add(group.count, ordering: .relaxed) }
            let results = await Self.run(group.map(\.item), execute)
            for (waiter, result) in zip(group, results) { waiter.continuation.resume(with: result) }
            group = take(key)
        }
    }

    /// Up to `maxGroup` waiters for `key`, oldest first; with none, `key` becomes idle.
    private func take(_ key: Key) -> [Waiter] {
        waiting.withLock { map in
            let queued = map[key] ?? []
            guard !queued.isEmpty else {
                map[key] = nil
                return []
            }
            map[key] = Array(queued.dropFirst(maxGroup))
            return Array(queued.prefix(maxGroup))
        }
    }
}

/// `KeyedGroups`' `execute` returned fewer results than the group had items: a programming error, reported
/// to the items it left unanswered.
public struct KeyedGroupsMissingResult: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "a group's execution left this item without a result" }
}
