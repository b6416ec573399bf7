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

/// The client Storefront's adapters use: one node (standalone). Commands name the key they touch so a
/// cluster-aware client can route them by hash slot.
public final class RedisClient: Sendable {
    public let configuration: RedisConfiguration
    private let node: RedisNodeClient

    public init(configuration: RedisConfiguration, logger: Logger = Logger(label: "redis"),
                eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        guard !configuration.cluster else {
            throw RedisClientError.invalidConfiguration("Redis Cluster mode is not built in yet; use a standalone redis:// URL")
        }
        self.configuration = configuration
        node = RedisNodeClient(endpoint: configuration.endpoints[0], configuration: configuration, logger: logger, eventLoopGroup: eventLoopGroup)
    }

    /// Sends a command that touches `key` (nil for keyless commands); error replies throw `RedisServerError`.
    @discardableResult
    public func send(_ arguments: [RESPArgument], key: String? = nil) async throws -> RESPValue {
        try await node.send(arguments)
    }

    /// Runs a script with `EVALSHA`; on `NOSCRIPT` falls back to `EVAL` (which also caches it on the server).
    public func eval(_ script: RedisScript, keys: [String], arguments: [RESPArgument]) async throws -> RESPValue {
        let tail: [RESPArgument] = [.string(String(keys.count))] + keys.map { .string($0) } + arguments
        let reply = try await node.sendRaw(["EVALSHA", .string(script.sha1)] + tail)
        if case .error(let message) = reply, RedisServerError(message).code == "NOSCRIPT" {
            return try await node.send(["EVAL", .string(script.source)] + tail)
        }
        return try reply.throwingServerError()
    }

    /// `PING` → `PONG`.
    public func ping() async throws {
        let reply = try await send(["PING"])
        guard reply.string == "PONG" else { throw RedisClientError.unexpectedReply("\(reply)") }
    }

    public func close() async {
        await node.close()
    }
}
