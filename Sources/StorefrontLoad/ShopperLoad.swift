import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// `storefront load shoppers`: closed-loop shoppers who behave like people at a checkout, for the failover
/// drills (scripts/cluster-drill). Each client looks at a product (`GET /products/{id}`), then buys it: one
/// purchase intent with its own `Idempotency-Key` (one in ten carries none, like a careless client, and is
/// never retried), retried with the same key after `Retry-After` on `product_busy`, 429, 503 or a lost
/// answer, until it has a final answer or its deadline passes; then a short pause and the next product.
///
/// Every request and every intent is recorded with wall-clock times (seconds since 1970, so a drill can
/// compare them with when it injected a fault) and written as JSON: what the drill's checks read.
/// The run ends after `duration` or when `stop` says so (SIGTERM from the drill); clients finish the intent
/// they are in (bounded by its deadline) and start no new one.
public struct ShopperLoad: Sendable {
    public struct Settings: Sendable {
        public var target: LoadTarget
        public var clients: Int
        /// (product id, weight): the products shoppers pick from, the heavier more often.
        public var products: [(id: Int64, weight: Double)]
        public var duration: Duration
        /// How long one intent keeps retrying before the shopper gives up on it ("abandoned").
        public var intentDeadline: Duration = .seconds(20)
        /// The share of purchases sent without an Idempotency-Key.
        public var unkeyedShare = 0.1
        /// Prefix of every Idempotency-Key (so keys of different runs never meet).
        public var runID = String(UUID().uuidString.prefix(8)).lowercased()
        public var seed: UInt64 = 1
        /// A request's timeout (no answer: recorded as "timeout", the connection is closed).
        public var requestTimeout: Duration = .seconds(25)

        public init(target: LoadTarget, clients: Int, products: [(id: Int64, weight: Double)], duration: Duration) {
            self.target = target
            self.clients = clients
            self.products = products
            self.duration = duration
        }
    }

    /// One request: when it was sent and answered (s since 1970), what it was, the status (a number, or
    /// `timeout` / `connect_error` / `io_error`), the API's error code, and which client sent it.
    struct Request: Sendable {
        var sent: Double
        var done: Double
        var kind: String
        var status: String
        var code: String?
        var client: Int
        var hadRetryAfter: Bool
    }

    struct Answer: Sendable {
        var status: String
        var code: String?
        var orderID: Int64?
        var sagaID: String?
    }

    struct Intent: Sendable {
        var key: String?
        var product: Int64
        var qty: Int64
        var answers: [Answer] = []
        /// The final status, or "abandoned" (keyed, no final answer before the deadline), or the last status of
        /// an unkeyed purchase that had none.
        var final: String?
    }

    private final class Log: Sendable {
        let requests = Mutex<[Request]>([])
        let intents = Mutex<[Intent]>([])
    }

    public let settings: Settings
    public init(settings: Settings) { self.settings = settings }

