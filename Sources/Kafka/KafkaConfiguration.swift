internal import CRdKafka
import Dispatch

/// A librdkafka error, with its code and message.
public struct KafkaError: Error, Sendable, CustomStringConvertible, Equatable {
    public var code: Int32
    public var message: String

    init(_ err: rd_kafka_resp_err_t) {
        code = err.rawValue
        message = String(cString: rd_kafka_err2str(err))
    }

    init(message: String) {
        code = -1
        self.message = message
    }

    public var description: String { "Kafka: \(message) (\(code))" }
}

/// Producer settings, turned into librdkafka properties in one place.
public struct KafkaProducerConfiguration: Sendable {
    public var bootstrapServers: String
    public var clientID = "storefront"
    /// `acks=all` and the idempotent producer: no duplicates or reordering from retries within a partition.
    public var idempotence = true
    public var messageTimeoutMilliseconds = 30_000
    /// How often librdkafka reports statistics (to swift-metrics and `statistics`); 0 turns them off.
    public var statisticsIntervalMilliseconds = 10_000
    /// Anything else librdkafka understands.
    public var extra: [String: String] = [:]

    public init(bootstrapServers: String) {
        self.bootstrapServers = bootstrapServers
    }

    var properties: [String: String] {
        var p = [
            "bootstrap.servers": bootstrapServers,
            "client.id": clientID,
            "acks": "all",
            "enable.idempotence": idempotence ? "true" : "false",
            "message.timeout.ms": String(messageTimeoutMilliseconds),
            "linger.ms": "1",
            "statistics.interval.ms": String(statisticsIntervalMilliseconds),
        ]
        p.merge(extra) { _, new in new }
        return p
    }
}

/// Consumer settings.
public struct KafkaConsumerConfiguration: Sendable {
    public var bootstrapServers: String
    public var groupID: String
    public var topics: [String]
    /// Where a group without committed offsets starts.
    public var fromBeginning = true
    public var clientID = "storefront"
    /// How often librdkafka reports statistics (to swift-metrics and `statistics`); 0 turns them off.
    public var statisticsIntervalMilliseconds = 10_000
    public var extra: [String: String] = [:]

    public init(bootstrapServers: String, groupID: String, topics: [String]) {
        self.bootstrapServers = bootstrapServers
        self.groupID = groupID
        self.topics = topics
    }

    var properties: [String: String] {
        var p = [
            "bootstrap.servers": bootstrapServers,
            "group.id": groupID,
            "enable.auto.commit": "false",
            "auto.offset.reset": fromBeginning ? "earliest" : "latest",
            "enable.partition.eof": "false",
            "client.id": clientID,
            "statistics.interval.ms": String(statisticsIntervalMilliseconds),
        ]
        p.merge(extra) { _, new in new }
        return p
    }
}

/// Builds an `rd_kafka_conf_t` (owned by the caller until passed to `rd_kafka_new`).
func makeConf(_ properties: [String: String]) throws -> OpaquePointer {
    let conf = rd_kafka_conf_new()!
    var errstr = [CChar](repeating: 0, count: 512)
    for (key, value) in properties {
        if rd_kafka_conf_set(conf, key, value, &errstr, errstr.count) != RD_KAFKA_CONF_OK {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(message: "\(key): \(String(cString: errstr))")
        }
    }
    return conf
}

/// Creates a client handle; librdkafka takes the conf only on success.
func makeHandle(_ type: rd_kafka_type_t, _ conf: OpaquePointer) throws -> OpaquePointer {
    var errstr = [CChar](repeating: 0, count: 512)
    guard let handle = rd_kafka_new(type, conf, &errstr, errstr.count) else {
        rd_kafka_conf_destroy(conf)
        throw KafkaError(message: String(cString: errstr))
    }
    return handle
}

/// A librdkafka handle passed between threads. librdkafka's client API is thread-safe; the wrapper types
/// decide who may destroy it.
struct RawHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// The retained context pointer handed to librdkafka, passed to the queue that releases it.
struct RawPointer: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
}

/// Runs a blocking librdkafka call on a dedicated queue, never on the cooperative thread pool.
func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        blockingQueue.async { continuation.resume(returning: body()) }
    }
}

private let blockingQueue = DispatchQueue(label: "storefront.kafka.blocking", attributes: .concurrent)
