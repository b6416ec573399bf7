import Foundation
import NIOCore
@testable import RedisClient
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What a subscription reported, in order, for tests to wait on.
final class ChannelEvents: Sendable {
    private let events = Mutex<[RedisShardChannel.Event]>([])

    func record(_ event: RedisShardChannel.Event) { events.withLock { $0.append(event) } }
    var all: [RedisShardChannel.Event] { events.withLock { $0 } }
    func count(_ event: RedisShardChannel.Event) -> Int { all.filter { $0 == event }.count }

    /// Waits until `predicate` holds over the events so far (false after `timeout`).
    func wait(timeout: Duration = .seconds(10), _ predicate: ([RedisShardChannel.Event]) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if predicate(all) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return predicate(all)
    }
}

extension RedisShardChannel.Event {
    var isUnsubscribed: Bool { if case .unsubscribed = self { true } else { false } }
}

@Suite("Sharded Pub/Sub channel (real redis-server)")
struct RedisShardChannelTests {
    func follow(_ channel: RedisShardChannel, heartbeat: Duration = .milliseconds(500)) -> (ChannelEvents, Task<Void, Never>) {
        let events = ChannelEvents()
        let task = Task { await channel.run(heartbeat: heartbeat) { events.record($0) } }
        return (events, task)
    }

    /// On the cluster: two subscribers (two app servers) on the channel's master both get every message, in order.
    @Test func everySubscriberGetsEveryMessageInOrder() async throws {
        let url = try testRedisURL("STOREFRONT_TEST_REDIS_CLUSTER_URL")
        let name = testKey()
        let a = RedisShardChannel(client: try RedisClient(configuration: try RedisConfiguration(url: url)), name: name)
        let b = RedisShardChannel(client: try RedisClient(configuration: try RedisConfiguration(url: url)), name: name)
        let (eventsA, taskA) = follow(a), (eventsB, taskB) = follow(b)
        defer { taskA.cancel(); taskB.cancel() }
        #expect(await eventsA.wait { $0.contains(.subscribed) })
        #expect(await eventsB.wait { $0.contains(.subscribed) })
        for n in 1...20 { #expect(try await a.publish("m\(n)") == 2, "both subscribers are on the channel's node") }
        let expected = [RedisShardChannel.Event.subscribed] + (1...20).map { .message("m\($0)") }
        #expect(await eventsA.wait { $0 == expected })
        #expect(await eventsB.wait { $0 == expected })
    }

    /// A subscription whose connection is killed reports it, resubscribes on its own, and gets messages again.
    @Test func aKilledConnectionIsReportedAndResubscribed() async throws {
        var configuration = try RedisConfiguration(url: try testRedisURL("STOREFRONT_TEST_REDIS_CLUSTER_URL"))
        let clientName = "shardtest-\(UInt32.random(in: 0...UInt32.max))"
        configuration.clientName = clientName
        let client = try RedisClient(configuration: configuration)
        let channel = RedisShardChannel(client: client, name: testKey())
        let (events, task) = follow(channel)
        defer { task.cancel() }
        #expect(await events.wait { $0 == [.subscribed] })
        let node = try await client.endpoint(forKey: channel.name)
        let list = try #require(try await client.cluster!.send(to: node, ["CLIENT", "LIST"]).string)
        let id = try #require(list.split(separator: "\n").first { $0.contains("name=\(clientName)-pubsub ") }
            .flatMap { $0.split(separator: " ").first { $0.hasPrefix("id=") } }?.dropFirst(3))
        #expect(try await client.cluster!.send(to: node, ["CLIENT", "KILL", "ID", .string(String(id))]).int == 1)
        #expect(await events.wait { $0.count == 3 && $0[1].isUnsubscribed && $0[2] == .subscribed }, "\(events.all)")
        try await channel.publish("after")
        #expect(await events.wait { $0.last == .message("after") })
    }

    /// A node that stops answering (SIGSTOP) keeps its sockets open: only the heartbeat notices. The subscription
    /// reports it within heartbeat + command timeout, and is back after SIGCONT.
    @Test func aPausedNodeIsNoticedByTheHeartbeat() async throws {
        let port = Int.random(in: 20_000...29_000)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        server.arguments = ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        // By pid: Foundation may take a stopped child for an exited one and then not signal it.
        defer { Glibc.kill(server.processIdentifier, SIGKILL) }
        var configuration = RedisConfiguration(endpoints: [RedisEndpoint(host: "127.0.0.1", port: port)])
        configuration.commandTimeout = .milliseconds(400)
        configuration.connectTimeout = .milliseconds(400)
        let client = try RedisClient(configuration: configuration)
        let up = ContinuousClock.now + .seconds(10)
        while (try? await client.ping()) == nil, ContinuousClock.now < up { try await Task.sleep(for: .milliseconds(50)) }
        let channel = RedisShardChannel(client: client, name: "paused")
        let (events, task) = follow(channel, heartbeat: .milliseconds(200))
        defer { task.cancel() }
        #expect(await events.wait { $0 == [.subscribed] })

        let paused = ContinuousClock.now
        #expect(Glibc.kill(server.processIdentifier, SIGSTOP) == 0)
        #expect(await events.wait(timeout: .seconds(5)) { $0.count == 2 }, "\(events.all)")
        let noticed = ContinuousClock.now - paused
        #expect(noticed < .seconds(4), "heartbeat 200 ms + timeout 400 ms, noticed after \(noticed)")
        #expect(events.all.last?.isUnsubscribed == true, "\(events.all)")

        #expect(Glibc.kill(server.processIdentifier, SIGCONT) == 0)
        #expect(await events.wait { $0.last == .subscribed && $0.count == 3 }, "\(events.all)")
        try await channel.publish("42")
        #expect(await events.wait { $0.last == .message("42") })
    }
}
