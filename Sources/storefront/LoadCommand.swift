import ArgumentParser
import Foundation
import StorefrontLoad

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
            """)

    @Argument(help: "view-hit | view-miss | purchase-distinct | purchase-hot | mix") var scenario: String
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

    func run() async throws {
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
}
