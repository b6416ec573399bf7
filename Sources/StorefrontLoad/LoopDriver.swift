import DequeModule
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// What every event loop of a run shares (read-only, or synchronised itself).
struct DriverPlan: Sendable {
    let target: LoadTarget
    let tls: NIOSSLContext?
    let model: LoadModel
    let request: @Sendable (Int) -> LoadRequest
    let answered: @Sendable (LoadRequest, HTTPReply?) -> Void
    /// No answer within this: the connection is closed and the request counts as `timeout`.
    let timeout: Duration
    /// Closed loop: the next request's index, across loops.
    let tickets: Tickets
    let backlog: Backlog
    /// How many connections (open loop) or clients (closed loop) in all: request i of the open loop goes to
    /// the loop that owns slot i mod `slots` (slot s is loop s mod loops's), so each loop's share of the rate
    /// is its share of the connections.
    let slots: Int
}

/// When a run starts and ends, and where it records.
struct DriverRun: Sendable {
    let start: ContinuousClock.Instant
    let end: ContinuousClock.Instant
    let recorder: LoadRecorder
}

/// Requests scheduled but not yet sent (open loop), across loops: now and at most.
final class Backlog: Sendable {
    private let current = Atomic<Int>(0)
    private let most = Atomic<Int>(0)

    func added() {
        let now = current.add(1, ordering: .relaxed).newValue
        var seen = most.load(ordering: .relaxed)
        while now > seen {
            let (exchanged, original) = most.compareExchange(expected: seen, desired: now, ordering: .relaxed)
            if exchanged { break }
            seen = original
        }
    }

    func taken() { current.subtract(1, ordering: .relaxed) }
    var count: Int { current.load(ordering: .relaxed) }
    var max: Int { most.load(ordering: .relaxed) }
}

/// One event loop's part of a run: its connections ("slots"), its share of the open loop's schedule and the
/// queue of its requests waiting for a free connection. Every request is written, answered and recorded on
/// this loop — no task, continuation or thread hop per request (the async design spent over half of the
/// generator's CPU switching threads: ~120 µs per request at 7,000/s, where wrk spends ~17).
/// All mutable state is confined to `loop` (hence `@unchecked Sendable`): every entry point runs on it.
final class LoopDriver: @unchecked Sendable {
    /// A connection and the request on it (at most one: HTTP/1.1 keep-alive, no pipelining).
    final class Slot: @unchecked Sendable {
        var channel: (any Channel)?
        var handler: ReplyHandler?
        var job: Job?
        /// The connection existed before the request in flight was written (a failure then may be the server
        /// closing an idle connection: the request is sent once more on a new one).
        var reused = false
        var deadline: ContinuousClock.Instant?
        var stopped = false
        /// Counts the requests put on this slot (and resends): a connection that completes for an attempt the
        /// slot has moved past (its request timed out meanwhile) is closed, not attached.
        var attempt = 0
    }

    struct Job {
        var index: Int
        var intended: ContinuousClock.Instant
        var request: LoadRequest
        var resent = false
        /// Where its latency starts: when it was due, or when it was first sent if that was earlier (see `window`).
        var since: ContinuousClock.Instant

        init(index: Int, intended: ContinuousClock.Instant, request: LoadRequest) {
            self.index = index
            self.intended = intended
            self.request = request
            since = intended
        }
    }

    let loop: any EventLoop
    let plan: DriverPlan
    /// The global numbers of this loop's slots: the open loop's request i is this loop's when i mod
    /// `plan.slots` is one of them.
    private let owned: [Int]
    private var slots: [Slot]
    private var idle: [Slot] = []
    private var queue: Deque<Job> = []
    /// The open loop's next request of this loop: `cycle * plan.slots + owned[position]`.
    private var cycle = 0
    private var position = 0
    private var scheduled = false
    private var timing = DriverRun(start: .now, end: .now, recorder: LoadRecorder(start: .now, warmup: .zero))
    private let done: EventLoopPromise<Void>
    private var finished = false
    private var sweep: RepeatedTask?

    init(loop: any EventLoop, plan: DriverPlan, owning owned: [Int]) {
        self.loop = loop
        self.plan = plan
        self.owned = owned
        slots = owned.map { _ in Slot() }
        done = loop.makePromise()
    }

    /// Connects every slot (a failure leaves it to connect for its first request); on `loop`.
    func connectAll() -> EventLoopFuture<Void> {
        loop.flatSubmit {
            let futures = self.slots.map { slot in
                self.connect().map { channel, handler in self.attach(channel, handler, to: slot) }.recover { _ in () }
            }
            return EventLoopFuture.andAllComplete(futures, on: self.loop)
        }
    }

