internal import CRdKafka
import Foundation
import Logging
import Metrics
import Synchronization

/// A snapshot of librdkafka's statistics (emitted every `statistics.interval.ms`), the parts we export.
public struct KafkaStatistics: Sendable, Equatable {
    /// Messages waiting in the producer's queues (not yet acknowledged).
    public var queuedMessages: Int64 = 0
    /// Brokers this client has an open connection to (`state == "UP"`).
    public var brokersUp: Int = 0
    /// Messages sent / received since the client started.
    public var messagesSent: Int64 = 0
    public var messagesReceived: Int64 = 0
    /// Transmission and receive errors since the client started, all brokers.
    public var errors: Int64 = 0
    /// Sum of the consumer lag of the assigned partitions (0 for a producer).
    public var consumerLag: Int64 = 0

    /// Reads the fields from librdkafka's statistics JSON; nil when it is not an object.
    init?(json: Data) {
        guard let root = (try? JSONSerialization.jsonObject(with: json)) as? [String: Any] else { return nil }
        func int(_ any: Any?) -> Int64 { (any as? NSNumber)?.int64Value ?? 0 }
        queuedMessages = int(root["msg_cnt"])
        messagesSent = int(root["txmsgs"])
        messagesReceived = int(root["rxmsgs"])
        let brokers = (root["brokers"] as? [String: Any] ?? [:]).values.compactMap { $0 as? [String: Any] }
            .filter { int($0["nodeid"]) >= 0 }  // skip the bootstrap placeholders (nodeid -1)
        brokersUp = brokers.filter { $0["state"] as? String == "UP" }.count
        errors = brokers.reduce(0) { $0 + int($1["txerrs"]) + int($1["rxerrs"]) }
        let partitions = (root["topics"] as? [String: Any] ?? [:]).values
            .compactMap { ($0 as? [String: Any])?["partitions"] as? [String: Any] }
            .flatMap { $0.values.compactMap { $0 as? [String: Any] } }
        consumerLag = partitions.reduce(0) { sum, p in
            let lag = int(p["consumer_lag"])
            return int(p["partition"]) >= 0 && lag > 0 ? sum + lag : sum
        }
    }

    init() {}

    /// Before the first report.
    public static let zero = KafkaStatistics()
}

/// One assigned topic-partition.
public struct KafkaTopicPartition: Sendable, Hashable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32
    public var description: String { "\(topic)[\(partition)]" }
}

/// What librdkafka's callbacks need, reached through the handle's opaque pointer: the delivery router
/// (producers), the logger, the statistics and metrics, the consumer's assignment.
/// Retained by the handle until `rd_kafka_destroy` returned (see `retainedOpaque` / `release`).
final class KafkaClientContext: Sendable {
    let clientID: String
    let logger: Logger
    let router = DeliveryRouter()
    private let stats = Mutex(KafkaStatistics())
    private let assigned = Mutex<Set<KafkaTopicPartition>>([])
    private let rebalanceCount = Atomic<Int>(0)
    private let queued: Gauge
    private let brokersUp: Gauge
    private let lag: Gauge
    private let sent: Counter
    private let received: Counter
    private let errors: Counter
    private let rebalances: Counter

    init(clientID: String, logger: Logger) {
        self.clientID = clientID
        var logger = logger
        logger[metadataKey: "kafka.client"] = "\(clientID)"
        self.logger = logger
        let dimensions = [("client", clientID)]
        queued = Gauge(label: "kafka_client_queued_messages", dimensions: dimensions)
        brokersUp = Gauge(label: "kafka_client_brokers_up", dimensions: dimensions)
        lag = Gauge(label: "kafka_client_consumer_lag", dimensions: dimensions)
        sent = Counter(label: "kafka_client_messages_sent_total", dimensions: dimensions)
        received = Counter(label: "kafka_client_messages_received_total", dimensions: dimensions)
        errors = Counter(label: "kafka_client_errors_total", dimensions: dimensions)
        rebalances = Counter(label: "kafka_client_rebalances_total", dimensions: dimensions)
    }

    var statistics: KafkaStatistics { stats.withLock { $0 } }
    var assignment: Set<KafkaTopicPartition> { assigned.withLock { $0 } }
    var rebalanceEvents: Int { rebalanceCount.load(ordering: .relaxed) }

    func record(_ new: KafkaStatistics) {
        let old = stats.withLock { s in defer { s = new }; return s }
        queued.record(new.queuedMessages)
        brokersUp.record(new.brokersUp)
        lag.record(new.consumerLag)
        sent.increment(by: max(0, new.messagesSent - old.messagesSent))
        received.increment(by: max(0, new.messagesReceived - old.messagesReceived))
        errors.increment(by: max(0, new.errors - old.errors))
    }

    func assigned(_ partitions: [KafkaTopicPartition]) {
        assigned.withLock { $0.formUnion(partitions) }
        rebalanceCount.add(1, ordering: .relaxed)
        rebalances.increment()
    }

