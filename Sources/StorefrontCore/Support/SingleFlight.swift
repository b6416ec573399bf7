import Synchronization

/// Runs at most one piece of work per key at a time; concurrent callers with the same key share its result.
public final class SingleFlight<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let running = Mutex<[Key: Task<Value, any Error>]>([:])

    public init() {}

    public func run(_ key: Key, _ work: @escaping @Sendable () async throws -> Value) async throws -> Value {
        let task = running.withLock { map in
            if let existing = map[key] { return existing }
            let task = Task { try await work() }
            map[key] = task
            return task
        }
        defer {
            running.withLock { map in
                if map[key] == task { map[key] = nil }
            }
        }
        return try await task.value
    }

    /// Keys with work in flight.
    public var count: Int { running.withLock { $0.count } }
}
