import Foundation
import Synchronization

/// Order ids handed out by this server from blocks it reserved in the database (`id_blocks`, migration 007), so
/// that a saga's opening transaction knows its order's id before it is sent: the saga row, the order row and
/// the events that carry the id go to the primary in one batch with the COMMIT (one round trip), where an
/// AUTO_INCREMENT id had to come back first. Every id is unique across servers (a block is reserved by one
/// committed UPDATE); ids are increasing per server but not in commit order across servers, and a block's
/// unused ids are skipped when the server stops.
public final class SQLOrderIDs: Sendable {
    private struct State {
        var next: Int64 = 0
        var end: Int64 = 0
        var refill: Task<Range<Int64>, any Error>?
    }

    private let database: any SQLExecutor
    private let blockSize: Int64
    private let state = Mutex(State())

    public init(database: any SQLExecutor, blockSize: Int64 = 1000) {
        precondition(blockSize > 0)
        self.database = database
        self.blockSize = blockSize
    }

    /// The next id; reserves a new block first when this one is used up (one reservation at a time: callers
    /// that find the block empty together wait for the same one).
    public func next() async throws -> Int64 {
        while true {
            let (id, refill) = state.withLock { s -> (Int64?, Task<Range<Int64>, any Error>?) in
                if s.next < s.end {
                    defer { s.next += 1 }
                    return (s.next, nil)
                }
                if s.refill == nil {
                    let (database, size) = (database, blockSize)
                    s.refill = Task { try await Self.reserve(size, on: database) }
                }
                return (nil, s.refill)
            }
            if let id { return id }
            guard let refill else { continue }
            let result = await refill.result
            state.withLock { s in
                guard s.refill == refill else { return }
                s.refill = nil
                if case .success(let block) = result, s.next >= s.end { (s.next, s.end) = (block.lowerBound, block.upperBound) }
            }
            if case .failure(let error) = result { throw error }
        }
    }

    /// Drops what is left of the current block: one of its ids was taken already (an order written by a server
    /// from before migration 007, or a block row restored from an older backup). The next id comes from a new
    /// block, which starts past every order.
    public func discardBlock() {
        state.withLock { s in s.next = s.end }
    }

    /// Reserves `size` ids: past every id the block row has handed out and every order that exists (an order
    /// written by an older server, or a block row restored from an older backup, is not handed out again).
    /// The orders' maximum is a plain read before the block row's update: read inside the UPDATE, InnoDB
    /// would lock the end of the orders index while purchases insert there.
    static func reserve(_ size: Int64, on database: any SQLExecutor) async throws -> Range<Int64> {
        try await database.write { s in
            let floor = try s.row("SELECT COALESCE(MAX(id), 0) + 1 AS floor FROM orders")?.int("floor") ?? 1
            let changed = try s.run(
                "UPDATE id_blocks SET next_id = CASE WHEN next_id > ? THEN next_id ELSE ? END + ? WHERE name = 'orders'",
                [floor, floor, size]).rows
            guard changed == 1, let end = try s.row("SELECT next_id FROM id_blocks WHERE name = 'orders'")?.int("next_id") else {
                throw SQLSchemaMissing(description: "id_blocks has no 'orders' row: run `storefront db migrate` (migration 007)")
            }
            return (end - size)..<end
        }
    }
}

/// The database lacks what this version's migrations create.
public struct SQLSchemaMissing: Error, CustomStringConvertible {
    public let description: String
}
