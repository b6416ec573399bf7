import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The scenarios of `storefront load`.
public enum LoadScenario: String, CaseIterable, Sendable {
    /// Product views of a small set of products, warmed first: cache hits.
    case viewHit = "view-hit"
    /// Product views of products never viewed before (created for the run): cache misses → replica.
    case viewMiss = "view-miss"
    /// Purchases spread over many products with ample stock.
    case purchaseDistinct = "purchase-distinct"
    /// Purchases of one product with limited stock: many buyers, some sold out.
    case purchaseHot = "purchase-hot"
    /// The seed's mix: 4000 cache hits : 800 replica reads : 1200 purchases.
    case mix

    var purchases: Bool { self == .purchaseDistinct || self == .purchaseHot || self == .mix }
}

public struct LoadSettings: Sendable {
    public var scenario: LoadScenario
    public var target: LoadTarget
    public var model: LoadModel
    public var connections = 64
    public var duration: Duration = .seconds(10)
    public var warmup: Duration = .seconds(2)
    public var adminToken: String?
    /// purchase-distinct and mix: how many products purchases spread over.
    public var products = 1000
    /// purchase-hot: the hot product's stock (nil: half the purchases the run is expected to offer).
    public var hotStock: Int64?
    /// view-miss and mix: at most this many products are created to be viewed for the first time.
    public var maxColdProducts = 20_000
    public var progress = true

    public init(scenario: LoadScenario, target: LoadTarget, model: LoadModel) {
        self.scenario = scenario
        self.target = target
        self.model = model
    }

    /// Requests the run will offer (open loop), or a guess (closed loop: 2000/s).
    var expectedRequests: Int {
        let seconds = Double((duration + warmup).components.seconds)
        switch model {
        case .open(let rate): return Int(rate * seconds) + 1
        case .closed: return Int(2000 * seconds)
        }
    }
}

/// Every purchase the run sent, by Idempotency-Key, and what it came to.
final class PurchaseLedger: Sendable {
    enum Outcome: Sendable, Equatable {
        case confirmed
        case rejected(String)
        /// No final answer (5xx, 202, no answer): resolved after the run by replaying the key.
        case unknown
    }

    struct Entry: Sendable {
        var product: Int64
        var qty: Int64
        var outcome: Outcome
    }

    private let entries = Mutex<[String: Entry]>([:])

    /// An answer during the run: 201 confirmed; any 4xx final (429 from a rate limit bought nothing, nor did
    /// `product_busy`); 202, 5xx or no answer unknown.
    static func outcome(_ reply: HTTPReply?) -> Outcome {
        guard let reply else { return .unknown }
        switch reply.status {
        case 201: return .confirmed
        case 400..<500: return .rejected(reply.errorCode ?? "\(reply.status)")
        default: return .unknown
        }
    }

    /// An answer to a replay of an unknown outcome's key: `product_busy` and 429 say nothing about the
    /// original (it may still be running on the server): still unknown.
    static func replayOutcome(_ reply: HTTPReply?) -> Outcome {
        guard let reply, reply.status != 429, reply.errorCode != "product_busy" else { return .unknown }
        return outcome(reply)
    }

    func note(key: String, product: Int64, qty: Int64, _ outcome: Outcome) {
        entries.withLock { $0[key] = Entry(product: product, qty: qty, outcome: outcome) }
    }

    var all: [String: Entry] { entries.withLock { $0 } }
}

/// Runs one scenario: setup through the API, the load, then (purchase scenarios) the invariants.
public struct LoadTest: Sendable {
    public let settings: LoadSettings
    let runID = String(UUID().uuidString.prefix(8)).lowercased()

    public init(settings: LoadSettings) { self.settings = settings }

    /// What a run produced: the report's lines, a machine-readable dictionary, and whether every invariant held.
    public struct Result: Sendable {
        public var lines: [String]
        public var json: [String: any Sendable]
        public var invariantsHold: Bool
    }

