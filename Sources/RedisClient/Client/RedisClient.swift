import Logging
import NIOCore
import NIOPosix

/// A Lua script addressed by its SHA-1 (`EVALSHA`, with `EVAL` when the server does not know it yet).
public struct RedisScript: Sendable, Hashable {
    public let source: String
    public let sha1: String
    public init(_ source: String) {
        self.source = source
        sha1 = SHA1.hex(source)
    }
}

/// The client Storefront's adapters use: one node (standalone) or a Redis Cluster, chosen by the
/// configuration. Commands name the key they touch so the cluster client can route them by hash slot.
public final class RedisClient: Sendable {
    private enum Backend: Sendable {
        case standalone(RedisNodeClient)
        case cluster(RedisClusterClient)
    }

    public let configuration: RedisConfiguration
    private let backend: Backend

    public init(configuration: RedisConfiguration, logger: Logger = Logger(label: "redis"),
                eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        guard !configuration.endpoints.isEmpty else { throw RedisClientError.invalidConfiguration("no endpoint") }
        self.configuration = configuration
        if configuration.cluster {
            backend = .cluster(RedisClusterClient(configuration: configuration, logger: logger, eventLoopGroup: eventLoopGroup))
        } else {
            backend = .standalone(RedisNodeClient(endpoint: configuration.endpoints[0], configuration: configuration, logger: logger,
                                                  eventLoopGroup: eventLoopGroup))
        }
    }

    /// The cluster client, in cluster mode.
    public var cluster: RedisClusterClient? {
        if case .cluster(let c) = backend { return c }
        return nil
    }

    /// Sends a command that touches `key` (nil for keyless commands); error replies throw `RedisServerError`.
    @discardableResult
    public func send(_ arguments: [RESPArgument], key: String? = nil) async throws -> RESPValue {
        try await sendRaw(arguments, key: key).throwingServerError()
    }

    /// Like `send`, but returns error replies as `.error`.
    public func sendRaw(_ arguments: [RESPArgument], key: String? = nil) async throws -> RESPValue {
        switch backend {
        case .standalone(let node): try await node.sendRaw(arguments)
        case .cluster(let cluster): try await cluster.sendRaw(arguments, key: key)
        }
    }

    /// Sends commands in one flush; in cluster mode all must touch the slot of `key`.
    public func pipeline(_ commands: [[RESPArgument]], key: String? = nil) async throws -> [RESPValue] {
        switch backend {
        case .standalone(let node): return try await node.pipeline(commands)
        case .cluster(let cluster):
            guard let key else { throw RedisClientError.invalidConfiguration("a cluster pipeline needs a routing key") }
            return try await cluster.pipeline(commands, key: key)
        }
    }

    /// Runs a script with `EVALSHA`; on `NOSCRIPT` falls back to `EVAL` (which also caches it on the server).
    /// In cluster mode it is routed by its first key (all keys must share a slot).
    public func eval(_ script: RedisScript, keys: [String], arguments: [RESPArgument]) async throws -> RESPValue {
        let tail: [RESPArgument] = [.string(String(keys.count))] + keys.map { .string($0) } + arguments
        let reply = try await sendRaw(["EVALSHA", .string(script.sha1)] + tail, key: keys.first)
        if case .error(let message) = reply, RedisServerError(message).code == "NOSCRIPT" {
            return try await send(["EVAL", .string(script.source)] + tail, key: keys.first)
        }
        return try reply.throwingServerError()
    }

    /// The node that serves `key`: the only node (standalone) or the master of its slot (cluster, discovering
    /// the slot map first if it is not known).
    public func endpoint(forKey key: String) async throws -> RedisEndpoint {
        switch backend {
        case .standalone(let node): return node.endpoint
        case .cluster(let cluster):
            if let endpoint = cluster.master(for: key) { return endpoint }
            try await cluster.discover()
            guard let endpoint = cluster.master(for: key) else { throw RedisClientError.connectionUnavailable("no master for key \(key)") }
            return endpoint
        }
    }

    /// `PING` → `PONG` (in cluster mode: one master).
    public func ping() async throws {
        let reply = try await send(["PING"])
        guard reply.string == "PONG" else { throw RedisClientError.unexpectedReply("\(reply)") }
    }

    public func close() async {
        switch backend {
        case .standalone(let node): await node.close()
        case .cluster(let cluster): await cluster.close()
        }
    }
}
