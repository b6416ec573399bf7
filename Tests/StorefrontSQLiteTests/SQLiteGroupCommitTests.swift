import Foundation
import GRDB
import StorefrontCore
import StorefrontSQL
@testable import StorefrontSQLite
import Synchronization
import Testing

func outcome<T: Sendable>(_ body: () async throws -> T) async -> Result<T, any Error> {
    do { return .success(try await body()) } catch { return .failure(error) }
}

final class Outcomes: Sendable {
    private let values = Mutex<[Int: Result<Int, any Error>]>([:])
    func set(_ n: Int, _ result: Result<Int, any Error>) { values.withLock { $0[n] = result } }
    var all: [Int: Result<Int, any Error>] { values.withLock { $0 } }
}

@Suite("SQLite group commit")
struct SQLiteGroupCommitTests {
    struct Refused: Error {}

    func database() async throws -> SQLiteDatabase {
        let db = try temporarySQLite()
        _ = try await db.write { sql in try sql.run("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)", []) }
        return db
    }

    /// Holds the writer's queue (with nothing of the group commit's in it) until `count` writes are queued
    /// behind it, so they form one batch. Returns when it let go; records an issue if they never queued.
    func holdWriter(_ db: SQLiteDatabase, until count: Int, start writes: @escaping @Sendable () -> Void) async throws {
        let holding = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        // Wait for any drain of earlier writes to finish, so none is running when the writes below queue.
        while db.groupCommit.isDraining { try await Task.sleep(for: .milliseconds(2)) }
        db.writer.asyncWriteWithoutTransaction { _ in
            holding.signal()
            release.wait()
        }
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { holding.wait(); continuation.resume() }
        }
        writes()
        let deadline = ContinuousClock.now + .seconds(20)
        while db.groupCommit.pending < count, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(db.groupCommit.pending >= count, "the writes queued behind the held writer")
        release.signal()
    }

    func count(_ db: SQLiteDatabase, _ key: String) async throws -> Int {
        try await db.read(.primary) { sql in try sql.rows("SELECT COUNT(*) AS n FROM t WHERE k = ?", [.text(key)]) }
            .first.map { Int(try $0.int("n")) } ?? -1
    }

    @Test func theWriterCommitsWithSynchronousFullAndJournalsSavepointsInMemory() async throws {
        let db = try temporarySQLite()
        #expect(try db.writerPragma("synchronous") == 2, "FULL: a commit is on disk before the write returns")
        #expect(try db.writerPragma("temp_store") == 2, "MEMORY: savepoint journals stay off the disk")
    }

    @Test func aFailingWriteInABatchIsUndoneAndItsNeighboursCommit() async throws {
        let db = try await database()
        let outcomes = Outcomes()
        let done = AsyncStream<Void>.makeStream()
        try await holdWriter(db, until: 5) {
            for n in 0..<5 {
                Task {
                    let result = await outcome {
                        try await db.write { sql -> Int in
                            _ = try sql.run("INSERT INTO t (k, v) VALUES (?, ?)", [.text("a\(n)"), .int(Int64(n))])
                            if n == 1 { _ = try sql.run("INSERT INTO t (k, v) VALUES ('a1', 9)", []) }  // duplicate key
                            if n == 3 { throw Refused() }
                            return n
                        }
                    }
                    outcomes.set(n, result)
                    done.continuation.yield()
                }
            }
        }
        var finished = 0
        for await _ in done.stream {
            finished += 1
            if finished == 5 { break }
        }
        let all = outcomes.all
        #expect(db.groupCommit.statistics.largestBatch >= 5, "the five writes were one transaction: \(db.groupCommit.statistics)")
        for n in [0, 2, 4] {
            #expect((try? all[n]?.get()) == n)
            #expect(try await count(db, "a\(n)") == 1, "write \(n) committed")
        }
        #expect(throws: SQLUniqueViolation.self) { try all[1]?.get() }
        #expect(throws: Refused.self) { try all[3]?.get() }
        #expect(try await count(db, "a1") == 0, "the failed write's first insert was rolled back with it")
        #expect(try await count(db, "a3") == 0)
    }

    /// The loser of a unique-key race inside one batch learns of it only after the batch committed, so the
    /// winner's row is there to read — what a replayed purchase (same Idempotency-Key) relies on.
    @Test func callersAreAnsweredOnlyAfterTheCommit() async throws {
        let db = try await database()
        let seen = Outcomes()
        let done = AsyncStream<Void>.makeStream()
        try await holdWriter(db, until: 2) {
            for n in 1...2 {
                Task {
                    let result = await outcome { try await db.write { sql in try sql.run("INSERT INTO t (k, v) VALUES ('key', ?)", [.int(Int64(n))]).rows } }
                    // Read by another connection the moment this caller is answered, won or lost.
                    let visible = (try? await count(db, "key")) ?? -1
                    seen.set(n, result.map { _ in visible })
                    seen.set(n + 10, .success(visible))
                    done.continuation.yield()
                }
            }
        }
        var finished = 0
        for await _ in done.stream {
            finished += 1
            if finished == 2 { break }
        }
        let all = seen.all
        let winners = [1, 2].filter { (try? all[$0]?.get()) != nil }
        #expect(winners.count == 1, "one insert wins")
        for n in [1, 2] {
            if case .failure(let error) = all[n] { #expect(error is SQLUniqueViolation, "\(error)") }
            #expect((try? all[n + 10]?.get()) == 1, "the winner's row was committed when caller \(n) was answered")
        }
        #expect(db.groupCommit.statistics.largestBatch >= 2)
    }

    /// A write under which SQLite rolls back the whole transaction (here a trigger's `RAISE(ROLLBACK)`; in life
    /// a full disk) takes its batch's other writes with it: they run again, each alone, and commit.
    @Test func aWholeBatchRolledBackRunsItsWritesAgainAlone() async throws {
        let db = try await database()
        _ = try await db.write { sql in
            try sql.run("CREATE TRIGGER t_refuse BEFORE INSERT ON t WHEN NEW.v < 0 BEGIN SELECT RAISE(ROLLBACK, 'refused'); END", [])
        }
        let outcomes = Outcomes()
        let done = AsyncStream<Void>.makeStream()
        try await holdWriter(db, until: 3) {
            for n in 0..<3 {
                Task {
                    let result = await outcome {
                        try await db.write { sql -> Int in
                            _ = try sql.run("INSERT INTO t (k, v) VALUES (?, ?)", [.text("r\(n)"), .int(n == 1 ? -1 : Int64(n))])
                            return n
                        }
                    }
                    outcomes.set(n, result)
                    done.continuation.yield()
                }
            }
        }
        var finished = 0
        for await _ in done.stream {
            finished += 1
            if finished == 3 { break }
        }
        let all = outcomes.all
        #expect((try? all[0]?.get()) == 0 && (try? all[2]?.get()) == 2, "the neighbours committed on their own")
        #expect(throws: (any Error).self) { try all[1]?.get() }
        #expect(try await count(db, "r0") == 1)
        #expect(try await count(db, "r2") == 1)
        #expect(try await count(db, "r1") == 0)
        #expect(db.groupCommit.statistics.largestBatch >= 3)
    }

    /// Another process holds the file's write lock past the busy timeout (10 s): the batch's BEGIN fails and
    /// every write of it gets that error once — not one more 10 s wait per write, run alone.
    @Test func aBatchThatCannotBeginFailsOnceForAll() async throws {
        let db = try await database()
        let other = try DatabaseQueue(path: db.path)
        let holding = DispatchSemaphore(value: 0)
        let letGo = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            try? other.writeWithoutTransaction { conn in
                try conn.execute(sql: "BEGIN IMMEDIATE")
                holding.signal()
                letGo.wait()
                try conn.execute(sql: "ROLLBACK")
            }
        }
        await withCheckedContinuation { continuation in DispatchQueue.global().async { holding.wait(); continuation.resume() } }
        let outcomes = Outcomes()
        let done = AsyncStream<Void>.makeStream()
        let started = ContinuousClock.now
        try await holdWriter(db, until: 3) {
            for n in 0..<3 {
                Task {
                    let result = await outcome {
                        try await db.write { sql -> Int in
                            _ = try sql.run("INSERT INTO t (k, v) VALUES (?, ?)", [.text("b\(n)"), .int(Int64(n))])
                            return n
                        }
                    }
                    outcomes.set(n, result)
                    done.continuation.yield()
                }
            }
        }
        var finished = 0
        for await _ in done.stream {
            finished += 1
            if finished == 3 { break }
        }
        let waited = ContinuousClock.now - started
        letGo.signal()
        for n in 0..<3 { #expect(throws: (any Error).self) { try outcomes.all[n]?.get() } }
        #expect(waited < .seconds(25), "one busy timeout for the batch, not one per write: \(waited)")
        #expect(db.groupCommit.statistics.largestBatch >= 3)
    }

    @Test func concurrentWritesShareCommitsAndAllLand() async throws {
        let db = try await database()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 0..<300 {
                group.addTask {
                    _ = try await db.write { sql in try sql.run("INSERT INTO t (k, v) VALUES (?, ?)", [.text("c\(n)"), .int(Int64(n))]) }
                    // Answered means committed: a reader (another connection) sees the row at once.
                    #expect(try await count(db, "c\(n)") == 1)
                }
            }
            try await group.waitForAll()
        }
        let total = try await db.read(.primary) { sql in try sql.rows("SELECT COUNT(*) AS n, SUM(v) AS s FROM t", []) }.first
        #expect(try total?.int("n") == 300)
        #expect(try total?.int("s") == Int64((0..<300).reduce(0, +)))
        let stats = db.groupCommit.statistics
        #expect(stats.writes == 301 && stats.batches < stats.writes, "writes queued behind a commit shared the next: \(stats)")
    }
}
