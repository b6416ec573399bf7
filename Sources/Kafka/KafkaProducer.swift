import CRdKafka
import Dispatch
import Foundation
import Synchronization

/// Where a message landed.
public struct DeliveryReport: Sendable, Equatable {
    public var partition: Int32
    public var offset: Int64
}

/// Resumes the task waiting for each message when librdkafka reports its delivery.
final class DeliveryRouter: Sendable {
    private let waiting = Mutex<[UInt: CheckedContinuation<DeliveryReport, any Error>]>([:])

    var count: Int { waiting.withLock { $0.count } }

    func register(_ id: UInt, _ continuation: CheckedContinuation<DeliveryReport, any Error>) {
        waiting.withLock { $0[id] = continuation }
    }

    func complete(_ id: UInt, _ result: Result<DeliveryReport, any Error>) {
        let continuation = waiting.withLock { $0.removeValue(forKey: id) }
        continuation?.resume(with: result)
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
            router.register(id, continuation)
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

    /// Flushes, stops polling and frees the handle.
    public func close() async {
        try? await flush()
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
