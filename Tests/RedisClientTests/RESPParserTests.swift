import NIOCore
@testable import RedisClient
import Testing

@Suite("RESP parser")
struct RESPParserTests {
    func parse(_ text: String, _ parser: RESPParser = RESPParser()) throws -> RESPValue? {
        var buffer = ByteBuffer(string: text)
        return try parser.parse(&buffer)
    }

    @Test func everyType() throws {
        #expect(try parse("+OK\r\n") == .simpleString("OK"))
        #expect(try parse("-ERR bad\r\n") == .error("ERR bad"))
        #expect(try parse(":-42\r\n") == .integer(-42))
        #expect(try parse("$5\r\nhe\r\no\r\n") == .bulkString(ByteBuffer(string: "he\r\no")), "binary-safe bulk")
        #expect(try parse("$0\r\n\r\n") == .bulkString(ByteBuffer()))
        #expect(try parse("$-1\r\n") == .null)
        #expect(try parse("*-1\r\n") == .null)
        #expect(try parse("_\r\n") == .null)
        #expect(try parse("*2\r\n:1\r\n$1\r\na\r\n") == .array([.integer(1), .bulkString(ByteBuffer(string: "a"))]))
        #expect(try parse("*0\r\n") == .array([]))
        #expect(try parse("#t\r\n") == .boolean(true))
        #expect(try parse(",3.5\r\n") == .double(3.5))
        #expect(try parse(",inf\r\n") == .double(.infinity))
        #expect(try parse("(12345678901234567890\r\n") == .bigNumber("12345678901234567890"))
        #expect(try parse("=8\r\ntxt:abcd\r\n") == .verbatimString("abcd"))
        #expect(try parse("!3\r\nERR\r\n") == .error("ERR"))
        #expect(try parse("%1\r\n+k\r\n:1\r\n") == .map([.simpleString("k"), .integer(1)]))
        #expect(try parse("~1\r\n+a\r\n") == .set([.simpleString("a")]))
        #expect(try parse(">2\r\n+pubsub\r\n+x\r\n") == .push([.simpleString("pubsub"), .simpleString("x")]))
        #expect(try parse("|1\r\n+ttl\r\n:3\r\n+real\r\n") == .simpleString("real"), "attributes are skipped")
    }

    @Test func incompleteFramesConsumeNothing() throws {
        let full = "*3\r\n$3\r\nfoo\r\n:7\r\n%1\r\n+a\r\n#f\r\n"
        for cut in 0..<full.utf8.count {
            var buffer = ByteBuffer(string: String(full.utf8.prefix(cut))!)
            let before = buffer.readableBytes
            #expect(try RESPParser().parse(&buffer) == nil, "prefix of \(cut) bytes")
            #expect(buffer.readableBytes == before)
        }
        var buffer = ByteBuffer(string: full + "+NEXT\r\n")
        #expect(try RESPParser().parse(&buffer)?.array?.count == 3)
        #expect(try RESPParser().parse(&buffer) == .simpleString("NEXT"), "frames are consumed exactly")
        #expect(buffer.readableBytes == 0)
    }

    @Test func malformedFramesAreErrors() {
        let bad = [
            "?oops\r\n", ":12a\r\n", "$abc\r\n", "$-5\r\n", "*-2\r\n", "$3\r\nabcXY", "#x\r\n", ",1.2.3\r\n", "_x\r\n",
            "+OK\rX", "$99999999999999999999999\r\n", "(12a\r\n",
        ]
        for text in bad {
            #expect(throws: RESPError.self, "\(text.debugDescription)") { try parse(text) }
        }
    }

    @Test func capsAreEnforced() throws {
        let small = RESPParser(maxBulkLength: 10, maxElements: 4, maxDepth: 3, maxLineLength: 16)
        #expect(throws: RESPError.self) { try parse("$11\r\n", small) }
        #expect(throws: RESPError.self) { try parse("*5\r\n", small) }
        #expect(throws: RESPError.self) { try parse("%3\r\n", small) }
        #expect(throws: RESPError.self) { try parse("*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", small) }
        #expect(throws: RESPError.self) { try parse("+" + String(repeating: "a", count: 40), small) }
        #expect(try parse("*1\r\n*1\r\n:1\r\n", small) == .array([.array([.integer(1)])]))
    }

