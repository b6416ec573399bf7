import Foundation
import GRDB
import StorefrontCore
import StorefrontSQL
@testable import StorefrontSQLite
import Testing

func outcome<T: Sendable>(_ body: () async throws -> T) async -> Result<T, any Error> {
    do { return .success(try await body()) } catch { return .failure(error) }
}

@Suite("SQLite group commit")
struct SQLiteGroupCommitTests {
    struct Refused: Error {}

    func database() async throws -> SQLiteDatabase {
        let db = try temporarySQLite()
        _ = try await db.write { sql in try sql.run("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)", []) }
        return db
    }

    /// Holds the writer until `count` writes are queued behind it, so they form one batch.
    func holdWriter(_ db: SQLiteDatabase, until count: Int) async throws {
        let release = DispatchSemaphore(value: 0)
        db.writer.asyncWriteWithoutTransaction { _ in release.wait() }
        while db.groupCommit.pending < count { try await Task.sleep(for: .milliseconds(5)) }
        release.signal()
    }

    func count(_ db: SQLiteDatabase, _ key: String) async throws -> Int {
        try await db.read(.primary) { sql in try sql.rows("SELECT COUNT(*) AS n FROM t WHERE k = ?", [.text(key)]) }
            .first.map { Int(try $0.int("n")) } ?? -1
    }

    @Test func theWriterCommitsWithSynchronousFull() async throws {
        let db = try temporarySQLite()
        #expect(try db.writerSynchronous() == 2, "FULL: a commit is on disk before the write returns")
    }

    @Test func aFailingWriteInABatchIsUndoneAndItsNeighboursCommit() async throws {
        let db = try await database()
        async let hold: Void = holdWriter(db, until: 5)
        let outcomes = await withTaskGroup(of: (Int, Result<Int, any Error>).self) { group in
            for n in 0..<5 {
                group.addTask {
                    let result = await outcome {
                        try await db.write { sql -> Int in
                            _ = try sql.run("INSERT INTO t (k, v) VALUES (?, ?)", [.text("a\(n)"), .int(Int64(n))])
                            if n == 1 { _ = try sql.run("INSERT INTO t (k, v) VALUES ('a1', 9)", []) }  // duplicate key
                            if n == 3 { throw Refused() }
                            return n
                        }
                    }
                    return (n, result)
                }
            }
            var all: [Int: Result<Int, any Error>] = [:]
            for await (n, result) in group { all[n] = result }
            return all
        }
        try await hold
        #expect(db.groupCommit.statistics.largestBatch >= 5, "the five writes were one transaction: \(db.groupCommit.statistics)")
        for n in [0, 2, 4] {
            #expect((try? outcomes[n]?.get()) == n)
            #expect(try await count(db, "a\(n)") == 1, "write \(n) committed")
        }
        #expect(throws: SQLUniqueViolation.self) { try outcomes[1]?.get() }
        #expect(throws: Refused.self) { try outcomes[3]?.get() }
        #expect(try await count(db, "a1") == 0, "the failed write's first insert was rolled back with it")
        #expect(try await count(db, "a3") == 0)
    }

    /// The loser of a unique-key race inside one batch learns of it only after the batch committed, so the
    /// winner's row is there to read — what a replayed purchase (same Idempotency-Key) relies on.
    @Test func callersAreAnsweredOnlyAfterTheCommit() async throws {
        let db = try await database()
        async let hold: Void = holdWriter(db, until: 2)
        async let first = outcome { try await db.write { sql in try sql.run("INSERT INTO t (k, v) VALUES ('key', 1)", []).rows } }
        async let second = outcome { try await db.write { sql in try sql.run("INSERT INTO t (k, v) VALUES ('key', 2)", []).rows } }
        let outcomes = await [first, second]
        try await hold
        let winners = outcomes.filter { (try? $0.get()) == 1 }.count
        #expect(winners == 1, "one insert wins")
        for outcome in outcomes {
            if case .failure(let error) = outcome {
                #expect(error is SQLUniqueViolation)
                #expect(try await count(db, "key") == 1, "the winner is committed when the loser hears")
            } else {
                #expect(try await count(db, "key") == 1, "committed when the winner hears")
            }
        }
        #expect(db.groupCommit.statistics.largestBatch >= 2)
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
