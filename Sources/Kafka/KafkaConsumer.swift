internal import CRdKafka
import Logging
import Synchronization

/// One consumed message (copied out of librdkafka).
public struct KafkaMessage: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var key: String?
    public var value: String
}

/// A consumer-group member with manual offset commits. Read it as an `AsyncSequence` (`messages`), or with
/// `poll` / `next(timeout:)`; polling never blocks a thread and also serves rebalances (eager or cooperative
/// protocol, applied in the rebalance callback; `assignment` is current), logs (to `logger`) and
/// statistics (to swift-metrics and `statistics`). `close` leaves the group off the cooperative pool.
public final class KafkaConsumer: @unchecked Sendable {
    // librdkafka's consumer API is thread-safe; `closed` + `inFlight` guard against use after (and during) close:
    // every call registers in `inFlight` first, and close() frees the handle only once none is left.
    private let handle: RawHandle
    private let context: KafkaClientContext
    private let opaque: RawPointer
    private let closed = Atomic<Bool>(false)
    private let inFlight = Atomic<Int>(0)

    /// Runs `body` unless the consumer is closed (then returns nil); close() waits for it to finish.
    private func guarded<T>(_ body: () throws -> T) rethrows -> T? {
        inFlight.add(1, ordering: .sequentiallyConsistent)
        defer { inFlight.subtract(1, ordering: .sequentiallyConsistent) }
        guard !closed.load(ordering: .sequentiallyConsistent) else { return nil }
        return try body()
    }

    public init(configuration: KafkaConsumerConfiguration, logger: Logger = Logger(label: "kafka.consumer")) throws {
        let conf = try makeConf(configuration.properties)
        let context = KafkaClientContext(clientID: configuration.clientID, logger: logger)
        (handle, opaque) = try context.makeClient(RD_KAFKA_CONSUMER, conf)
        self.context = context
        rd_kafka_poll_set_consumer(handle.pointer)
        let list = rd_kafka_topic_partition_list_new(Int32(configuration.topics.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in configuration.topics {
            rd_kafka_topic_partition_list_add(list, topic, -1 /* RD_KAFKA_PARTITION_UA */)
        }
        let err = rd_kafka_subscribe(handle.pointer, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            rd_kafka_destroy(handle.pointer)
            KafkaClientContext.release(opaque.pointer)
            throw KafkaError(err)
        }
    }

    /// The partitions this member currently owns.
    public var assignment: Set<KafkaTopicPartition> { context.assignment }
    /// How many assignment changes (assign or revoke) this member went through.
    public var rebalanceEvents: Int { context.rebalanceEvents }
    /// The latest statistics librdkafka reported (zeros until the first report).
    public var statistics: KafkaStatistics { context.statistics }

    /// The messages, as they arrive; ends when the consumer is closed or the iterating task is cancelled.
    /// Errors other than transient ones end it by throwing.
    public var messages: Messages { Messages(consumer: self) }

    public struct Messages: AsyncSequence, Sendable {
        public typealias Element = KafkaMessage
        let consumer: KafkaConsumer

        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(consumer: consumer) }

        public struct AsyncIterator: AsyncIteratorProtocol {
            let consumer: KafkaConsumer
            private var idle = 1

            init(consumer: KafkaConsumer) { self.consumer = consumer }

            public mutating func next() async throws -> KafkaMessage? {
                while !consumer.closed.load(ordering: .relaxed), !Task.isCancelled {
                    if let message = try consumer.poll() {
                        idle = 1
                        return message
                    }
                    // Nothing ready: back off from 1 ms to 20 ms while the topic is quiet.
                    do { try await Task.sleep(for: .milliseconds(idle)) } catch { return nil }
                    idle = Swift.min(idle * 2, 20)
                }
                return nil
            }
        }
    }

    /// The next message if one is ready (also drives rebalances), else nil. Transient errors are skipped.
    public func poll() throws -> KafkaMessage? {
        try guarded { try pollOnce() } ?? nil
    }

    private func pollOnce() throws -> KafkaMessage? {
        guard let message = rd_kafka_consumer_poll(handle.pointer, 0) else { return nil }
        defer { rd_kafka_message_destroy(message) }
        let m = message.pointee
        guard m.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF || m.err == RD_KAFKA_RESP_ERR__TRANSPORT { return nil }
            throw KafkaError(m.err)
        }
        let value = m.payload.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: m.len), as: UTF8.self) } ?? ""
        let key = m.key.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: m.key_len), as: UTF8.self) }
        let topic = String(cString: rd_kafka_topic_name(m.rkt))
        return KafkaMessage(topic: topic, partition: m.partition, offset: m.offset, key: key, value: value)
    }

    /// Waits up to `timeout` for the next message, polling without blocking a thread.
    public func next(timeout: Duration) async throws -> KafkaMessage? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let m = try poll() { return m }
            try await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }

    /// Commits "everything up to and including `message`" for its partition (synchronously, off the pool).
    public func commit(_ message: KafkaMessage) async throws {
        let handle = self.handle
        inFlight.add(1, ordering: .sequentiallyConsistent)
        defer { inFlight.subtract(1, ordering: .sequentiallyConsistent) }
        guard !closed.load(ordering: .sequentiallyConsistent) else { throw KafkaError(message: "consumer is closed") }
        let err = await offPool { () -> Int32 in
            let list = rd_kafka_topic_partition_list_new(1)!
            defer { rd_kafka_topic_partition_list_destroy(list) }
            let entry = rd_kafka_topic_partition_list_add(list, message.topic, message.partition)!
            entry.pointee.offset = message.offset + 1
            return rd_kafka_commit(handle.pointer, list, 0).rawValue
        }
        if err != 0 { throw KafkaError(rd_kafka_resp_err_t(rawValue: err)) }
    }

    /// Leaves the group and frees the handle (off the cooperative pool).
    public func close() async {
        guard !closed.exchange(true, ordering: .sequentiallyConsistent) else { return }
        // A poll or commit that started before `closed` was set finishes first.
        while inFlight.load(ordering: .sequentiallyConsistent) > 0 { try? await Task.sleep(for: .milliseconds(1)) }
        let handle = self.handle
        let opaque = self.opaque
        await offPool {
            rd_kafka_consumer_close(handle.pointer)
            rd_kafka_destroy(handle.pointer)
            KafkaClientContext.release(opaque.pointer)
        }
    }
}