    @Test func fuzzedInputNeverCrashes() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("*$:+-_#,(=!%~>|\r\n0123456789-abc".utf8)
        var outcomes = (parsed: 0, incomplete: 0, rejected: 0)
        for _ in 0..<20_000 {
            let length = Int.random(in: 0...40, using: &rng)
            var bytes = (0..<length).map { _ in alphabet.randomElement(using: &rng)! }
            if Bool.random(using: &rng) { bytes += (0..<Int.random(in: 0...8)).map { _ in UInt8.random(in: 0...255, using: &rng) } }
            var buffer = ByteBuffer(bytes: bytes)
            do {
                if try RESPParser(maxBulkLength: 1 << 20, maxElements: 1 << 10).parse(&buffer) != nil { outcomes.parsed += 1 } else { outcomes.incomplete += 1 }
            } catch is RESPError {
                outcomes.rejected += 1
            } catch {
                Issue.record("unexpected error type \(error)")
            }
        }
        #expect(outcomes.rejected > 0 && outcomes.incomplete > 0)
    }

    @Test func encodesCommandsAsBulkArrays() throws {
        var buffer = ByteBuffer()
        RESPCommandEncoder.encode(["SET", "k", .string("välue"), 42], into: &buffer)
        #expect(String(buffer: buffer) == "*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$6\r\nvälue\r\n$2\r\n42\r\n")
        var again = buffer
        #expect(try RESPParser().parse(&again)?.array?.count == 4, "what we encode, we can parse")
    }

    @Test func sha1MatchesKnownVectors() {
        #expect(SHA1.hex("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(SHA1.hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(SHA1.hex(String(repeating: "a", count: 1000)) == "291e9a6c66994949b57ba5e650361e98fc36b1ba")
    }

    @Test func hashSlotsFollowTheClusterSpec() {
        #expect(HashSlot.crc16(Array("123456789".utf8)[...]) == 0x31C3, "CRC16/XMODEM check value")
        #expect(HashSlot.slot(of: "123456789") == 12739)
        #expect(HashSlot.slot(of: "{user1000}.following") == HashSlot.slot(of: "{user1000}.followers"))
        #expect(HashSlot.slot(of: "foo{}{bar}") == HashSlot.slot(of: "foo{}{bar}") && HashSlot.slot(of: "foo{}{bar}") != HashSlot.slot(of: "bar"),
                "empty tag: the whole key is hashed")
        #expect(HashSlot.slot(of: "foo{{bar}}zap") == HashSlot.slot(of: "{bar"))
        #expect(HashSlot.slot(of: "product:{42}:stock") == HashSlot.slot(of: "42"))
        #expect((0..<1000).map { HashSlot.slot(of: "key:\($0)") }.allSatisfy { (0..<16384).contains($0) })
    }

    @Test func parsesURLs() throws {
        let plain = try RedisConfiguration(url: "redis://127.0.0.1:6380/2")
        #expect(plain.endpoints == [RedisEndpoint(host: "127.0.0.1", port: 6380)] && plain.database == 2 && !plain.tls && !plain.cluster)
        let auth = try RedisConfiguration(url: "rediss://app:p%40ss@cache.internal")
        #expect(auth.username == "app" && auth.password == "p@ss" && auth.tls && auth.endpoints[0].port == 6379)
        let passwordOnly = try RedisConfiguration(url: "redis://:secret@h:1")
        #expect(passwordOnly.username == nil && passwordOnly.password == "secret")
        let cluster = try RedisConfiguration(url: "redis+cluster://a:7000,b:7001,[::1]:7002")
        #expect(cluster.cluster && cluster.endpoints.map(\.description) == ["a:7000", "b:7001", "::1:7002"])
        for bad in ["http://x", "redis://", "redis://h:0", "redis://h:99999", "redis://a:1,b:2", "redis+cluster://a:1/3", "redis://h/x"] {
            #expect(throws: RedisClientError.self, "\(bad)") { try RedisConfiguration(url: bad) }
        }
    }
}