    public func run(log: @escaping @Sendable (String) -> Void) async throws -> Result {
        let admin = try LoadAdminClient(target: settings.target, token: settings.adminToken, group: MultiThreadedEventLoopGroup.singleton)
        let scenario = settings.scenario
        log("storefront load \(scenario.rawValue): setting up on \(settings.target)")
        var hot: [Int64] = []
        var cold: [Int64] = []
        var buy: [Int64] = []
        var initial: [Int64: Int64] = [:]
        if scenario == .viewHit || scenario == .mix {
            hot = try await existingOrCreated(admin, count: 100)
            _ = try await admin.parallel(hot, connections: 8) { connection, id in try await connection.send(.GET, "/products/\(id)") }
        }
        if scenario == .viewMiss || scenario == .mix {
            let share = scenario == .mix ? 2.0 / 15 : 1
            cold = try await create(admin, count: min(settings.maxColdProducts, Int(Double(settings.expectedRequests) * share) + 1), stock: 100, tag: "cold")
        }
        switch scenario {
        case .purchaseDistinct, .mix:
            buy = try await create(admin, count: settings.products, stock: 1_000_000, tag: "buy")
            for id in buy { initial[id] = 1_000_000 }
        case .purchaseHot:
            let stock = settings.hotStock ?? Int64(max(10, settings.expectedRequests / 2))
            buy = try await create(admin, count: 1, stock: stock, tag: "hot")
            initial[buy[0]] = stock
        default:
            break
        }
        let before = try? await cacheCounts(admin)

        let ledger = PurchaseLedger()
        let coldNext = Tickets()
        let runID = self.runID
        let (hotSet, coldSet, buySet) = (hot, cold, buy)
        let request: @Sendable (Int) -> LoadRequest = { index in
            func view(_ kind: LoadRequest.Kind) -> LoadRequest {
                if kind == .viewHit { return LoadRequest(kind: .viewHit, path: "/products/\(hotSet[index % hotSet.count])") }
                let next = coldNext.next()
                return LoadRequest(kind: .viewMiss, path: "/products/\(coldSet[next % coldSet.count])")
            }
            func purchase() -> LoadRequest {
                let product = buySet.count == 1 ? buySet[0] : buySet[Int.random(in: 0..<buySet.count)]
                return LoadRequest(kind: .purchase, path: "/purchase", purchase: (product, 1, "load-\(runID)-\(index)"))
            }
            switch scenario {
            case .viewHit: return view(.viewHit)
            case .viewMiss: return view(.viewMiss)
            case .purchaseDistinct, .purchaseHot: return purchase()
            case .mix:
                // 4000 : 800 : 1200 = 10 : 2 : 3 of every 15 requests.
                switch index % 15 {
                case 0..<10: return view(.viewHit)
                case 10..<12: return view(.viewMiss)
                default: return purchase()
                }
            }
        }
        log("storefront load \(scenario.rawValue): \(describe(settings.model)) for \(settings.duration.components.seconds) s after \(settings.warmup.components.seconds) s of warm-up, \(settings.connections) connections")
        let runner = LoadRunner(target: settings.target, model: settings.model, connections: settings.connections,
                                duration: settings.duration, warmup: settings.warmup, progress: settings.progress ? log : nil)
        let recorder = try await runner.run(request) { request, reply in
            guard let purchase = request.purchase else { return }
            ledger.note(key: purchase.key, product: purchase.product, qty: purchase.qty, PurchaseLedger.outcome(reply))
        }
        let after = try? await cacheCounts(admin)

        var lines: [String] = []
        var json: [String: any Sendable] = [
            "scenario": scenario.rawValue, "target": settings.target.description,
            "durationSeconds": Int(settings.duration.components.seconds), "warmupSeconds": Int(settings.warmup.components.seconds),
        ]
        switch settings.model {
        case .open(let rate): json["model"] = "open"; json["rate"] = rate
        case .closed(let clients): json["model"] = "closed"; json["clients"] = clients
        }
        let connections: Int
        switch settings.model {
        case .open: connections = settings.connections
        case .closed(let clients): connections = clients
        }
        lines.append("storefront load \(scenario.rawValue) → \(settings.target): \(describe(settings.model)), \(settings.duration.components.seconds) s measured after \(settings.warmup.components.seconds) s of warm-up, \(connections) connections")
        // Achieved: what was measured over the time it took (an overloaded server drains its backlog after the
        // offered window: the rate it really served is lower than the rate offered).
        let measuredCount = recorder.summaries.values.reduce(0) { $0 + Int($1.count) }
        let span = recorder.lastMeasured.map { $0 - recorder.measureFrom } ?? settings.duration
        let spanSeconds = max(Double(span.components.seconds) + Double(span.components.attoseconds) / 1e18, Double(settings.duration.components.seconds))
        let achieved = Double(measuredCount) / spanSeconds
        lines.append(String(format: "  achieved %.1f req/s (%d answered in %.1f s)", achieved, measuredCount, spanSeconds)
                     + (recorder.maxBacklog > 0 ? ", at most \(recorder.maxBacklog) requests waited for a free connection" : ""))
        json["achievedPerSecond"] = achieved
        json["maxBacklog"] = recorder.maxBacklog
        lines.append("  latency from the intended send time (open loop: waiting for a free connection counts)")
        lines.append("  class          count     req/s   p50 ms   p90 ms   p99 ms  p99.9 ms   max ms")
        let seconds = spanSeconds
        var classes: [String: any Sendable] = [:]
        for (name, s) in recorder.summaries.sorted(by: { $0.key < $1.key }) {
            lines.append(String(format: "  %-12@ %7llu %9.1f %8.2f %8.2f %8.2f %9.2f %8.2f", name as NSString, s.count, Double(s.count) / seconds, s.p50, s.p90, s.p99, s.p999, s.max))
            classes[name] = ["count": Int(s.count), "perSecond": Double(s.count) / seconds, "p50": s.p50, "p90": s.p90, "p99": s.p99,
                             "p999": s.p999, "max": s.max, "mean": s.mean] as [String: any Sendable]
        }
        json["classes"] = classes
        json["connections"] = connections
        let statuses = recorder.statuses
        lines.append("  answers: " + statuses.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", "))
        json["answers"] = statuses
        json["timeline"] = recorder.timeline
        if let before, let after {
            let hits = after.hits - before.hits, misses = after.misses - before.misses
            lines.append("  server's product cache during the run (/metrics): \(hits) hits, \(misses) misses")
            json["cache"] = ["hits": hits, "misses": misses]
        }

