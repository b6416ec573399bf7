import ArgumentParser
import Foundation
import StorefrontLoad
import Synchronization

/// `storefront load SCENARIO --url U …`: a load generator a user can point at any deployment (docs/benchmarks.md).
struct Load: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Offer load to a running Storefront (embedded, one app server, or nginx) and report latency percentiles.",
        discussion: """
            Open loop by default (--rate): requests are sent on schedule whether or not earlier ones returned, and each
            latency is measured from its intended send time, so a slow server cannot hide behind a slowed-down client.
            --clients N runs a closed loop instead (N clients, each sending when its previous request returned).
            Scenarios: view-hit, view-miss, purchase-distinct, purchase-hot, mix (the seed's 4000:800:1200).
            Purchase scenarios check the invariants afterwards through the API and the admin endpoints (admin token
            needed) and exit 1 if one breaks.
            shoppers (for the failover drills): --clients N closed-loop shoppers who view a product, then buy it with
            one Idempotency-Key per intent, retried as the server asks; --product-ids picks the products; every
            request and intent is written to --records FILE. Ends after --duration or on SIGTERM (clients finish
            the intent they are in).
            """)

    @Argument(help: "view-hit | view-miss | purchase-distinct | purchase-hot | mix | shoppers") var scenario: String
    @Option(help: "The target: http://host:port or https://host:port.") var url = "http://127.0.0.1:8080"
    @Option(help: "Open loop: requests per second offered.") var rate: Double?
    @Option(help: "Closed loop instead: this many clients.") var clients: Int?
    @Option(help: "Seconds measured.") var duration = 10
    @Option(help: "Seconds of warm-up before (sent, not measured).") var warmup = 2
    @Option(help: "Open loop: connections (requests wait for a free one; the wait counts).") var connections = 64
    @Option(help: "Admin token (default: STOREFRONT_ADMIN_TOKEN) — to create the run's products and check invariants.") var adminToken: String?
    @Option(help: "purchase-distinct, mix: products purchases spread over.") var products = 1000
    @Option(help: "purchase-hot: the product's stock (default: half the purchases offered).") var stock: Int64?
    @Option(help: "TLS: the CA file that signs the server's certificate.") var caFile: String?
    @Flag(help: "TLS: do not verify the server's certificate.") var insecure = false
    @Option(help: "Write the results as JSON to this file.") var json: String?
    @Flag(help: "No progress line every second.") var quiet = false
    @Option(help: "shoppers: the products, as id:weight,id:weight,… (a heavier one is picked more often).") var productIds: String?
    @Option(help: "shoppers: write every request and purchase intent as JSON to this file.") var records: String?
    @Option(help: "shoppers: seconds one purchase intent keeps retrying before it is abandoned.") var intentDeadline = 20.0
    @Option(help: "shoppers: the share of purchases sent without an Idempotency-Key (never retried).") var unkeyedShare = 0.1
    @Option(help: "shoppers: the seed of the shoppers' choices.") var seed: UInt64 = 1

    func run() async throws {
        if scenario == "shoppers" { return try await runShoppers() }
        guard let name = LoadScenario(rawValue: scenario) else {
            throw ValidationError("unknown scenario \(scenario): one of \(LoadScenario.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let model: LoadModel
        switch (rate, clients) {
        case (let rate?, nil):
            guard rate > 0, rate <= 1_000_000 else { throw ValidationError("--rate must be between 0 and 1000000") }
            model = .open(rate: rate)
        case (nil, let clients?):
            guard clients > 0, clients <= 10_000 else { throw ValidationError("--clients must be between 1 and 10000") }
            model = .closed(clients: clients)
        case (nil, nil): model = .open(rate: 100)
        default: throw ValidationError("give --rate (open loop) or --clients (closed loop), not both")
        }
        guard duration > 0, warmup >= 0, connections > 0, products > 0 else {
            throw ValidationError("--duration, --connections and --products must be positive, --warmup not negative")
        }
        let target: LoadTarget
        do { target = try LoadTarget(url: url, caFile: caFile, insecure: insecure) } catch let error as LoadError { throw ValidationError(error.description) }
        var settings = LoadSettings(scenario: name, target: target, model: model)
        settings.duration = .seconds(duration)
        settings.warmup = .seconds(warmup)
        settings.connections = connections
        settings.adminToken = adminToken ?? ProcessInfo.processInfo.environment["STOREFRONT_ADMIN_TOKEN"]
        settings.products = products
        settings.hotStock = stock
        settings.progress = !quiet
        let result: LoadTest.Result
        do {
            result = try await LoadTest(settings: settings).run { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
        } catch let error as LoadError {
            throw ValidationError(error.description)
        }
        for line in result.lines { print(line) }
        if let json {
            let data = try JSONSerialization.data(withJSONObject: result.json, options: [.prettyPrinted, .sortedKeys])
            try data.write(to: URL(fileURLWithPath: json))
        }
        if !result.invariantsHold { throw ExitCode(1) }
    }

    func runShoppers() async throws {
        guard let clients, clients > 0, clients <= 10_000, rate == nil else { throw ValidationError("shoppers: give --clients N (closed loop), not --rate") }
        guard let productIds, let records else { throw ValidationError("shoppers: give --product-ids and --records") }
        var products: [(id: Int64, weight: Double)] = []
        for item in productIds.split(separator: ",") {
            let parts = item.split(separator: ":")
            guard let id = parts.first.flatMap({ Int64($0) }), id > 0, parts.count <= 2,
                  let weight = parts.count == 2 ? Double(parts[1]) : 1, weight > 0
            else { throw ValidationError("--product-ids: expected id:weight,id:weight,…, not \(item)") }
            products.append((id, weight))
        }
        guard !products.isEmpty, duration > 0, intentDeadline > 0, (0...1).contains(unkeyedShare) else {
            throw ValidationError("shoppers: --product-ids must name a product, --duration and --intent-deadline be positive, --unkeyed-share within 0…1")
        }
        let target: LoadTarget
        do { target = try LoadTarget(url: url, caFile: caFile, insecure: insecure) } catch let error as LoadError { throw ValidationError(error.description) }
        var settings = ShopperLoad.Settings(target: target, clients: clients, products: products, duration: .seconds(duration))
        settings.intentDeadline = .milliseconds(Int(intentDeadline * 1000))
        settings.unkeyedShare = unkeyedShare
        settings.seed = seed
        // SIGTERM (the drill stopping its load): no new intents; the current ones finish, the records are written.
        let stopped = StopFlag()
        signal(SIGTERM, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
        source.setEventHandler { stopped.set() }
        source.resume()
        defer { source.cancel() }
        let progress: (@Sendable (String) -> Void)? = quiet ? nil : { @Sendable line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
        let (json, summary) = try await ShopperLoad(settings: settings).run(stop: { stopped.isSet }, progress: progress)
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: records))
        print(summary)
    }
}

/// Set once, from a signal handler's queue; read by the shoppers.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func set() { flag.store(true, ordering: .relaxed) }
    var isSet: Bool { flag.load(ordering: .relaxed) }
}