    /// Starts at `run.start`; the future completes when this loop's part is over (open loop: every request
    /// scheduled before the end answered or failed; closed loop: every slot stopped after the end).
    func run(_ run: DriverRun) -> EventLoopFuture<Void> {
        loop.execute {
            self.timing = run
            self.sweep = self.loop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { _ in self.expire() }
            let wait = (run.start - ContinuousClock.now).timeAmount
            self.loop.scheduleTask(in: wait) {
                switch self.plan.model {
                case .open:
                    self.idle = self.slots
                    self.schedule()
                case .closed:
                    for slot in self.slots { self.next(on: slot) }
                    self.checkDone()
                }
            }
        }
        return done.futureResult
    }

    /// The caller went away: nothing more is scheduled or started; what is in flight finishes.
    func stop() {
        loop.execute {
            self.scheduled = true
            while self.queue.popFirst() != nil { self.plan.backlog.taken() }
            self.timing = DriverRun(start: self.timing.start, end: min(self.timing.end, .now), recorder: self.timing.recorder)
            self.checkDone()
        }
    }

    // MARK: open loop

    /// How early a request may be sent: each wake-up sends every request due within it, so the loop wakes about
    /// once per window instead of once per request (at 7,000/s over two loops, 31 % of a core instead of 52 % — CPU
    /// the generator shares with the server it measures). A request sent early is measured from when it was
    /// sent, so no latency is hidden; the arrivals are only burstier within the window (which can only add queueing).
    static let window: Duration = .microseconds(500)

    /// Sends every request of this loop whose intended time has come — on a free connection, else it waits
    /// in the queue (counted in the backlog) — and sets a timer for the next one.
    private func schedule() {
        guard !scheduled else { return }
        let rate: Double = if case .open(let r) = plan.model { r } else { 1 }
        let now = ContinuousClock.now
        while true {
            let index = cycle * plan.slots + owned[position]
            let intended = timing.start + .nanoseconds(Int64((Double(index) * 1e9 / rate).rounded()))
            if intended >= timing.end {
                scheduled = true
                break
            }
            if intended > now + Self.window {
                // Woken when it is due, this wake-up also sends the requests due within the window after it.
                // (Read the clock again: the sends above took time, and the timer must not fire late by it.)
                loop.scheduleTask(in: max(intended - ContinuousClock.now, .zero).timeAmount) { self.schedule() }
                break
            }
            position += 1
            if position == owned.count { (cycle, position) = (cycle + 1, 0) }
            let job = Job(index: index, intended: intended, request: plan.request(index))
            if let slot = idle.popLast() {
                send(job, on: slot)
            } else {
                queue.append(job)
                plan.backlog.added()
            }
        }
        checkDone()
    }

    // MARK: both

    /// The slot's next request, or its end (closed loop: one after another until the end; open loop: the
    /// oldest queued request, else it waits).
    private func next(on slot: Slot) {
        switch plan.model {
        case .open:
            if let job = queue.popFirst() {
                plan.backlog.taken()
                send(job, on: slot)
            } else {
                idle.append(slot)
            }
        case .closed:
            let now = ContinuousClock.now
            guard now < timing.end else {
                slot.stopped = true
                drop(slot)
                return
            }
            let index = plan.tickets.next()
            send(Job(index: index, intended: now, request: plan.request(index)), on: slot)
        }
    }

    private func send(_ job: Job, on slot: Slot) {
        var timed = job
        // Sent up to `window` early, its latency counts from when it was sent; sent late, from when it was due.
        if !job.resent { timed.since = min(job.intended, .now) }
        let job = timed
        slot.job = job
        slot.attempt += 1
        // The request's time starts now, connecting included (a connect has its own 5 s besides).
        slot.deadline = ContinuousClock.now + plan.timeout
        if let channel = slot.channel, channel.isActive {
            slot.reused = true
            write(job, on: slot)
            return
        }
        drop(slot)
        slot.reused = false
        let attempt = slot.attempt
        connect().whenComplete { result in
            guard slot.attempt == attempt, slot.job != nil else {
                // The slot moved on (this request timed out while connecting): not this connection's to serve.
                if case .success(let (channel, _)) = result { channel.close(promise: nil) }
                return
            }
            switch result {
            case .success(let (channel, handler)):
                self.attach(channel, handler, to: slot)
                self.write(job, on: slot)
            case .failure:
                self.finish(slot, reply: nil, failure: "connect_error")
            }
        }
    }

    private func attach(_ channel: any Channel, _ handler: ReplyHandler, to slot: Slot) {
        slot.channel = channel
        slot.handler = handler
        handler.slot = slot
    }

