import Foundation
import Hummingbird
import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOPosix
import HummingbirdTesting
@testable import StorefrontLoad
import Synchronization
import Testing

@Suite("storefront load: the load generator")
struct LoadGeneratorTests {
    @Test func targetsAreURLs() throws {
        let plain = try LoadTarget(url: "http://127.0.0.1:8080")
        #expect(plain.host == "127.0.0.1" && plain.port == 8080 && !plain.tls)
        let tls = try LoadTarget(url: "https://shop.example")
        #expect(tls.port == 443 && tls.tls)
        #expect(throws: LoadError.self) { try LoadTarget(url: "ftp://x") }
        #expect(throws: LoadError.self) { try LoadTarget(url: "127.0.0.1:8080") }
    }

    /// A server on raw SwiftNIO that misbehaves on purpose, by path: `/close` answers with `Connection: close`
    /// and closes; `/once` answers a connection's first request and drops the connection on the second
    /// (unanswered, as a server closing an idle keep-alive connection does); `/drop` drops every request;
    /// `/frozen` never answers. Counts the connections it accepted.
    final class Misbehaving: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        private let received: Count
        private var served = 0
        init(received: Count) { self.received = received }
        private var uri = ""

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): uri = head.uri; return
            case .body: return
            case .end: served += 1; received.add()
            }
            switch uri {
            case "/frozen": return
            case "/drop": context.close(promise: nil)
            case "/once" where served > 1: context.close(promise: nil)
            default:
                var headers = HTTPHeaders([("Content-Length", "2")])
                let close = uri == "/close"
                if close { headers.add(name: "Connection", value: "close") }
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: "ok")))), promise: nil)
                let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
                if close { done.whenComplete { _ in context.close(promise: nil) } }
            }
        }
    }

    final class Count: Sendable {
        private let n = Atomic<Int>(0)
        func add() { n.add(1, ordering: .relaxed) }
        var value: Int { n.load(ordering: .relaxed) }
    }

    /// The server, the connections it accepted and the requests it received.
    static func misbehavingServer() async throws -> (channel: any Channel, accepted: Count, received: Count) {
        let accepted = Count(), received = Count()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 64)
            .childChannelInitializer { channel in
                accepted.add()
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Misbehaving(received: received))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return (channel, accepted, received)
    }

    static func closedLoop(_ port: Int, _ path: String, seconds: Int = 1, timeout: Duration = .seconds(30)) async throws -> LoadRecorder {
        var runner = LoadRunner(target: try LoadTarget(url: "http://127.0.0.1:\(port)"), model: .closed(clients: 1), connections: 1,
                                duration: .seconds(seconds), warmup: .zero, progress: nil)
        runner.timeout = timeout
        return try await runner.run({ _ in LoadRequest(kind: .viewHit, path: path) }) { _, _ in }
    }

    /// A connection the server closes — announced (`Connection: close`) or not (dropped under a request that
    /// was written on it) — costs no request: the next goes, or the dropped one goes once more, on a new one.
    @Test func serverClosedConnectionsLoseNoRequest() async throws {
        let (server, accepted, received) = try await Self.misbehavingServer()
        defer { server.close(promise: nil) }
        let port = server.localAddress!.port!

        let announced = try await Self.closedLoop(port, "/close")
        #expect(announced.statuses.keys.sorted() == ["view-hit 200"], "\(announced.statuses)")
        let answered = announced.statuses["view-hit 200"] ?? 0
        #expect(answered > 10)
        #expect(accepted.value >= answered, "one connection per answer")
        #expect(received.value == answered, "closed before the next request: none was sent on a closed connection and resent")

        let before = accepted.value
        let dropped = try await Self.closedLoop(port, "/once")
        #expect(dropped.statuses.keys.sorted() == ["view-hit 200"], "every dropped request was sent again: \(dropped.statuses)")
        let once = dropped.statuses["view-hit 200"] ?? 0
        #expect(once > 10)
        #expect(accepted.value - before >= once, "each connection served one request")
    }

    /// Connections split unevenly over the event loops (3 on 2): every scheduled request goes out once, each
    /// index once; and a request that found a free connection never counts as having waited for one.
    @Test func theOpenLoopSpreadsOverLoopsAndCountsOnlyRealWaits() async throws {
        let (server, _, received) = try await Self.misbehavingServer()
        defer { server.close(promise: nil) }
        let target = try LoadTarget(url: "http://127.0.0.1:\(server.localAddress!.port!)")
        let asked = Mutex<[Int]>([])
        let spread = try await LoadRunner(target: target, model: .open(rate: 300), connections: 3, duration: .seconds(1), warmup: .zero,
                                          progress: nil)
            .run({ i in asked.withLock { $0.append(i) }; return LoadRequest(kind: .viewHit, path: "/ok") }) { _, _ in }
        #expect(spread.statuses == ["view-hit 200": 300], "\(spread.statuses)")
        #expect(received.value == 300)
        #expect(asked.withLock { $0 }.sorted() == Array(0..<300), "each request index once")

        // 5/s on one connection to a server that answers at once: nothing ever waits
        let calm = try await LoadRunner(target: target, model: .open(rate: 5), connections: 1, duration: .seconds(1), warmup: .zero, progress: nil)
            .run({ _ in LoadRequest(kind: .viewHit, path: "/ok") }) { _, _ in }
        #expect(calm.statuses == ["view-hit 200": 5])
        #expect(calm.maxBacklog == 0, "a request sent on a free connection did not wait")
    }

    /// A request dropped on a fresh connection is not sent a third time: it counts as a failure, and the
    /// closed loop pauses before its next (no tight loop against a failing server).
    @Test func aRequestDroppedTwiceIsAFailure() async throws {
        let (server, accepted, _) = try await Self.misbehavingServer()
        defer { server.close(promise: nil) }
        let recorder = try await Self.closedLoop(server.localAddress!.port!, "/drop")
        let failures = recorder.statuses["view-hit failed connect_error"] ?? 0
        #expect(recorder.statuses.keys.sorted() == ["view-hit failed connect_error"], "\(recorder.statuses)")
        #expect(failures >= 2 && failures <= 11, "about one per 100 ms pause: \(failures)")
        // the first request on the pre-connected connection and once more on a new one; every later one on a
        // new connection only (a failure there is not resent)
        #expect(accepted.value <= failures + 1, "\(accepted.value) connections for \(failures) failures")
    }

    /// A server that never answers: each request ends at the timeout (its connection closed), and the run ends.
    @Test func aFrozenServerTimesOutAndTheRunEnds() async throws {
        let (server, _, _) = try await Self.misbehavingServer()
        defer { server.close(promise: nil) }
        let started = ContinuousClock.now
        let recorder = try await Self.closedLoop(server.localAddress!.port!, "/frozen", seconds: 1, timeout: .milliseconds(300))
        #expect(recorder.statuses.keys.sorted() == ["view-hit failed timeout"], "\(recorder.statuses)")
        #expect((recorder.statuses["view-hit failed timeout"] ?? 0) >= 2)
        #expect(ContinuousClock.now - started < .seconds(20), "the run ended")
    }

    /// The point of an open loop: a server that takes 50 ms per request on one connection serves 20/s; offered
    /// 40/s, requests wait for the connection and their latency, measured from when they were meant to be sent,
    /// grows to seconds. A closed loop on the same server reports ~50 ms — it slows down with the server and
    /// hides the queue (coordinated omission).
    @Test func anOpenLoopCountsTheWaitAClosedLoopHides() async throws {
        let router = Router()
        router.get("/slow") { _, _ -> String in
            try await Task.sleep(for: .milliseconds(50))
            return "ok"
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let target = try LoadTarget(url: "http://127.0.0.1:\(client.port!)")
            let request: @Sendable (Int) -> LoadRequest = { _ in LoadRequest(kind: .viewHit, path: "/slow") }
            let open = try await LoadRunner(target: target, model: .open(rate: 40), connections: 1, duration: .seconds(2), warmup: .zero, progress: nil)
                .run(request) { _, _ in }
            let closed = try await LoadRunner(target: target, model: .closed(clients: 1), connections: 1, duration: .seconds(2), warmup: .zero, progress: nil)
                .run(request) { _, _ in }
            let o = try #require(open.summaries["view-hit"])
            let c = try #require(closed.summaries["view-hit"])
            print("[measure] load generator: open loop 40/s on a 20/s server: p50 \(o.p50) ms p99 \(o.p99) ms (\(o.count) sent); closed loop: p50 \(c.p50) ms p99 \(c.p99) ms (\(c.count) sent)")
            #expect(o.count == 80, "every scheduled request is sent, however late")
            #expect(open.statuses["view-hit 200"] == 80)
            #expect(o.p99 > 1000, "the queue shows in the latency")
            #expect(c.p50 < 500 && c.count < 60, "the closed loop slowed down with the server")
        }
    }

    /// The drills' shoppers: each intent keeps its key across a busy answer and ends with a final one; an
    /// unkeyed purchase is never sent twice; every request and intent is recorded; `stop` ends the run with the
    /// current intents finished.
    @Test func shoppersRetryTheSameIntentAndRecordEverything() async throws {
        let seen = Mutex<[String: Int]>([:])  // key → purchases received
        let unkeyed = Atomic<Int>(0)
        let router = Router()
        router.get("/products/:id") { _, _ -> String in "{}" }
        router.post("/purchase") { request, _ -> Response in
            guard let key = request.headers[HTTPField.Name("Idempotency-Key")!] else {
                unkeyed.add(1, ordering: .relaxed)
                return Response(status: .created, body: .init(byteBuffer: ByteBuffer(string: #"{"orderId":1,"sagaId":"s"}"#)))
            }
            let count = seen.withLock { $0[key, default: 0] += 1; return $0[key]! }
            if count == 1 {  // busy first: the same key must come back
                return Response(status: .conflict, headers: [.retryAfter: "0"],
                                body: .init(byteBuffer: ByteBuffer(string: #"{"error":{"code":"product_busy","message":"","requestId":""}}"#)))
            }
            return Response(status: .created, body: .init(byteBuffer: ByteBuffer(string: #"{"orderId":\#(count),"sagaId":"s"}"#)))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            var settings = ShopperLoad.Settings(target: try LoadTarget(url: "http://127.0.0.1:\(client.port!)"), clients: 3,
                                                products: [(7, 4), (8, 1)], duration: .seconds(60))
            settings.unkeyedShare = 0.3
            // Stopped once both kinds were bought a few times (the server's count: a busy machine runs slowly).
            let started = ContinuousClock.now
            let (json, _) = try await ShopperLoad(settings: settings).run(stop: {
                (seen.withLock { $0.count } >= 4 && unkeyed.load(ordering: .relaxed) >= 2) || ContinuousClock.now - started > .seconds(50)
            })
            #expect(ContinuousClock.now - started < .seconds(50), "stop ended the run")
            let intents = try #require(json["intents"] as? [[String: Any]])
            let requests = try #require(json["requests"] as? [[Any]])
            #expect(intents.count >= 6, "\(intents.count)")
            let keyed = intents.filter { !($0["key"] is NSNull) }
            let plain = intents.filter { $0["key"] is NSNull }
            #expect(!keyed.isEmpty && !plain.isEmpty)
            for intent in keyed {
                let answers = intent["answers"] as? [[Any]] ?? []
                #expect(answers.map { $0[0] as? Int } == [409, 201], "\(intent)")
                #expect(intent["final"] as? Int == 201)
            }
            #expect(Set(keyed.compactMap { $0["key"] as? String }).count == keyed.count, "one key per intent")
            #expect(seen.withLock { $0.values.allSatisfy { $0 == 2 } }, "each key sent twice: busy, then confirmed")
            #expect(unkeyed.load(ordering: .relaxed) == plain.count, "an unkeyed purchase is sent once")
            let views = requests.filter { $0[2] as? String == "view" }.count
            let purchases = requests.filter { $0[2] as? String == "purchase" }.count
            #expect(views == intents.count, "a view before every intent")
            #expect(purchases == keyed.count * 2 + plain.count)
            #expect(requests.allSatisfy { ($0[0] as? Double ?? 0) <= ($0[1] as? Double ?? -1) && ($0[0] as? Double ?? 0) > 1.7e9 }, "wall-clock times")
            #expect(Set(intents.compactMap { $0["product"] as? Int64 }).isSubset(of: [7, 8]))
            #expect(json["missingRetryAfter"] as? Int == 0)
        }
    }
}
