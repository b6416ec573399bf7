import Foundation
import Hummingbird
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
}