    /// Runs the shoppers; returns the JSON document (`requests`, `intents`, `missingRetryAfter`) and a summary.
    public func run(stop: @escaping @Sendable () -> Bool, progress: (@Sendable (String) -> Void)? = nil) async throws -> (json: [String: Any], summary: String) {
        precondition(!settings.products.isEmpty && settings.clients > 0)
        let tls = try LoadConnection.tlsContext(for: settings.target)
        let log = Log()
        let end = ContinuousClock.now + settings.duration
        let shouldStop: @Sendable () -> Bool = { stop() || ContinuousClock.now >= end }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<settings.clients {
                group.addTask { try await shopper(index, tls: tls, log: log, shouldStop: shouldStop) }
            }
            if let progress {
                group.addTask {
                    while !shouldStop() {
                        try await Task.sleep(for: .seconds(1))
                        let (requests, intents) = (log.requests.withLock { $0.count }, log.intents.withLock { $0.count })
                        progress("  \(requests) requests, \(intents) purchase intents")
                    }
                }
            }
            try await group.waitForAll()
        }
        let requests = log.requests.withLock { $0 }
        let intents = log.intents.withLock { $0 }
        let missing = requests.filter { ($0.status == "429" || $0.status == "503") && !$0.hadRetryAfter && $0.kind == "purchase" }.count
        let json: [String: Any] = [
            "requests": requests.map { r -> [Any] in
                [r.sent, r.done, r.kind, Int(r.status).map { $0 as Any } ?? r.status, r.code.map { $0 as Any } ?? NSNull(), r.client]
            },
            "intents": intents.map { i -> [String: Any] in
                ["key": i.key.map { $0 as Any } ?? NSNull(), "product": i.product, "qty": i.qty,
                 "final": i.final.map { Int($0).map { $0 as Any } ?? $0 } ?? NSNull(),
                 "answers": i.answers.map { a -> [Any] in
                     [Int(a.status).map { $0 as Any } ?? a.status, a.code.map { $0 as Any } ?? NSNull(),
                      a.orderID.map { $0 as Any } ?? NSNull(), a.sagaID.map { $0 as Any } ?? NSNull()]
                 }]
            },
            "missingRetryAfter": missing,
        ]
        var byStatus: [String: Int] = [:]
        for r in requests { byStatus["\(r.kind) \(r.status)" + (r.code.map { " \($0)" } ?? ""), default: 0] += 1 }
        let summary = "shoppers: \(requests.count) requests, \(intents.count) purchase intents; "
            + byStatus.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        return (json, summary)
    }

    private func shopper(_ index: Int, tls: NIOSSLContext?, log: Log, shouldStop: @escaping @Sendable () -> Bool) async throws {
        var rng = SplitMix64(seed: settings.seed &* 0x9E37_79B9 &+ UInt64(index) &* 7919 &+ 17)
        var connection: LoadConnection?
        var n = 0
        let totalWeight = settings.products.reduce(0) { $0 + $1.weight }
        while !shouldStop() {
            var pick = Double.random(in: 0..<totalWeight, using: &rng)
            var product = settings.products[settings.products.count - 1].id
            for candidate in settings.products {
                pick -= candidate.weight
                if pick < 0 { product = candidate.id; break }
            }
            // A shopper looks at the product first.
            let view = await send(.GET, "/products/\(product)", key: nil, body: nil, connection: &connection, tls: tls)
            log.requests.withLock { $0.append(Request(sent: view.sent, done: view.done, kind: "view", status: view.status, code: view.reply?.errorCode,
                                                      client: index, hadRetryAfter: view.reply?.retryAfter != nil)) }
            n += 1
            let keyed = Double.random(in: 0..<1, using: &rng) >= settings.unkeyedShare
            let qty: Int64 = [1, 1, 1, 2][Int.random(in: 0..<4, using: &rng)]
            let key = keyed ? "drill-\(settings.runID)-\(index)-\(n)" : nil
            try await buy(index, product: product, qty: qty, key: key, log: log, connection: &connection, tls: tls, rng: &rng)
            try await Task.sleep(for: .milliseconds(Int.random(in: 20...80, using: &rng)))
        }
        await connection?.close()
    }

    private func buy(_ index: Int, product: Int64, qty: Int64, key: String?, log: Log, connection: inout LoadConnection?, tls: NIOSSLContext?,
                     rng: inout SplitMix64) async throws {
        var intent = Intent(key: key, product: product, qty: qty)
        let deadline = ContinuousClock.now + settings.intentDeadline
        let body = #"{"productId":\#(product),"qty":\#(qty)}"#
        while true {
            let answer = await send(.POST, "/purchase", key: key, body: body, connection: &connection, tls: tls)
            let code = answer.reply?.errorCode
            log.requests.withLock { $0.append(Request(sent: answer.sent, done: answer.done, kind: "purchase", status: answer.status, code: code,
                                                      client: index, hadRetryAfter: answer.reply?.retryAfter != nil)) }
            let json = answer.reply?.json
            intent.answers.append(Answer(status: answer.status, code: code, orderID: (json?["orderId"] as? NSNumber)?.int64Value,
                                         sagaID: json?["sagaId"] as? String))
            let status = answer.reply?.status ?? 0
            if [201, 202].contains(status) || ([402, 409, 422].contains(status) && code != "product_busy") {
                intent.final = answer.status
                break
            }
            if key == nil || ContinuousClock.now > deadline {
                intent.final = key == nil ? answer.status : "abandoned"
                break
            }
            // product_busy, 503, 429, a lost answer: the same intent again (same key), when the server asks.
            let wait = answer.reply?.retryAfter.flatMap(Double.init) ?? 0.5
            try await Task.sleep(for: .milliseconds(Int(min(wait, 1.0) * Double.random(in: 0.5...1.0, using: &rng) * 1000)))
        }
        let finished = intent
        log.intents.withLock { $0.append(finished) }
    }

    /// One request on the client's connection: a GET or a keyed POST that fails on a reused connection is
    /// sent once more on a new one; an unkeyed POST never is (nginx may have received it: it could buy twice).
    private func send(_ method: HTTPMethod, _ path: String, key: String?, body: String?, connection: inout LoadConnection?,
                      tls: NIOSSLContext?) async -> (sent: Double, done: Double, status: String, reply: HTTPReply?) {
        let sent = Date().timeIntervalSince1970
        let result = await LoadConnection.exchange(&connection, target: settings.target, tls: tls, resendable: !(method == .POST && key == nil),
                                                   method, path, headers: key.map { [("Idempotency-Key", $0)] } ?? [],
                                                   body: body.map { ByteBuffer(string: $0) }, timeout: settings.requestTimeout)
        return (sent, Date().timeIntervalSince1970, result.reply.map { String($0.status) } ?? result.failure, result.reply)
    }
}

/// A small seedable generator, so a drill's shoppers make the same choices run after run.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
