import Foundation
import NIOCore
@testable import RedisClient
import Testing

@Suite("Redis Cluster client (real 6-node cluster)")
struct RedisClusterTests {
    func client() throws -> (RedisClient, RedisClusterClient) {
        let client = try RedisClient(configuration: try RedisConfiguration(url: try testRedisURL("STOREFRONT_TEST_REDIS_CLUSTER_URL")))
        return (client, try #require(client.cluster))
    }

    @Test func discoversThreeMastersCoveringEverySlot() async throws {
        let (_, cluster) = try client()
        try await cluster.discover()
        #expect(cluster.masters.count == 3)
        #expect((0..<HashSlot.count).allSatisfy { cluster.master(for: "k\($0)") != nil })
    }

    @Test func routesEveryKeyToItsSlotsMaster() async throws {
        let (client, cluster) = try client()
        let prefix = testKey()
        var used: Set<RedisEndpoint> = []
        for n in 0..<200 {
            let key = "\(prefix):\(n)"
            try await client.send(["SET", .string(key), .string("v\(n)"), "PX", 10_000], key: key)
            #expect(try await client.send(["GET", .string(key)], key: key).string == "v\(n)")
            used.insert(try #require(cluster.master(for: key)))
        }
        #expect(used.count == 3, "keys spread over all masters")
        // a script runs on the master of its first key
        let key = "\(prefix):script"
        #expect(try await client.eval(RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])"), keys: [key], arguments: [5]).int == 5)
    }

    @Test func followsMovedAndRepairsTheMap() async throws {
        let (client, cluster) = try client()
        let key = testKey()
        try await client.send(["SET", .string(key), "x", "PX", 10_000], key: key)
        let right = try #require(cluster.master(for: key))
        let wrong = try #require(cluster.masters.first { $0 != right })
        cluster.overrideSlot(HashSlot.slot(of: key), to: wrong)
        #expect(try await client.send(["GET", .string(key)], key: key).string == "x", "followed MOVED")
        #expect(cluster.master(for: key) == right, "the map was corrected")
    }

    @Test func followsAskDuringASlotMigration() async throws {
        let (client, cluster) = try client()
        let key = testKey()
        try await cluster.discover()
        let slot = HashSlot.slot(of: key)
        let sourceEndpoint = try #require(cluster.master(for: key))
        let targetEndpoint = try #require(cluster.masters.first { $0 != sourceEndpoint })
        let config = try RedisConfiguration(url: try testRedisURL("STOREFRONT_TEST_REDIS_CLUSTER_URL"))
        let source = try await RedisConnection.connect(to: sourceEndpoint, configuration: config)
        let target = try await RedisConnection.connect(to: targetEndpoint, configuration: config)
        let sourceID = try #require(try await source.send(["CLUSTER", "MYID"]).string)
        let targetID = try #require(try await target.send(["CLUSTER", "MYID"]).string)
        try await target.send(["CLUSTER", "SETSLOT", RESPArgument(Int64(slot)), "IMPORTING", .string(sourceID)])
        try await source.send(["CLUSTER", "SETSLOT", RESPArgument(Int64(slot)), "MIGRATING", .string(targetID)])
        do {
            // The key is not on the source, so the source answers ASK and the client must follow it.
            try await client.send(["SET", .string(key), "moved-by-ask"], key: key)
            #expect(try await client.send(["GET", .string(key)], key: key).string == "moved-by-ask")
            #expect(try await target.pipeline([["ASKING"], ["GET", .string(key)]])[1].string == "moved-by-ask", "written on the target")
            #expect(cluster.master(for: key) == sourceEndpoint, "ASK does not change the map")
            _ = try await target.pipeline([["ASKING"], ["DEL", .string(key)]])
        } catch {
            Issue.record("\(error)")
        }
        try await source.send(["CLUSTER", "SETSLOT", RESPArgument(Int64(slot)), "STABLE"])
        try await target.send(["CLUSTER", "SETSLOT", RESPArgument(Int64(slot)), "STABLE"])
        await source.close()
        await target.close()
    }

    @Test func parsesClusterSlotsAndRedirects() throws {
        let reply = RESPValue.array([
            .array([.integer(0), .integer(5460), .array([.bulkString(ByteBuffer(string: "10.0.0.1")), .integer(7000), .bulkString(ByteBuffer(string: "id"))])]),
            .array([.integer(5461), .integer(16383), .array([.bulkString(ByteBuffer(string: "")), .integer(7001)])]),
        ])
        let (slots, masters) = try RedisClusterClient.parseSlots(reply)
        #expect(masters == [RedisEndpoint(host: "10.0.0.1", port: 7000), RedisEndpoint(host: "127.0.0.1", port: 7001)])
        #expect(slots[0] == masters[0] && slots[5460] == masters[0] && slots[5461] == masters[1] && slots[16383] == masters[1])
        #expect(throws: RedisClientError.self) { try RedisClusterClient.parseSlots(.array([.array([.integer(9), .integer(1)])])) }
        #expect(RedisClusterClient.redirect("MOVED 3999 127.0.0.1:6381")?.0 == 3999)
        #expect(RedisClusterClient.redirect("ASK 12 h:7002")?.1 == RedisEndpoint(host: "h", port: 7002))
        #expect(RedisClusterClient.redirect("MOVED x y") == nil)
    }
}
