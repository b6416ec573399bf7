import Foundation
import Hummingbird
import HTTPTypes
import NIOCore
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

    @Test func theJobQueueIsFirstInFirstOutAndEnds() async {
        let queue = JobQueue()
        let t0 = ContinuousClock.now
        for i in 0..<3 { queue.push(.init(index: i, intended: t0)) }
        #expect(await queue.pop()?.index == 0)
        #expect(await queue.pop()?.index == 1)
        queue.finish()
        #expect(await queue.pop()?.index == 2, "what was queued is still handed out")
        #expect(await queue.pop() == nil)
        // A waiting consumer gets the next push, and nil at the end.
        let later = JobQueue()
        async let first = later.pop()
        try? await Task.sleep(for: .milliseconds(50))
        later.push(.init(index: 7, intended: t0))
        #expect(await first?.index == 7)
        async let none = later.pop()
        try? await Task.sleep(for: .milliseconds(50))
        later.finish()
        #expect(await none == nil)
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
