import DequeModule
import Foundation
import Histogram
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// One request a scenario wants sent.
struct LoadRequest: Sendable {
    enum Kind: String, Sendable, CaseIterable {
        case viewHit = "view-hit"
        case viewMiss = "view-miss"
        case purchase
    }

    var kind: Kind
    var path: String
    /// POST /purchase: the product, quantity and Idempotency-Key.
    var purchase: (product: Int64, qty: Int64, key: String)?
}

/// 0, 1, 2, … to whoever asks, from any task.
final class Tickets: Sendable {
    private let counter = Atomic<Int>(0)
    func next() -> Int { counter.add(1, ordering: .relaxed).oldValue }
}

/// A queue of work shared by consumers that each take the next item (setup, checks).
final class WorkQueue<T: Sendable>: Sendable {
    private let items: Mutex<Deque<T>>
    init(_ items: [T]) { self.items = Mutex(Deque(items)) }
    func next() -> T? { items.withLock { $0.popFirst() } }
}

/// What the runner measured: latency histograms (µs) per class of answer, answers by status, a timeline.
final class LoadRecorder: Sendable {
    struct Summary: Sendable {
        var count: UInt64
        var p50, p90, p99, p999, max: Double  // ms
        var mean: Double
    }

    private struct State {
        var histograms: [String: Histogram<UInt64>] = [:]
        var statuses: [String: Int] = [:]
        /// Completions per second since the start, by class.
        var timeline: [String: [Int]] = [:]
        var lastMeasured: ContinuousClock.Instant?
        var maxBacklog = 0
    }

    private let state = Mutex(State())
    let start: ContinuousClock.Instant
    let measureFrom: ContinuousClock.Instant

    init(start: ContinuousClock.Instant, warmup: Duration) {
        self.start = start
        measureFrom = start + warmup
    }

    /// `latency` from the intended send time; `status` a number or a transport error's name.
    func record(class name: String, status: String, latency: Duration, intended: ContinuousClock.Instant, done: ContinuousClock.Instant) {
        let micros = UInt64(min(max(1, latency.components.seconds * 1_000_000 + latency.components.attoseconds / 1_000_000_000_000), 600_000_000))
        let second = Int((done - start).components.seconds)
        state.withLock { state in
            state.timeline[name, default: []].growTo(second + 1)
            state.timeline[name]![second] += 1
            guard intended >= measureFrom else { return }
            state.lastMeasured = max(state.lastMeasured ?? done, done)
            if state.histograms[name] == nil { state.histograms[name] = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three) }
            _ = state.histograms[name]!.record(micros)
            state.statuses["\(name) \(status)", default: 0] += 1
        }
    }

    var summaries: [String: Summary] {
        state.withLock { state in
            state.histograms.mapValues { h in
                Summary(count: h.totalCount, p50: Double(h.valueAtPercentile(50)) / 1000, p90: Double(h.valueAtPercentile(90)) / 1000,
                        p99: Double(h.valueAtPercentile(99)) / 1000, p999: Double(h.valueAtPercentile(99.9)) / 1000,
                        max: Double(h.max) / 1000, mean: h.mean / 1000)
            }
        }
    }

    var statuses: [String: Int] { state.withLock { $0.statuses } }
    /// The most requests that waited for a free connection at once (open loop).
    var maxBacklog: Int {
        get { state.withLock { $0.maxBacklog } }
    }
    func noteBacklog(_ value: Int) { state.withLock { $0.maxBacklog = value } }

    /// When the last measured request completed (the backlog drained).
    var lastMeasured: ContinuousClock.Instant? { state.withLock { $0.lastMeasured } }
    var timeline: [String: [Int]] { state.withLock { $0.timeline } }
    var completed: Int { state.withLock { $0.timeline.values.reduce(0) { $0 + $1.reduce(0, +) } } }
}

extension Array where Element == Int {
    fileprivate mutating func growTo(_ count: Int) {
        if self.count < count { append(contentsOf: repeatElement(0, count: count - self.count)) }
    }
}

