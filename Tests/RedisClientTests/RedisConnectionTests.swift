import Foundation
import NIOCore
@testable import RedisClient
import StorefrontContracts
import Testing

/// The URL of a real Redis started by scripts/test-servers. Missing → the test fails (an engine that is
/// not there is not a pass).
func testRedisURL(_ variable: String = "STOREFRONT_TEST_REDIS_URL") throws -> String {
    try TestServers.required(variable)
}

func testKey(_ name: String = #function) -> String { "test:\(name):\(UUID().uuidString)" }

@Suite("Redis connection (real redis-server)")
struct RedisConnectionTests {
    func configuration(_ variable: String = "STOREFRONT_TEST_REDIS_URL", _ tweak: (inout RedisConfiguration) -> Void = { _ in }) throws -> RedisConfiguration {
        var c = try RedisConfiguration(url: try testRedisURL(variable))
        tweak(&c)
        return c
    }

    @Test func negotiatesRESP3AndRoundTripsBinaryValues() async throws {
        let config = try configuration()
        let connection = try await RedisConnection.connect(to: config.endpoints[0], configuration: config)
        defer { Task { await connection.close() } }
        #expect(connection.protocolVersion == 3)
        let key = testKey()
        var value = ByteBuffer(string: "line1\r\nline2\u{0}ünï")
        value.writeBytes([0xFF, 0x00, 0x0D, 0x0A])
        try await connection.send(["SET", .string(key), .bytes(value), "PX", 10_000])
        #expect(try await connection.send(["GET", .string(key)]) == .bulkString(value))
        #expect(try await connection.send(["GET", .string(key + ":missing")]) == .null)
    }

    @Test func pipelinedRepliesComeBackInOrder() async throws {
        let config = try configuration()
        let connection = try await RedisConnection.connect(to: config.endpoints[0], configuration: config)
        defer { Task { await connection.close() } }
        let key = testKey()
        let replies = try await connection.pipeline((0..<1000).map { _ in ["INCR", .string(key)] })
        #expect(replies.map { $0.int ?? -1 } == Array(1...1000).map(Int64.init))
        try await connection.send(["DEL", .string(key)])
    }

    @Test func manyTasksShareMultiplexedConnections() async throws {
        let client = try RedisClient(configuration: try configuration { $0.connectionsPerNode = 2 })
        let prefix = testKey()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 0..<300 {
                group.addTask {
                    try await client.send(["SET", .string("\(prefix):\(n)"), .string("v\(n)"), "PX", 10_000])
                    let back = try await client.send(["GET", .string("\(prefix):\(n)")])
                    #expect(back.string == "v\(n)")
                }
            }
            try await group.waitForAll()
        }
        await client.close()
    }

    @Test func errorRepliesAreTypedAndTheConnectionStaysUsable() async throws {
        let config = try configuration()
        let connection = try await RedisConnection.connect(to: config.endpoints[0], configuration: config)
        defer { Task { await connection.close() } }
        let key = testKey()
        try await connection.send(["SET", .string(key), "text", "PX", 10_000])
        await #expect(throws: RedisServerError.self) { try await connection.send(["INCR", .string(key)]) }
        do {
            try await connection.send(["LPUSH", .string(key), "x"])
            Issue.record("expected WRONGTYPE")
        } catch let error as RedisServerError {
            #expect(error.code == "WRONGTYPE")
        }
        #expect(try await connection.send(["PING"]).string == "PONG")
    }

    @Test func aCommandPastItsDeadlineFailsAndTheClientRecovers() async throws {
        let client = try RedisClient(configuration: try configuration {
            $0.commandTimeout = .milliseconds(200)
            $0.connectionsPerNode = 1
        })
        let start = ContinuousClock.now
        await #expect(throws: RedisClientError.timeout) { try await client.send(["BLPOP", .string(testKey()), "30"]) }
        #expect(ContinuousClock.now - start < .seconds(10), "well before BLPOP's own 30 s")
        try await client.ping()  // a new connection replaced the timed-out one
        await client.close()
    }

    @Test func cancellationStopsWaitingAtOnce() async throws {
        let config = try configuration()
        let connection = try await RedisConnection.connect(to: config.endpoints[0], configuration: config)
        defer { Task { await connection.close() } }
        let key = testKey()
        let waiting = Task { try await connection.send(["BLPOP", .string(key), "30"]) }
        try await Task.sleep(for: .milliseconds(100))
        let start = ContinuousClock.now
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        #expect(ContinuousClock.now - start < .seconds(10), "well before BLPOP's own 30 s")
        // BLPOP still holds the connection in the server; a push from elsewhere ends it, and its reply (discarded)
        // must not be taken for the PING's.
        let other = try await RedisConnection.connect(to: config.endpoints[0], configuration: config)
        _ = try await other.send(["RPUSH", .string(key), "woken"])
        await other.close()
        #expect(try await connection.send(["PING"]).string == "PONG", "the discarded reply kept FIFO order")
    }

    @Test func aKilledConnectionIsReplaced() async throws {
        let client = try RedisClient(configuration: try configuration { $0.connectionsPerNode = 1 })
        let config = try configuration()
        let admin = try await RedisConnection.connect(to: config.endpoints[0], configuration: config)
        defer { Task { await admin.close() } }
        let id = try #require(try await client.send(["CLIENT", "ID"]).int)
        try await admin.send(["CLIENT", "KILL", "ID", RESPArgument(id)])
        var recovered: Int64?
        for _ in 0..<5 {
            if let newID = try? await client.send(["CLIENT", "ID"]).int {
                recovered = newID
                break
            }
            try await Task.sleep(for: .milliseconds(60))
        }
        #expect(recovered != nil && recovered != id)
        await client.close()
    }

    @Test func authenticatesWithACLUserAndPassword() async throws {
        let acl = try RedisClient(configuration: try configuration("STOREFRONT_TEST_REDIS_AUTH_URL"))
        #expect(try await acl.send(["ACL", "WHOAMI"]).string == "app")
        let password = try RedisClient(configuration: try configuration("STOREFRONT_TEST_REDIS_PASSWORD_URL"))
        #expect(try await password.send(["ACL", "WHOAMI"]).string == "default")
        var wrong = try configuration("STOREFRONT_TEST_REDIS_AUTH_URL")
        wrong.password = "nope"
        await #expect(throws: (any Error).self) { try await RedisConnection.connect(to: wrong.endpoints[0], configuration: wrong) }
        let anonymous = try configuration("STOREFRONT_TEST_REDIS_PASSWORD_URL") { $0.password = nil }
        do {
            _ = try await RedisConnection.connect(to: anonymous.endpoints[0], configuration: anonymous)
            Issue.record("connected without credentials")
        } catch let error as RedisServerError {
            #expect(error.code == "NOAUTH")
        }
        await acl.close()
        await password.close()
    }

    @Test func fallsBackToRESP2WhenTheServerHasNoHELLO() async throws {
        let config = try configuration("STOREFRONT_TEST_REDIS_RESP2_URL")
        let connection = try await RedisConnection.connect(to: config.endpoints[0], configuration: config)
        #expect(connection.protocolVersion == 2)
        let key = testKey()
        try await connection.send(["SET", .string(key), "v", "PX", 10_000])
        #expect(try await connection.send(["GET", .string(key)]).string == "v")
        #expect(try await connection.send(["MGET", .string(key), "nope"]) == .array([.bulkString(ByteBuffer(string: "v")), .null]))
        await connection.close()
    }

    @Test func talksTLSWithATrustedCA() async throws {
        let ca = try testRedisURL("STOREFRONT_TEST_REDIS_TLS_CA")
        let trusted = try configuration("STOREFRONT_TEST_REDIS_TLS_URL") { $0.tlsCAFile = ca }
        #expect(trusted.tls)
        let client = try RedisClient(configuration: trusted)
        try await client.ping()
        let key = testKey()
        try await client.send(["SET", .string(key), "secret-value", "PX", 10_000])
        #expect(try await client.send(["GET", .string(key)]).string == "secret-value")
        await client.close()
        // Without the CA the server's certificate is not trusted: the handshake fails, nothing is sent.
        let untrusted = try configuration("STOREFRONT_TEST_REDIS_TLS_URL")
        await #expect(throws: (any Error).self) { try await RedisConnection.connect(to: untrusted.endpoints[0], configuration: untrusted) }
        // And a plain connection to the TLS port gets nowhere.
        var plain = trusted
        plain.tls = false
        plain.connectTimeout = .milliseconds(500)
        await #expect(throws: (any Error).self) { try await RedisConnection.connect(to: plain.endpoints[0], configuration: plain) }
    }

    @Test func scriptsFallBackToEvalOnNoScript() async throws {
        let client = try RedisClient(configuration: try configuration())
        let script = RedisScript("return tonumber(ARGV[1]) + 1 + #KEYS")
        try await client.send(["SCRIPT", "FLUSH"])
        #expect(try await client.eval(script, keys: ["a"], arguments: [41]).int == 43)
        #expect(try await client.send(["SCRIPT", "EXISTS", .string(script.sha1)]).array?.first?.int == 1, "sha matches the server's")
        #expect(try await client.eval(script, keys: [], arguments: [1]).int == 2)
        await client.close()
    }

    @Test func aDownNodeFailsFastInsteadOfHanging() async throws {
        let client = try RedisClient(configuration: RedisConfiguration(endpoints: [RedisEndpoint(host: "127.0.0.1", port: 1)],
                                                                       connectionsPerNode: 1, maxReconnectDelay: .seconds(5)))
        await #expect(throws: RedisClientError.self) { try await client.ping() }
        do {
            try await client.ping()
            Issue.record("a down node answered")
        } catch let error as RedisClientError {
            // Within the back-off window no new connection is attempted: the known failure is returned at once.
            #expect("\(error)".contains("is down"), "\(error)")
        }
        await client.close()
    }
}
