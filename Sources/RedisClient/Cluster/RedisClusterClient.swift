import Logging
import Metrics
import NIOCore
import NIOPosix
import Synchronization

/// A Redis Cluster client: discovers the slot map (`CLUSTER SLOTS`), sends each command to the master of
/// its key's slot, follows `MOVED` (updates the map and rediscovers) and `ASK` (`ASKING` + command, map
/// unchanged), retries `TRYAGAIN`/`CLUSTERDOWN`/`LOADING` and unreachable nodes with back-off (rediscovering,
/// so a promoted replica is found without a restart), and gives up after `maxRedirects`.
///
/// A command is only re-sent when it cannot have run: a redirect or retry reply, or a connection that could
/// not be opened. A connection lost after sending is reported to the caller (the outcome is unknown).
public final class RedisClusterClient: Sendable {
    struct Topology {
        /// slot → master endpoint
        var slots: [RedisEndpoint?] = Array(repeating: nil, count: HashSlot.count)
        var masters: [RedisEndpoint] = []
        var nodes: [RedisEndpoint: RedisNodeClient] = [:]
        var lastDiscovery: ContinuousClock.Instant?
    }

    public let configuration: RedisConfiguration
    private let logger: Logger
    private let eventLoopGroup: any EventLoopGroup
    private let topology = Mutex(Topology())
    private let discovery = Mutex<Task<Void, any Error>?>(nil)

    public init(configuration: RedisConfiguration, logger: Logger = Logger(label: "redis.cluster"),
                eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.configuration = configuration
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
    }

    /// Current masters, as last discovered.
    public var masters: [RedisEndpoint] { topology.withLock { $0.masters } }

    /// The master that serves `key`'s slot, as currently known.
    public func master(for key: String) -> RedisEndpoint? {
        topology.withLock { $0.slots[HashSlot.slot(of: key)] }
    }

    private func node(_ endpoint: RedisEndpoint) -> RedisNodeClient {
        topology.withLock { t in
            if let node = t.nodes[endpoint] { return node }
            let node = RedisNodeClient(endpoint: endpoint, configuration: configuration, logger: logger, eventLoopGroup: eventLoopGroup)
            t.nodes[endpoint] = node
            return node
        }
    }

    // MARK: discovery

    /// Reloads the slot map from the first node that answers (known masters first, then the seeds).
    /// Concurrent callers share one discovery.
    public func discover() async throws {
        let task: Task<Void, any Error> = discovery.withLock { current in
            if let current { return current }
            let task = Task { try await self.loadSlots() }
            current = task
            return task
        }
        defer { discovery.withLock { if $0 == task { $0 = nil } } }
        try await task.value
    }

    private func loadSlots() async throws {
        let candidates = topology.withLock { $0.masters } + configuration.endpoints
        var lastError: (any Error)?
        for endpoint in candidates {
            do {
                let reply = try await node(endpoint).send(["CLUSTER", "SLOTS"])
                let (slots, masters) = try Self.parseSlots(reply)
                topology.withLock { t in
                    t.slots = slots
                    t.masters = masters
                    t.lastDiscovery = .now
                }
                Counter(label: "redis_cluster_discoveries_total").increment()
                logger.debug("cluster slots loaded", metadata: ["from": "\(endpoint)", "masters": "\(masters)"])
                return
            } catch {
                lastError = error
            }
        }
        throw lastError ?? RedisClientError.connectionUnavailable("no cluster node answered")
    }

    /// `CLUSTER SLOTS`: [[start, end, [host, port, id…], replicas…], …]
    static func parseSlots(_ reply: RESPValue) throws -> ([RedisEndpoint?], [RedisEndpoint]) {
        guard let ranges = reply.array else { throw RedisClientError.unexpectedReply("CLUSTER SLOTS: \(reply)") }
        var slots = [RedisEndpoint?](repeating: nil, count: HashSlot.count)
        var masters: [RedisEndpoint] = []
        for range in ranges {
            guard let fields = range.array, fields.count >= 3, let start = fields[0].int, let end = fields[1].int,
                  start >= 0, end < HashSlot.count, start <= end,
                  let master = fields[2].array, master.count >= 2, let host = master[0].string, let port = master[1].int
            else { throw RedisClientError.unexpectedReply("CLUSTER SLOTS range: \(range)") }
            let endpoint = RedisEndpoint(host: host.isEmpty ? "127.0.0.1" : host, port: Int(port))
            for slot in Int(start)...Int(end) { slots[slot] = endpoint }
            if !masters.contains(endpoint) { masters.append(endpoint) }
        }
        return (slots, masters)
    }