    /// A new connection and its handler, not yet anyone's (`attach` gives it to a slot).
    private func connect() -> EventLoopFuture<(any Channel, ReplyHandler)> {
        let handler = ReplyHandler(driver: self)
        return plan.target.connect(on: loop, tls: plan.tls, timeout: .seconds(5)) { channel in
            try channel.pipeline.syncOperations.addHandler(handler)
        }
            .map { channel in (channel, handler) }
    }

    private func write(_ job: Job, on slot: Slot) {
        guard let channel = slot.channel else { return finish(slot, reply: nil, failure: "io_error") }
        var headers = HTTPHeaders([("Host", "\(plan.target.host):\(plan.target.port)"), ("User-Agent", "storefront-load")])
        var body: ByteBuffer?
        let method: HTTPMethod
        if let purchase = job.request.purchase {
            method = .POST
            let json = #"{"productId":\#(purchase.product),"qty":\#(purchase.qty)}"#
            body = channel.allocator.buffer(string: json)
            headers.add(name: "Idempotency-Key", value: purchase.key)
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: "\(json.utf8.count)")
        } else {
            method = .GET
        }
        channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: job.request.path, headers: headers)),
                      promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }

    // MARK: answers and failures (from the slot's handler, on `loop`)

    /// Forgets the slot's connection, then closes it: the close fires `channelInactive` at once, on this loop,
    /// and the handler must find itself detached by then (else it would report its own close as a failure).
    private func drop(_ slot: Slot) {
        let channel = slot.channel
        slot.channel = nil
        slot.handler = nil
        channel?.close(promise: nil)
    }

    func replied(_ reply: HTTPReply, by handler: ReplyHandler, on slot: Slot) {
        guard slot.handler === handler, slot.job != nil else { return }
        if !reply.keepAlive {
            // `Connection: close` (nginx says it every keepalive_requests): the next request opens a new one.
            drop(slot)
        }
        finish(slot, reply: reply, failure: "")
    }

    func failed(by handler: ReplyHandler, on slot: Slot) {
        guard slot.handler === handler else { return }
        drop(slot)
        guard var job = slot.job else { return }
        if slot.reused, !job.resent {
            // Closed by the server while idle (or after its keepalive_requests): once more on a new connection;
            // the latency still counts from when it was first due (or sent, if earlier: `since`).
            job.resent = true
            return send(job, on: slot)
        }
        finish(slot, reply: nil, failure: slot.reused ? "io_error" : "connect_error")
    }

    /// Requests past their deadline: the connection is closed (a frozen server must not hang the run).
    private func expire() {
        let now = ContinuousClock.now
        for slot in slots where slot.job != nil {
            guard let deadline = slot.deadline, deadline < now else { continue }
            drop(slot)
            finish(slot, reply: nil, failure: "timeout")
        }
    }

    private func finish(_ slot: Slot, reply: HTTPReply?, failure: String) {
        guard let job = slot.job else { return }
        slot.job = nil
        slot.deadline = nil
        let done = ContinuousClock.now
        let status = reply.map { "\($0.status)" + ($0.errorCode.map { " \($0)" } ?? "") } ?? failure
        timing.recorder.record(class: LoadRunner.answerClass(job.request, reply), status: status, latency: done - job.since,
                             intended: job.intended, done: done)
        if job.request.purchase != nil { plan.answered(job.request, reply) }
        if reply == nil, !slot.reused, case .closed = plan.model {
            // Refused: no tight loop against a server that is not there.
            loop.scheduleTask(in: .milliseconds(100)) {
                self.next(on: slot)
                self.checkDone()
            }
        } else {
            next(on: slot)
        }
        checkDone()
    }

    private func checkDone() {
        guard !finished else { return }
        let over: Bool
        switch plan.model {
        case .open: over = scheduled && queue.isEmpty && slots.allSatisfy { $0.job == nil }
        // (`stop` ends a closed loop as the end of the run does: each slot stops after its request in flight)
        case .closed: over = slots.allSatisfy(\.stopped)
        }
        guard over else { return }
        finished = true
        sweep?.cancel()
        for slot in slots {
            drop(slot)
        }
        done.succeed(())
    }
}

/// Collects one response at a time and hands it (or the connection's failure) to its driver, on the loop.
final class ReplyHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    private let driver: LoopDriver
    /// The slot it serves, once attached.
    var slot: LoopDriver.Slot?
    private var parts = ReplyParts()

    init(driver: LoopDriver) {
        self.driver = driver
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let reply = parts.add(unwrapInboundIn(data)), let slot else { return }
        driver.replied(reply, by: self, on: slot)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let slot { driver.failed(by: self, on: slot) }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let slot { driver.failed(by: self, on: slot) }
        context.fireChannelInactive()
    }
}

extension Duration {
    /// For SwiftNIO's timers and timeouts (a negative duration is none).
    var timeAmount: TimeAmount {
        let (seconds, attoseconds) = components
        return .nanoseconds(max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
    }
}