        var holds = true
        if scenario.purchases {
            let check = try await verify(admin, ledger: ledger, initial: initial, log: log)
            lines.append(contentsOf: check.lines)
            json["invariants"] = ["hold": check.holds, "violations": check.violations, "confirmed": check.confirmed,
                                  "resolvedAfterRun": check.resolved] as [String: any Sendable]
            holds = check.holds
        }
        return Result(lines: lines, json: json, invariantsHold: holds)
    }

    func describe(_ model: LoadModel) -> String {
        switch model {
        case .open(let rate): return "open loop at \(Int(rate)) req/s"
        case .closed(let clients): return "closed loop, \(clients) clients"
        }
    }

    /// Up to `count` products of the catalogue (GET /products), else created.
    func existingOrCreated(_ admin: LoadAdminClient, count: Int) async throws -> [Int64] {
        let reply = try await admin.call(.GET, "/products?limit=\(count)")
        let ids = ((reply.json?["items"] as? [[String: Any]]) ?? []).compactMap { ($0["id"] as? NSNumber)?.int64Value }
        if !ids.isEmpty { return ids }
        return try await create(admin, count: count, stock: 100, tag: "view")
    }

    func create(_ admin: LoadAdminClient, count: Int, stock: Int64, tag: String) async throws -> [Int64] {
        let runID = self.runID
        guard admin.token != nil else { throw LoadError("\(settings.scenario.rawValue) creates its products: give --admin-token or set STOREFRONT_ADMIN_TOKEN") }
        let token = admin.token!
        return try await admin.parallel(Array(0..<count), connections: 8) { connection, i in
            let body = #"{"sku":"load-\#(runID)-\#(tag)-\#(i)","name":"Load \#(tag) \#(i)","description":"made by storefront load","priceMinor":1000,"currency":"USD","stock":\#(stock)}"#
            let reply = try await connection.send(.POST, "/admin/products", headers: [("Authorization", "Bearer \(token)")], body: ByteBuffer(string: body))
            guard reply.status == 201, let id = (reply.json?["id"] as? NSNumber)?.int64Value else {
                throw LoadError("creating a product answered \(reply.status) \(String(buffer: reply.body))")
            }
            return id
        }
    }

    /// The server's product cache counters, from `/metrics` (nil when the target does not serve them).
    func cacheCounts(_ admin: LoadAdminClient) async throws -> (hits: Int, misses: Int)? {
        let reply = try await admin.call(.GET, "/metrics")
        guard reply.status == 200 else { return nil }
        var hits = 0, misses = 0
        for line in String(buffer: reply.body).split(separator: "\n") where line.hasPrefix("storefront_product_cache_total") {
            let value = Int(Double(line.split(separator: " ").last ?? "") ?? 0)
            if line.contains(#"result="hit""#) { hits += value } else if line.contains(#"result="miss""#) { misses += value }
        }
        return (hits, misses)
    }

    struct Check {
        var lines: [String] = []
        var violations: [String] = []
        var confirmed = 0
        var resolved = 0
        var holds: Bool { violations.isEmpty }
    }

    /// After a purchase scenario: every purchase without a final answer is asked again with its key until it
    /// has one; then, through the admin API (the primary), per product: nothing reserved, stock + confirmed
    /// quantity = initial stock (no oversell, nothing lost), no saga unfinished or needing attention.
    func verify(_ admin: LoadAdminClient, ledger: PurchaseLedger, initial: [Int64: Int64], log: @Sendable (String) -> Void) async throws -> Check {
        var check = Check()
        log("storefront load: checking the invariants")
        let unknown = ledger.all.filter { $0.value.outcome == .unknown }
        if !unknown.isEmpty {
            // One deadline for the whole phase (not per purchase), and a replay honours Retry-After.
            let deadline = ContinuousClock.now + .seconds(120)
            let resolved = try await admin.parallel(Array(unknown), connections: 8) { connection, item -> (String, PurchaseLedger.Outcome) in
                var outcome = PurchaseLedger.Outcome.unknown
                var conn = connection
                var opened: LoadConnection?
                defer { if let opened { Task { await opened.close() } } }
                while outcome == .unknown, ContinuousClock.now < deadline {
                    if !conn.isActive {
                        if let opened { await opened.close() }
                        conn = try await LoadConnection.connect(to: admin.target, tls: admin.tls, group: admin.group)
                        opened = conn
                    }
                    let reply = try? await conn.send(.POST, "/purchase", headers: [("Idempotency-Key", item.key)],
                                                     body: ByteBuffer(string: #"{"productId":\#(item.value.product),"qty":\#(item.value.qty)}"#))
                    outcome = PurchaseLedger.replayOutcome(reply)
                    if outcome == .unknown {
                        let wait = reply?.retryAfter.flatMap(Double.init).map { min($0, 5) } ?? 0.5
                        try await Task.sleep(for: .milliseconds(Int(wait * 1000)))
                    }
                }
                return (item.key, outcome)
            }
            for (key, outcome) in resolved {
                let entry = unknown[key]!
                ledger.note(key: key, product: entry.product, qty: entry.qty, outcome)
                if outcome == .unknown { check.violations.append("purchase \(key) has no final answer 120 s after the run") }
            }
            check.resolved = resolved.filter { $0.1 != .unknown }.count
        }
        let entries = ledger.all
        var sold: [Int64: Int64] = [:]
        for entry in entries.values where entry.outcome == .confirmed { sold[entry.product, default: 0] += entry.qty }
        check.confirmed = entries.values.filter { $0.outcome == .confirmed }.count
        let products = Set(initial.keys)

        // Sagas of these products still running (recovery finishes them) — wait, then none may be left.
        let deadline = ContinuousClock.now + .seconds(60)
        var unfinished = 0, attention = 0
        repeat {
            // Sagas that need a person are counted below, not waited for.
            attention = try await sagas(admin, state: "needs_attention", products: products)
            unfinished = try await sagas(admin, state: "unfinished", products: products) - attention
            if unfinished > 0 { try await Task.sleep(for: .milliseconds(500)) }
        } while unfinished > 0 && ContinuousClock.now < deadline
        if unfinished > 0 { check.violations.append("\(unfinished) saga(s) of the run still unfinished 60 s after it") }
        if attention > 0 { check.violations.append("\(attention) saga(s) of the run need attention") }

        let rows = try await admin.parallel(Array(products), connections: 8) { connection, id -> (Int64, Int64?, Int64?) in
            let reply = try await connection.send(.GET, "/admin/products/\(id)", headers: [("Authorization", "Bearer \(admin.token ?? "")")])
            let json = reply.json
            return (id, (json?["stock"] as? NSNumber)?.int64Value, (json?["reserved"] as? NSNumber)?.int64Value)
        }
        var oversold = 0
        for (id, stock, reserved) in rows {
            guard let stock, let reserved else { check.violations.append("GET /admin/products/\(id) did not answer stock and reserved"); continue }
            let want = initial[id]! - sold[id, default: 0]
            if stock < 0 || sold[id, default: 0] > initial[id]! { oversold += 1 }
            if stock != want { check.violations.append("product \(id): stock \(stock), expected \(initial[id]!) − \(sold[id, default: 0]) confirmed = \(want)") }
            if reserved != 0 { check.violations.append("product \(id): \(reserved) unit(s) still reserved") }
        }
        if oversold > 0 { check.violations.append("\(oversold) product(s) OVERSOLD") }
        let rejected = Dictionary(grouping: entries.values.compactMap { entry -> String? in
            if case .rejected(let code) = entry.outcome { return code }
            return nil
        }, by: { $0 }).mapValues(\.count)
        check.lines.append("  purchases: \(entries.count) sent, \(check.confirmed) confirmed (\(check.resolved) resolved after the run by replaying their key), rejected: \(rejected.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
        check.lines.append(check.holds
            ? "  invariants hold: per product stock + confirmed = initial (\(products.count) product(s)), nothing reserved, no oversell, every saga finished"
            : "  INVARIANTS VIOLATED:\n" + check.violations.prefix(20).map { "    - \($0)" }.joined(separator: "\n"))
        return check
    }

    func sagas(_ admin: LoadAdminClient, state: String, products: Set<Int64>) async throws -> Int {
        let reply = try await admin.call(.GET, "/admin/sagas?state=\(state)&limit=1000", admin: true)
        guard reply.status == 200 else { throw LoadError("GET /admin/sagas answered \(reply.status) \(String(buffer: reply.body))") }
        let items = (reply.json?["items"] as? [[String: Any]]) ?? []
        return items.filter { products.contains(($0["productId"] as? NSNumber)?.int64Value ?? -1) }.count
    }
}