    /// Sends a command to one node, whatever slots it serves (`PING` to a replica, for health).
    public func send(to endpoint: RedisEndpoint, _ arguments: [RESPArgument]) async throws -> RESPValue {
        try await node(endpoint).send(arguments)
    }

    // MARK: commands

    /// Sends a command touching `key` (nil: any master). Error replies other than redirects throw `RedisServerError`.
    @discardableResult
    public func send(_ arguments: [RESPArgument], key: String?) async throws -> RESPValue {
        try await sendRaw(arguments, key: key).throwingServerError()
    }

    /// Like `send`, but returns non-redirect error replies as `.error`.
    public func sendRaw(_ arguments: [RESPArgument], key: String?) async throws -> RESPValue {
        if topology.withLock({ $0.lastDiscovery == nil }) { try await discover() }
        var target = route(key)
        var asking = false
        var attempt = 0
        while true {
            attempt += 1
            guard let endpoint = target else {
                try await backoffAndRediscover(attempt, reason: "no master for the slot")
                target = route(key)
                continue
            }
            let reply: RESPValue
            do {
                let node = node(endpoint)
                if asking {
                    let replies = try await node.connection().pipeline([["ASKING"], arguments])
                    reply = replies[1]
                } else {
                    reply = try await node.sendRaw(arguments)
                }
            } catch let error as RedisClientError {
                guard case .connectionUnavailable = error, attempt < configuration.maxRedirects else { throw error }
                // Never sent: safe to retry once the cluster has (perhaps) promoted a replica.
                try await backoffAndRediscover(attempt, reason: "\(endpoint) unreachable")
                target = route(key)
                asking = false
                continue
            }
            guard case .error(let message) = reply else { return reply }
            let error = RedisServerError(message)
            asking = false
            switch error.code {
            case "MOVED":
                Counter(label: "redis_cluster_redirects_total", dimensions: [("kind", "moved")]).increment()
                guard attempt < configuration.maxRedirects, let (slot, to) = Self.redirect(message) else {
                    throw RedisClientError.tooManyRedirects(message)
                }
                topology.withLock { $0.slots[slot] = to }
                Task { try? await self.discover() }
                target = to
            case "ASK":
                Counter(label: "redis_cluster_redirects_total", dimensions: [("kind", "ask")]).increment()
                guard attempt < configuration.maxRedirects, let (_, to) = Self.redirect(message) else {
                    throw RedisClientError.tooManyRedirects(message)
                }
                target = to
                asking = true
            case "TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN":
                guard attempt < configuration.maxRedirects else { throw error }
                try await backoffAndRediscover(attempt, reason: error.code)
                target = route(key)
            default:
                return reply
            }
        }
    }

    /// Runs a pipeline on one node: every command must touch keys of the same slot as `key`.
    public func pipeline(_ commands: [[RESPArgument]], key: String) async throws -> [RESPValue] {
        if topology.withLock({ $0.lastDiscovery == nil }) { try await discover() }
        guard let endpoint = route(key) else { throw RedisClientError.connectionUnavailable("no master for key \(key)") }
        return try await node(endpoint).pipeline(commands)
    }

    /// Test hook: pretend the map says `slot` lives on `endpoint` (to provoke a MOVED).
    func overrideSlot(_ slot: Int, to endpoint: RedisEndpoint) {
        topology.withLock { $0.slots[slot] = endpoint }
    }

    private func route(_ key: String?) -> RedisEndpoint? {
        topology.withLock { t in
            if let key { return t.slots[HashSlot.slot(of: key)] }
            return t.masters.first ?? configuration.endpoints.first
        }
    }

    private func backoffAndRediscover(_ attempt: Int, reason: String) async throws {
        let delay = min(Duration.milliseconds(25) * (1 << min(attempt - 1, 10)), .milliseconds(500))
        logger.debug("cluster retry", metadata: ["attempt": "\(attempt)", "reason": "\(reason)", "delay": "\(delay)"])
        Counter(label: "redis_cluster_retries_total").increment()
        try await Task.sleep(for: delay)
        try? await discover()
    }

    /// `MOVED 3999 127.0.0.1:6381` → (3999, endpoint)
    static func redirect(_ message: String) -> (Int, RedisEndpoint)? {
        let parts = message.split(separator: " ")
        guard parts.count == 3, let slot = Int(parts[1]), (0..<HashSlot.count).contains(slot),
              let endpoint = try? RedisEndpoint(parsing: parts[2]) else { return nil }
        return (slot, endpoint)
    }

    public func close() async {
        let nodes = topology.withLock { Array($0.nodes.values) }
        for node in nodes { await node.close() }
    }
}
