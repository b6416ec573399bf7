internal import CRdKafka
import Dispatch
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Where a message landed.
public struct DeliveryReport: Sendable, Equatable {
    public var partition: Int32
    public var offset: Int64
}

/// Collects the delivery reports of a batch; resumes its waiter when the last one arrives.
final class BatchDelivery: Sendable {
    private let state: Mutex<(results: [Result<DeliveryReport, KafkaError>?], remaining: Int, waiter: CheckedContinuation<[Result<DeliveryReport, KafkaError>], Never>?)>

    init(count: Int) {
        state = Mutex((Array(repeating: nil, count: count), count, nil))
    }

    func wait() async -> [Result<DeliveryReport, KafkaError>] {
        await withCheckedContinuation { continuation in
            let done: [Result<DeliveryReport, KafkaError>]? = state.withLock { s in
                if s.remaining == 0 { return s.results.map { $0! } }
                s.waiter = continuation
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
    }

    func record(_ index: Int, _ result: Result<DeliveryReport, KafkaError>) {
        let resume: (CheckedContinuation<[Result<DeliveryReport, KafkaError>], Never>, [Result<DeliveryReport, KafkaError>])? = state.withLock { s in
            guard s.results[index] == nil else { return nil }
            s.results[index] = result
            s.remaining -= 1
            guard s.remaining == 0, let waiter = s.waiter else { return nil }
            s.waiter = nil
            return (waiter, s.results.map { $0! })
        }
        if let (waiter, results) = resume { waiter.resume(returning: results) }
    }
}

/// Resumes whoever waits for each message when librdkafka reports its delivery.
final class DeliveryRouter: Sendable {
    enum Waiter {
        case single(CheckedContinuation<DeliveryReport, any Error>)
        case batch(BatchDelivery, Int)
    }

    private let waiting = Mutex<[UInt: Waiter]>([:])

    var count: Int { waiting.withLock { $0.count } }

    func register(_ id: UInt, _ waiter: Waiter) {
        waiting.withLock { $0[id] = waiter }
    }

    /// Fails every waiter (the handle is gone; no report will come).
    func failAll(_ error: KafkaError) {
        let all = waiting.withLock { w in defer { w.removeAll() }; return Array(w.values) }
        for waiter in all {
            switch waiter {
            case .single(let continuation): continuation.resume(throwing: error)
            case .batch(let batch, let index): batch.record(index, .failure(error))
            }
        }
    }

    func complete(_ id: UInt, _ result: Result<DeliveryReport, KafkaError>) {
        switch waiting.withLock({ $0.removeValue(forKey: id) }) {
        case .single(let continuation): continuation.resume(with: result.mapError { $0 as any Error })
        case .batch(let batch, let index): batch.record(index, result)
        case nil: break
        }
    }
}

/// The delivery-report callback (a C function: it finds the router through the handle's opaque context).
private let deliveryCallback: @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void = {
    _, message, opaque in
    guard let message, let opaque else { return }
    let router = Unmanaged<KafkaClientContext>.fromOpaque(opaque).takeUnretainedValue().router
    let id = UInt(bitPattern: message.pointee._private)
    if message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR {
        router.complete(id, .success(DeliveryReport(partition: message.pointee.partition, offset: message.pointee.offset)))
    } else {
        router.complete(id, .failure(KafkaError(message.pointee.err)))
    }
}

/// An idempotent producer. `send` returns when the broker acknowledged the message (the delivery report).
///
/// Delivery reports, statistics and errors are served by `run()`, the producer's poll loop: a
/// swift-service-lifecycle `Service` (put it in the `ServiceGroup` *before* the services that send, so it
/// stops after them), or run it in a task of your own. Nothing is delivered to `send` callers while it does
/// not run. `run()` returns on cancellation, graceful shutdown or `close()`, after flushing what was queued;
/// it may be run again. `close()` stops it, flushes and frees the handle; flush and destroy run on a
/// dedicated queue, never on the cooperative pool. librdkafka's logs go to `logger`, its statistics
/// (every `statisticsIntervalMilliseconds`) to swift-metrics and `statistics`.
public final class KafkaProducer: Service, @unchecked Sendable {
    // The raw handle is only used through librdkafka's thread-safe API; `topics` is guarded by a lock.
    private let handle: RawHandle
    private let context: KafkaClientContext
    private let opaque: RawPointer
    private var router: DeliveryRouter { context.router }
    private let topics = Mutex<[String: RawHandle]>([:])
    private let nextID = Atomic<UInt>(1)
    private let closed = Atomic<Bool>(false)
    private let destroyed = Atomic<Bool>(false)
    private let running = Mutex<(active: Bool, stopped: [CheckedContinuation<Void, Never>])>((false, []))

    public init(configuration: KafkaProducerConfiguration, logger: Logger = Logger(label: "kafka.producer")) throws {
        let conf = try makeConf(configuration.properties)
        context = KafkaClientContext(clientID: configuration.clientID, logger: logger)
        rd_kafka_conf_set_dr_msg_cb(conf, deliveryCallback)
        (handle, opaque) = try context.makeClient(RD_KAFKA_PRODUCER, conf)
    }

    /// The latest statistics librdkafka reported (zeros until the first report).
    public var statistics: KafkaStatistics { context.statistics }

    /// The poll loop: serves delivery reports, logs and statistics until cancelled, shut down gracefully or
    /// closed; then flushes (at most 5 s) so queued messages get their reports.
    public func run() async throws {
        let alreadyRunning = running.withLock { r in defer { r.active = true }; return r.active }
        guard !alreadyRunning else { throw KafkaError(message: "the producer's poll loop is already running") }
        defer {
            let waiters = running.withLock { r in defer { r = (false, []) }; return r.stopped }
            waiters.forEach { $0.resume() }
        }
        guard !closed.load(ordering: .relaxed) else { return }
        let handle = self.handle
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled, !self.closed.load(ordering: .relaxed) {
                rd_kafka_poll(handle.pointer, 0)  // non-blocking
                try? await Task.sleep(for: self.router.count > 0 ? .milliseconds(1) : .milliseconds(20))
            }
        }
        if !destroyed.load(ordering: .relaxed) { try? await flush(timeout: .seconds(5)) }
    }

    /// For code without a ServiceGroup (tools, tests): runs the poll loop while `body` runs, then closes.
    public func whileRunning<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.run() }
            let result: Result<T, any Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            await close()
            try await group.waitForAll()
            return try result.get()
        }
    }

    /// Sends one message and waits for its delivery report.
    public func send(topic: String, key: String?, value: String) async throws -> DeliveryReport {
        guard !closed.load(ordering: .relaxed) else { throw KafkaError(message: "producer is closed") }
        let rkt = try topicHandle(topic)
        let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        return try await withCheckedThrowingContinuation { continuation in
            router.register(id, .single(continuation))
            enqueue(rkt, id: id, key: key, value: value)
        }
    }

    /// One message of a batch.
    public struct Message: Sendable {
        public var topic: String
        public var key: String?
        public var value: String
        public init(topic: String, key: String?, value: String) {
            self.topic = topic
            self.key = key
            self.value = value
        }
    }

    /// Enqueues the messages in order (so per-partition order is kept) and waits for every delivery report.
    public func sendBatch(_ messages: [Message]) async -> [Result<DeliveryReport, KafkaError>] {
        guard !messages.isEmpty else { return [] }
        guard !closed.load(ordering: .relaxed) else { return messages.map { _ in .failure(KafkaError(message: "producer is closed")) } }
        let batch = BatchDelivery(count: messages.count)
        for (index, message) in messages.enumerated() {
            do {
                let rkt = try topicHandle(message.topic)
                let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
                router.register(id, .batch(batch, index))
                enqueue(rkt, id: id, key: message.key, value: message.value)
            } catch let error as KafkaError {
                batch.record(index, .failure(error))
            } catch {
                batch.record(index, .failure(KafkaError(message: "\(error)")))
            }
        }
        return await batch.wait()
    }

    private func enqueue(_ rkt: OpaquePointer, id: UInt, key: String?, value: String) {
        var value = Array(value.utf8)
        var key = key.map { Array($0.utf8) }
        let rc = value.withUnsafeMutableBytes { v in
            if key != nil {
                return key!.withUnsafeMutableBytes { k in
                    rd_kafka_produce(rkt, -1, 2 /* RD_KAFKA_MSG_F_COPY */, v.baseAddress, v.count, k.baseAddress, k.count,
                                     UnsafeMutableRawPointer(bitPattern: id))
                }
            }
            return rd_kafka_produce(rkt, -1, 2, v.baseAddress, v.count, nil, 0, UnsafeMutableRawPointer(bitPattern: id))
        }
        if rc != 0 {
            router.complete(id, .failure(KafkaError(rd_kafka_last_error())))
        }
    }

    private func topicHandle(_ name: String) throws -> OpaquePointer {
        try topics.withLock { topics in
            if let t = topics[name] { return t.pointer }
            guard let t = rd_kafka_topic_new(handle.pointer, name, nil) else { throw KafkaError(rd_kafka_last_error()) }
            topics[name] = RawHandle(pointer: t)
            return t
        }
    }

    /// Waits (off the cooperative pool) until every queued message is delivered or `timeout` passes.
    /// Serves delivery reports itself, so it also works when `run()` is not running.
    public func flush(timeout: Duration = .seconds(10)) async throws {
        guard !destroyed.load(ordering: .relaxed) else { throw KafkaError(message: "producer is closed") }
        let ms = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        let handle = self.handle
        let err = await offPool { rd_kafka_flush(handle.pointer, ms).rawValue }
        if err != 0 { throw KafkaError(rd_kafka_resp_err_t(rawValue: err)) }
    }

    /// Refuses new messages, waits for `run()` to stop, flushes (at most `flushTimeout`) and frees the handle.
    /// Messages still undelivered then fail with "producer is closed". Idempotent.
    public func close(flushTimeout: Duration = .seconds(5)) async {
        guard !closed.exchange(true, ordering: .relaxed) else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let active = running.withLock { r in
                if r.active { r.stopped.append(continuation) }
                return r.active
            }
            if !active { continuation.resume() }
        }
        try? await flush(timeout: flushTimeout)
        destroyed.store(true, ordering: .relaxed)
        let handle = self.handle
        let opaque = self.opaque
        let topics = self.topics.withLock { t in defer { t.removeAll() }; return Array(t.values) }
        await offPool {
            topics.forEach { rd_kafka_topic_destroy($0.pointer) }
            rd_kafka_destroy(handle.pointer)
            KafkaClientContext.release(opaque.pointer)
        }
        router.failAll(KafkaError(message: "producer is closed"))
    }
}
