internal import CRdKafka
import Dispatch
import Foundation
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

    func complete(_ id: UInt, _ result: Result<DeliveryReport, KafkaError>) {
        switch waiting.withLock({ $0.removeValue(forKey: id) }) {
        case .single(let continuation): continuation.resume(with: result.mapError { $0 as any Error })
        case .batch(let batch, let index): batch.record(index, result)
        case nil: break
        }
    }
}

/// The delivery-report callback (a C function: it finds the router through the conf's opaque pointer).
private let deliveryCallback: @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void = {
    _, message, opaque in
    guard let message, let opaque else { return }
    let router = Unmanaged<DeliveryRouter>.fromOpaque(opaque).takeUnretainedValue()
    let id = UInt(bitPattern: message.pointee._private)
    if message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR {
        router.complete(id, .success(DeliveryReport(partition: message.pointee.partition, offset: message.pointee.offset)))
    } else {
        router.complete(id, .failure(KafkaError(message.pointee.err)))
    }
}

/// An idempotent producer. `send` returns when the broker acknowledged the message (the delivery report).
/// Polling is non-blocking on a background task; flush and destroy run on a dispatch queue, never on the
/// cooperative pool.
public final class KafkaProducer: @unchecked Sendable {
    // The raw handles are only used through librdkafka's thread-safe API; `topics` is guarded by a lock.
    private let handle: RawHandle
    private let router = DeliveryRouter()
    private let topics = Mutex<[String: RawHandle]>([:])
    private let nextID = Atomic<UInt>(1)
    let closed = Atomic<Bool>(false)
    private var poller: Task<Void, Never>?

    public init(configuration: KafkaProducerConfiguration) throws {
        let conf = try makeConf(configuration.properties)
        rd_kafka_conf_set_dr_msg_cb(conf, deliveryCallback)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(router).toOpaque())
        let handle = RawHandle(pointer: try makeHandle(RD_KAFKA_PRODUCER, conf))
        self.handle = handle
        let router = self.router
        poller = Task.detached { [weak self] in
            while let self, !self.closed.load(ordering: .relaxed) {
                rd_kafka_poll(handle.pointer, 0)
                try? await Task.sleep(for: router.count > 0 ? .milliseconds(1) : .milliseconds(20))
            }
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
    public func flush(timeout: Duration = .seconds(10)) async throws {
        let ms = Int32(timeout.components.seconds * 1000)
        let handle = self.handle
        let err = await offPool { rd_kafka_flush(handle.pointer, ms).rawValue }
        if err != 0 { throw KafkaError(rd_kafka_resp_err_t(rawValue: err)) }
    }

    /// Flushes (at most `flushTimeout`), stops polling and frees the handle.
    public func close(flushTimeout: Duration = .seconds(5)) async {
        try? await flush(timeout: flushTimeout)
        closed.store(true, ordering: .relaxed)
        await poller?.value
        let handle = self.handle
        let topics = self.topics.withLock { t in defer { t.removeAll() }; return Array(t.values) }
        await offPool {
            topics.forEach { rd_kafka_topic_destroy($0.pointer) }
            rd_kafka_destroy(handle.pointer)
        }
    }
}
