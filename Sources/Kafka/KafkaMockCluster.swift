internal import CRdKafka

/// librdkafka's in-process mock Kafka cluster — **for development and tests only** (no Kafka broker can be
/// installed here; production points at real Kafka). Other clients, such as `kcat`, can connect to its
/// bootstrap list. Taking a broker down also moves partition leadership and group coordination to a broker
/// that is up, as a real controller would (the mock does not do that by itself).
public final class KafkaMockCluster: @unchecked Sendable {
    // Owned exclusively by this object; every call below is serialized by the caller (the CLI or a test).
    private let owner: RawHandle
    private let cluster: RawHandle
    public let brokerCount: Int
    private var down: Set<Int32> = []
    private var topics: [(name: String, partitions: Int32)] = []

    public init(brokers: Int) throws {
        let conf = try makeConf(["log_level": "3"])
        owner = RawHandle(pointer: try makeHandle(RD_KAFKA_PRODUCER, conf))
        guard let cluster = rd_kafka_mock_cluster_new(owner.pointer, Int32(brokers)) else {
            rd_kafka_destroy(owner.pointer)
            throw KafkaError(message: "could not start the mock cluster")
        }
        self.cluster = RawHandle(pointer: cluster)
        brokerCount = brokers
    }

    /// `host:port,host:port` of the mock brokers.
    public var bootstrapServers: String { String(cString: rd_kafka_mock_cluster_bootstraps(cluster.pointer)) }

    public func createTopic(_ name: String, partitions: Int32, replicationFactor: Int32) throws {
        let err = rd_kafka_mock_topic_create(cluster.pointer, name, partitions, replicationFactor)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err) }
        topics.append((name, partitions))
    }

    /// Broker ids are 1…brokerCount.
    public func setBrokerDown(_ id: Int32) throws {
        let err = rd_kafka_mock_broker_set_down(cluster.pointer, id)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err) }
        down.insert(id)
        try moveLeadership()
    }

    public func setBrokerUp(_ id: Int32) throws {
        let err = rd_kafka_mock_broker_set_up(cluster.pointer, id)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err) }
        down.remove(id)
    }

    /// Brokers currently up.
    public var brokersUp: [Int32] { (1...Int32(brokerCount)).filter { !down.contains($0) } }

    /// Every partition led by a broker that is up; group coordination on a broker that is up.
    private func moveLeadership() throws {
        guard let target = brokersUp.first else { return }
        for topic in topics {
            for partition in 0..<topic.partitions {
                let err = rd_kafka_mock_partition_set_leader(cluster.pointer, topic.name, partition, target)
                guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err) }
            }
        }
        coordinatorBroker = target
    }

    /// Makes `target` the coordinator of consumer group `group` (called for groups that consumers use).
    public func setGroupCoordinator(_ group: String, broker: Int32? = nil) throws {
        let err = rd_kafka_mock_coordinator_set(cluster.pointer, "group", group, broker ?? coordinatorBroker)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err) }
    }

    private var coordinatorBroker: Int32 = 1

    deinit {
        rd_kafka_mock_cluster_destroy(cluster.pointer)
        rd_kafka_destroy(owner.pointer)
    }
}