    func revoked(_ partitions: [KafkaTopicPartition]?) {
        assigned.withLock { set in
            if let partitions { set.subtract(partitions) } else { set.removeAll() }
        }
        rebalanceCount.add(1, ordering: .relaxed)
        rebalances.increment()
    }

    /// Installs the log, statistics (and for consumers, rebalance) callbacks and the opaque on `conf`.
    /// Returns the opaque, retained once: call `release` after the handle was destroyed (or never created).
    func install(on conf: OpaquePointer, consumer: Bool) -> UnsafeMutableRawPointer {
        rd_kafka_conf_set_log_cb(conf, logCallback)
        rd_kafka_conf_set_stats_cb(conf, statsCallback)
        if consumer { rd_kafka_conf_set_rebalance_cb(conf, rebalanceCallback) }
        let opaque = Unmanaged.passRetained(self).toOpaque()
        rd_kafka_conf_set_opaque(conf, opaque)
        return opaque
    }

    /// Installs this context on `conf` and creates the client; on failure nothing is left retained.
    func makeClient(_ type: rd_kafka_type_t, _ conf: OpaquePointer) throws -> (RawHandle, RawPointer) {
        let opaque = install(on: conf, consumer: type == RD_KAFKA_CONSUMER)
        do {
            return (RawHandle(pointer: try makeHandle(type, conf)), RawPointer(pointer: opaque))
        } catch {
            Self.release(opaque)
            throw error
        }
    }

    static func release(_ opaque: UnsafeMutableRawPointer) {
        Unmanaged<KafkaClientContext>.fromOpaque(opaque).release()
    }

    static func of(_ rk: OpaquePointer?) -> KafkaClientContext? {
        guard let rk, let opaque = rd_kafka_opaque(rk) else { return nil }
        return Unmanaged<KafkaClientContext>.fromOpaque(opaque).takeUnretainedValue()
    }
}

/// librdkafka's syslog levels → swift-log levels.
func logLevel(syslog level: Int32) -> Logger.Level {
    switch level {
    case ...2: .critical
    case 3: .error
    case 4: .warning
    case 5: .notice
    case 6: .info
    default: .debug
    }
}

/// Forwards librdkafka's log lines (called from librdkafka's threads) to swift-log.
private let logCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = {
    rk, level, facility, buffer in
    guard let context = KafkaClientContext.of(rk) else { return }
    let message = buffer.map { String(cString: $0) } ?? ""
    let facility = facility.map { String(cString: $0) } ?? ""
    context.logger.log(level: logLevel(syslog: level), "\(message)", metadata: ["kafka.facility": "\(facility)"], source: "librdkafka")
}

/// Statistics JSON (served by poll) → `KafkaStatistics` + swift-metrics. Returns 0: librdkafka frees the JSON.
private let statsCallback: @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>?, Int, UnsafeMutableRawPointer?) -> Int32 = {
    rk, json, length, _ in
    guard let context = KafkaClientContext.of(rk), let json else { return 0 }
    if let stats = KafkaStatistics(json: Data(bytes: json, count: length)) { context.record(stats) }
    return 0
}

/// Applies an assignment change (eager or cooperative protocol), keeps `assignment` current and logs it.
/// Offsets are committed per message by the application, so nothing is pending when partitions are revoked.
private let rebalanceCallback: @convention(c) (OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, UnsafeMutableRawPointer?) -> Void = {
    rk, err, partitions, _ in
    guard let rk else { return }
    let context = KafkaClientContext.of(rk)
    let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
    var list: [KafkaTopicPartition] = []
    if let partitions {
        for i in 0..<Int(partitions.pointee.cnt) {
            let element = partitions.pointee.elems[i]
            list.append(KafkaTopicPartition(topic: String(cString: element.topic), partition: element.partition))
        }
    }
    switch err {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        if cooperative {
            if let error = rd_kafka_incremental_assign(rk, partitions) { rd_kafka_error_destroy(error) }
        } else {
            rd_kafka_assign(rk, partitions)
        }
        context?.assigned(list)
        context?.logger.info("partitions assigned", metadata: ["kafka.partitions": "\(list.map(\.description).joined(separator: ","))"])
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        if cooperative {
            if let error = rd_kafka_incremental_unassign(rk, partitions) { rd_kafka_error_destroy(error) }
            context?.revoked(list)
        } else {
            rd_kafka_assign(rk, nil)
            context?.revoked(nil)
        }
        context?.logger.info("partitions revoked", metadata: ["kafka.partitions": "\(list.map(\.description).joined(separator: ","))"])
    default:
        context?.logger.error("rebalance failed: \(String(cString: rd_kafka_err2str(err)))")
        rd_kafka_assign(rk, nil)
        context?.revoked(nil)
    }
}