/// How the load is offered.
public enum LoadModel: Sendable, Equatable {
    /// Constant arrival rate (requests/s), sent on schedule whether or not earlier ones returned.
    case open(rate: Double)
    /// `clients` each send a request as soon as their previous one returned.
    case closed(clients: Int)
}

/// Sends a scenario's requests to the target and records every answer.
struct LoadRunner: Sendable {
    let target: LoadTarget
    let model: LoadModel
    let connections: Int
    let duration: Duration
    let warmup: Duration
    let progress: (@Sendable (String) -> Void)?
    /// No answer within this: the connection is closed and the request counts as `timeout`.
    var timeout: Duration = .seconds(30)

    /// Runs `request(i)` for i = 0, 1, …; `answered` sees every purchase's answer (for the invariant checks).
    /// The connections are spread over the event loops, and each loop sends, reads and records its own
    /// requests (`LoopDriver`). Open loop: request i is meant to go at start + i / rate, on a free connection of
    /// the loop that owns connection i mod connections — or it waits for one, and its latency counts the wait, measured from the
    /// intended send time, so a slow server cannot hide its slowness by slowing the client down (coordinated
    /// omission).
    func run(_ request: @escaping @Sendable (Int) -> LoadRequest,
             answered: @escaping @Sendable (LoadRequest, HTTPReply?) -> Void) async throws -> LoadRecorder {
        let group = MultiThreadedEventLoopGroup.singleton
        let tls = try LoadConnection.tlsContext(for: target)
        let clients: Int
        switch model {
        case .open: clients = max(1, connections)
        case .closed(let n): clients = max(1, n)
        }
        let loops = Array(Array(group.makeIterator()).prefix(clients))
        let backlog = Backlog()
        let plan = DriverPlan(target: target, tls: tls, model: model, request: request, answered: answered, timeout: timeout,
                              tickets: Tickets(), backlog: backlog, slots: clients)
        // Slot s is loop s mod loops's; the open loop's request i goes with slot i mod clients.
        let drivers = loops.enumerated().map { k, loop in
            LoopDriver(loop: loop, plan: plan, owning: Array(stride(from: k, to: clients, by: loops.count)))
        }
        // Connected before the start: handshakes are not what is measured.
        for driver in drivers { try await driver.connectAll().get() }
        let start = ContinuousClock.now + .milliseconds(200)
        let recorder = LoadRecorder(start: start, warmup: warmup)
        let end = start + warmup + duration
        let finished = drivers.map { $0.run(DriverRun(start: start, end: end, recorder: recorder)) }

        let reporter = progress.map { progress in
            Task {
                var last = 0
                while ContinuousClock.now < end {
                    try await Task.sleep(for: .seconds(1))
                    let completed = recorder.completed
                    let errors = recorder.statuses.filter { $0.key.contains("error") || $0.key.contains(" 5") }.values.reduce(0, +)
                    let elapsed = ContinuousClock.now - start
                    progress(String(format: "  %5.1f s  %6d req/s  %7d done  %6d waiting to be sent  %5d errors", Double(elapsed.components.seconds),
                                    completed - last, completed, backlog.count, errors))
                    last = completed
                }
            }
        }
        try await withTaskCancellationHandler {
            for part in finished { try await part.get() }
        } onCancel: {
            for driver in drivers { driver.stop() }
        }
        reporter?.cancel()
        recorder.noteBacklog(backlog.max)
        return recorder
    }

    /// Views by kind; purchases split by answer: `purchase` (2xx), `rejected` (4xx: sold out, busy, declined),
    /// `failed` (5xx, no answer) — the seed gives purchases and rejections different latency targets.
    /// Errors and rate limiting never mix with answers: a refused connection answered in 0.1 ms must not make
    /// a view's p50 look good.
    static func answerClass(_ request: LoadRequest, _ reply: HTTPReply?) -> String {
        guard let reply, reply.status < 500 else { return request.kind == .purchase ? "failed" : "\(request.kind.rawValue) failed" }
        if reply.status == 429 { return request.kind == .purchase ? "rate-limited" : "\(request.kind.rawValue) rate-limited" }
        guard request.kind == .purchase else { return request.kind.rawValue }
        return reply.status < 300 ? "purchase" : "rejected"
    }
}
