import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// One connection to one Redis node. Commands from many tasks are pipelined on it (replies match FIFO);
/// each has a deadline; a cancelled caller stops waiting at once (its reply is discarded when it arrives).
public final class RedisConnection: Sendable {
    public let endpoint: RedisEndpoint
    /// The protocol the server agreed to: 3 after `HELLO 3`, 2 on older servers.
    public let protocolVersion: Int
    let channel: any Channel
    private let health: ConnectionHealth
    private let commandTimeout: Duration

    private init(endpoint: RedisEndpoint, channel: any Channel, health: ConnectionHealth, protocolVersion: Int, commandTimeout: Duration) {
        self.endpoint = endpoint
        self.channel = channel
        self.health = health
        self.protocolVersion = protocolVersion
        self.commandTimeout = commandTimeout
    }

    /// Connects, negotiates RESP3 (falling back to RESP2), authenticates and selects the database.
    /// `onPush` receives out-of-band pushes (RESP3 Pub/Sub messages) on the connection's event loop: it must
    /// not block.
    public static func connect(
        to endpoint: RedisEndpoint, configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onPush: (@Sendable (RESPValue) -> Void)? = nil
    ) async throws -> RedisConnection {
        var sslContext: NIOSSLContext?
        if configuration.tls {
            var tls = TLSConfiguration.makeClientConfiguration()
            if let ca = configuration.tlsCAFile { tls.trustRoots = .file(ca) }
            sslContext = try NIOSSLContext(configuration: tls)
        }
        // SNI cannot carry an IP address; certificates for IPs are matched by their IP SAN.
        let serverHostname = endpoint.host.allSatisfy { $0.isNumber || $0 == "." || $0 == ":" } ? nil : endpoint.host
        let health = ConnectionHealth()
        let bootstrap = ClientBootstrap(group: eventLoopGroup)
            .connectTimeout(.nanoseconds(Int64(configuration.connectTimeout.components.seconds * 1_000_000_000
                + configuration.connectTimeout.components.attoseconds / 1_000_000_000)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        let tls = try NIOSSLClientHandler(context: sslContext, serverHostname: serverHostname)
                        try channel.pipeline.syncOperations.addHandler(tls)
                    }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(RedisCommandHandler(health: health, onPush: onPush))
                }
            }
        let channel = try await bootstrap.connect(host: endpoint.host, port: endpoint.port).get()
        var connection = RedisConnection(endpoint: endpoint, channel: channel, health: health, protocolVersion: 3,
                                         commandTimeout: configuration.connectTimeout)
        do {
            var hello: [RESPArgument] = ["HELLO", "3"]
            if let password = configuration.password {
                hello += ["AUTH", .string(configuration.username ?? "default"), .string(password)]
            }
            if let name = configuration.clientName { hello += ["SETNAME", .string(name)] }
            let reply = try await connection.sendRaw(hello)
            var version = 3
            if case .error(let message) = reply {
                let code = RedisServerError(message).code
                guard code == "ERR" || code == "NOPROTO" else { throw RedisServerError(message) }
                // A server without RESP3: authenticate the RESP2 way.
                version = 2
                if let password = configuration.password {
                    let auth: [RESPArgument] = configuration.username.map { ["AUTH", .string($0), .string(password)] } ?? ["AUTH", .string(password)]
                    try await connection.sendRaw(auth).throwingServerError()
                }
            }
            if configuration.database != 0 {
                try await connection.sendRaw(["SELECT", .string(String(configuration.database))]).throwingServerError()
            }
            connection = RedisConnection(endpoint: endpoint, channel: channel, health: health, protocolVersion: version,
                                         commandTimeout: configuration.commandTimeout)
            return connection
        } catch {
            try? await channel.close()
            throw error
        }
    }

    /// False as soon as the connection failed (timeout, protocol error, peer closed).
    public var isActive: Bool { channel.isActive && !health.isBroken }

    /// Sends one command; an error reply is thrown as `RedisServerError`.
    @discardableResult
    public func send(_ arguments: [RESPArgument]) async throws -> RESPValue {
        try await sendRaw(arguments).throwingServerError()
    }

    /// Sends one command; error replies are returned as `.error`.
    public func sendRaw(_ arguments: [RESPArgument]) async throws -> RESPValue {
        try await pipeline([arguments])[0]
    }

    /// Writes all commands in one flush and returns their replies in order (error replies as `.error`).
    public func pipeline(_ commands: [[RESPArgument]]) async throws -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        let loop = channel.eventLoop
        let deadline = NIODeadline.now() + TimeAmount.nanoseconds(
            commandTimeout.components.seconds * 1_000_000_000 + commandTimeout.components.attoseconds / 1_000_000_000)
        var bytes = channel.allocator.buffer(capacity: 64 * commands.count)
        for command in commands {
            RESPCommandEncoder.encode(command, into: &bytes)
        }
        let batch = PendingCommand(promise: loop.makePromise(), deadline: deadline, expected: commands.count)
        let future = batch.promise!.futureResult
        return try await withTaskCancellationHandler {
            let written = loop.makePromise(of: Void.self)
            written.futureResult.whenFailure { error in
                // Never reached the handler (e.g. the channel is already closed): fail the batch here.
                batch.complete(.failure(error is ChannelError ? RedisClientError.connectionClosed : error))
            }
            channel.write(RedisOutbound(bytes: bytes, batch: batch), promise: written)  // the handler coalesces flushes
            return try await future.get()
        } onCancel: {
            loop.execute { batch.complete(.failure(CancellationError())) }
        }
    }

    public func close() async {
        try? await channel.close()
    }

    /// Completes when the connection has closed, for whatever reason.
    public func closed() async {
        try? await channel.closeFuture.get()
    }
}

extension RESPValue {
    /// Throws `RedisServerError` for an error reply.
    @discardableResult
    public func throwingServerError() throws -> RESPValue {
        if case .error(let message) = self { throw RedisServerError(message) }
        return self
    }
}
