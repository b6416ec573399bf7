import GRDB
import Synchronization

/// Group commit for the embedded database's writes: the write transactions that arrive while the single writer
/// is busy are run, when it is free, as **one** SQLite transaction — so one commit (one WAL `fsync` under
/// `synchronous = FULL`) makes all of them durable — and each keeps its own all-or-nothing outcome.
///
/// - Each write runs inside its own `SAVEPOINT`: one that throws is rolled back to it (its statements undone)
///   and gets its error; the others are not touched.
/// - No caller is answered before the batch's `COMMIT` has returned: a write that succeeded is durable when
///   its caller learns so, and a failed one's error is delivered after the commit too (so a caller that lost a
///   unique-key race to another write of the same batch reads the winner's row, committed, right away).
/// - If SQLite rolls back the whole transaction under one write (disk full), nothing of the batch is durable,
///   and each of its writes is run again alone, so each gets its own outcome. If BEGIN or COMMIT fails, every
///   write of the batch gets the error.
/// - A write that is queued runs even if its caller's task is cancelled meanwhile (GRDB's own `write` skipped
///   or interrupted it): a saga step that was sent is finished, and its caller is answered all the same.
/// - A lone write is a plain `BEGIN IMMEDIATE … COMMIT`: an idle server adds no latency and no savepoint. No
///   timer: a batch is whatever queued while the previous one committed, at most `maxBatch` writes.
///
/// Writes within a batch see the earlier ones' changes — as if they had run one after the other, which is
/// the order they are committed in. A write's body must not start another write (the stores' synchronous
/// `SQLStatements` cannot).
final class SQLiteGroupCommit: Sendable {
    /// One queued write: its body (which keeps its own result) and how to answer its caller.
    private final class Job: @unchecked Sendable {
        // Safe: `run` runs on the writer's queue and `finish` after it, in order; the queue's Mutex orders
        // enqueueing before both.
        let run: (Database) throws -> Void
        let finish: ((any Error)?) -> Void
        init(run: @escaping (Database) throws -> Void, finish: @escaping ((any Error)?) -> Void) {
            self.run = run
            self.finish = finish
        }
    }

    private struct State {
        var queue: [Job] = []
        var draining = false
        var batches = 0
        var writes = 0
        var largestBatch = 0
    }

    private struct TransactionLost: Error {}

    private let writer: any DatabaseWriter
    private let state = Mutex(State())
    let maxBatch: Int

    init(writer: any DatabaseWriter, maxBatch: Int = 64) {
        self.writer = writer
        self.maxBatch = maxBatch
    }

    /// Committed transactions, writes committed or failed through them, and the largest batch (for tests and
    /// the benchmark's explanation).
    var statistics: (batches: Int, writes: Int, largestBatch: Int) {
        state.withLock { ($0.batches, $0.writes, $0.largestBatch) }
    }

    /// Whether a drain is running or queued on the writer.
    var isDraining: Bool { state.withLock { $0.draining } }

    /// Writes queued and not yet taken into a batch.
    var pending: Int { state.withLock { $0.queue.count } }

    /// Runs `body` in the next batch; returns its result once the batch is committed.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try Task.checkCancellation()
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            nonisolated(unsafe) var result: T?
            let job = Job(
                run: { db in result = try body(db) },
                finish: { error in
                    if let error {
                        continuation.resume(throwing: error)
                    } else {
                        continuation.resume(returning: result!)
                    }
                })
            let startDrain = state.withLock { s -> Bool in
                s.queue.append(job)
                guard !s.draining else { return false }
                s.draining = true
                return true
            }
            if startDrain {
                writer.asyncWriteWithoutTransaction { [self] db in drain(db) }
            }
        }
    }

    /// On the writer's queue: batches until nothing is queued — or, after `batchesPerTurn` batches, gives the
    /// writer's queue back (so `close()` and other work queued on it are not held off by a steady stream of
    /// writes) and queues itself again.
    private func drain(_ db: Database) {
        for _ in 0..<Self.batchesPerTurn {
            let batch = state.withLock { s -> [Job] in
                guard !s.queue.isEmpty else {
                    s.draining = false
                    return []
                }
                let count = min(s.queue.count, maxBatch)
                let batch = Array(s.queue.prefix(count))
                s.queue.removeFirst(count)
                s.batches += 1
                s.writes += count
                s.largestBatch = max(s.largestBatch, count)
                return batch
            }
            guard !batch.isEmpty else { return }
            if batch.count == 1 {
                runAlone(batch[0], db)
            } else {
                runTogether(batch, db)
            }
        }
        writer.asyncWriteWithoutTransaction { [self] db in drain(db) }  // still `draining`: nobody else starts one
    }

    static let batchesPerTurn = 16

    private func runAlone(_ job: Job, _ db: Database) {
        do {
            try db.inTransaction(.immediate) {
                try job.run(db)
                return .commit
            }
            job.finish(nil)
        } catch {
            job.finish(error)
        }
    }

    private func runTogether(_ jobs: [Job], _ db: Database) {
        var failures = [(any Error)?](repeating: nil, count: jobs.count)
        var began = false
        var committing = false
        do {
            try db.inTransaction(.immediate) {
                began = true
                for (index, job) in jobs.enumerated() {
                    do {
                        try db.inSavepoint {
                            try job.run(db)
                            return .commit
                        }
                    } catch {
                        failures[index] = error
                        if !db.isInsideTransaction { throw TransactionLost() }
                    }
                }
                committing = true
                return .commit
            }
        } catch {
            if began, !committing {
                // SQLite rolled the whole transaction back under one write (disk full — maybe because of the
                // batch's size): nothing of the batch is committed. Each write runs again alone and gets its own
                // outcome; bodies only touch the database, so a rolled-back run left nothing behind.
                for job in jobs { runAlone(job, db) }
            } else {
                // BEGIN failed (another process held the file past the busy timeout: running each alone could
                // wait that long again, per write) or COMMIT failed (an I/O error; whether such a commit reached
                // the disk is not certain): every write gets the error, as a lone write's caller would.
                for job in jobs { job.finish(error) }
            }
            return
        }
        for (index, job) in jobs.enumerated() {
            job.finish(failures[index])
        }
    }
}
