import Logging
import Metrics
import NIOCore
import NIOPosix

/// One sharded Pub/Sub channel (Redis ≥ 7: `SPUBLISH` / `SSUBSCRIBE`). A sharded channel lives on the master of
/// its hash slot, like a key: publishing and subscribing both go to that one node, so a message is written to
/// every subscriber's socket before the publisher gets its reply (plain `PUBLISH` in a cluster reaches the
/// other nodes later, over the cluster bus).
///
/// `run` keeps one dedicated RESP3 connection subscribed and reports what happens: `.subscribed`, every
/// message, and `.unsubscribed` when the subscription may have missed messages (the connection closed, a
/// heartbeat `PING` got no answer within the command timeout, or the slot moved to another node). It then
/// reconnects with back-off, rediscovering the cluster, and reports `.subscribed` again.
public final class RedisShardChannel: Sendable {
    public enum Event: Sendable, Equatable {
        case subscribed
        case message(String)
        case unsubscribed(reason: String)
    }

    public let name: String
    private let client: RedisClient
    private let logger: Logger

    public init(client: RedisClient, name: String, logger: Logger = Logger(label: "redis.pubsub")) {
        self.client = client
        self.name = name
        self.logger = logger
    }

    /// `SPUBLISH`: returns how many subscribers (on the channel's node) got the message.
    @discardableResult
    public func publish(_ message: String) async throws -> Int64 {
        let reply = try await client.send(["SPUBLISH", .string(name), .string(message)], key: name)
        return reply.int ?? 0
    }

    /// Stays subscribed until the task is cancelled, reporting events in order (`onEvent` is awaited before the
    /// next message is read). `heartbeat` is the pause between liveness `PING`s.
    public func run(heartbeat: Duration = .milliseconds(500), _ onEvent: @escaping @Sendable (Event) async -> Void) async {
        var failures = 0
        while !Task.isCancelled {
            var subscribed = false
            do {
                try await session(heartbeat: heartbeat) {
                    subscribed = true
                    failures = 0
                    await onEvent(.subscribed)
                } onMessage: { text in
                    await onEvent(.message(text))
                }
            } catch {
                if subscribed {
                    Counter(label: "redis_pubsub_resubscribes_total").increment()
                    await onEvent(.unsubscribed(reason: "\(error)"))
                }
                guard !Task.isCancelled else { return }
                failures += 1
                if failures == 1 || failures % 20 == 0 {
                    logger.warning("pub/sub subscription lost; resubscribing", metadata: [
                        "channel": "\(name)", "error": "\(error)", "attempts": "\(failures)"])
                }
                let delay = min(Duration.milliseconds(50) * (1 << min(failures - 1, 6)), .seconds(2))
                try? await Task.sleep(for: delay)
                try? await client.cluster?.discover()
            }
        }
    }

    /// One connection's life: connect to the channel's node, subscribe, then read messages and ping until
    /// something fails (always ends by throwing).
    private func session(heartbeat: Duration, onSubscribed: () async -> Void,
                         onMessage: @escaping @Sendable (String) async -> Void) async throws {
        let endpoint = try await client.endpoint(forKey: name)
        let (pushes, sink) = AsyncStream<RESPValue>.makeStream()
        var configuration = client.configuration
        configuration.clientName = configuration.clientName.map { "\($0)-pubsub" }
        let connection = try await RedisConnection.connect(to: endpoint, configuration: configuration, onPush: { sink.yield($0) })
        do {
            guard connection.protocolVersion == 3 else {
                throw RedisClientError.unexpectedReply("\(endpoint) does not speak RESP3; sharded Pub/Sub needs Redis ≥ 7")
            }
            let confirmation = try await connection.send(["SSUBSCRIBE", .string(name)])
            guard confirmation.array?.first?.string?.lowercased() == "ssubscribe" else {
                throw RedisClientError.unexpectedReply("SSUBSCRIBE: \(confirmation)")
            }
            await onSubscribed()
            let name = self.name
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    // A node that stops answering (paused, cut off) keeps the socket open: only a ping notices.
                    while true {
                        try await Task.sleep(for: heartbeat)
                        _ = try await connection.send(["PING"])
                    }
                }
                group.addTask {
                    await connection.closed()
                    sink.finish()
                    throw RedisClientError.connectionClosed
                }
                group.addTask {
                    for await push in pushes {
                        guard let items = push.array, let kind = items.first?.string?.lowercased() else { continue }
                        switch kind {
                        case "smessage" where items.count >= 3:
                            if items[1].string == name, let text = items[2].string { await onMessage(text) }
                        case "sunsubscribe":
                            // The slot moved (resharding, failover): the node no longer delivers this channel.
                            throw RedisClientError.unexpectedReply("\(endpoint) unsubscribed \(name)")
                        default:
                            continue
                        }
                    }
                    throw RedisClientError.connectionClosed
                }
                do {
                    try await group.next()
                } catch {
                    await connection.close()  // ends the other two tasks, which the group then awaits
                    throw error
                }
            }
        } catch {
            await connection.close()
            throw error
        }
    }
}
