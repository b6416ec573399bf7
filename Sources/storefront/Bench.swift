import ArgumentParser
import Foundation
import Logging
import MariaDB
import RedisClient
import StorefrontApp
import StorefrontCore
import StorefrontMariaDB
import Synchronization

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks against a baseline measured in the same run.", subcommands: [RedisBench.self, MariaDBBench.self])
}

/// `storefront bench redis`: this client vs `redis-benchmark` on the same server, same concurrency.
struct RedisBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis",
        abstract: "GET/SET and pipelined GET throughput of Storefront's Redis client vs redis-benchmark (same server, same run).")

    @Option(help: "Redis URL (standalone).") var url = "redis://127.0.0.1:6379"
    @Option(help: "Requests per test.") var requests = 100_000
    @Option(help: "Concurrent requests in flight (redis-benchmark -c).") var concurrency = 50
    @Option(help: "Commands per pipeline for the pipelined test (redis-benchmark -P).") var pipeline = 16
    @Option(help: "Connections the Storefront client multiplexes over.") var connections = 4

    func run() async throws {
        var config = try RedisConfiguration(url: url)
        config.connectionsPerNode = connections
        guard !config.cluster else { throw ValidationError("bench redis needs a standalone redis:// URL") }
        let endpoint = config.endpoints[0]
        let client = try RedisClient(configuration: config)
        try await client.ping()  // fail now if the server is not there (redis-benchmark would retry forever)
        let baseline = try redisBenchmark(endpoint, pipeline: 1)
        let baselinePipelined = try redisBenchmark(endpoint, pipeline: pipeline)
        _ = try await RedisBenchmark.run(client: client, requests: min(requests, 10_000), concurrency: concurrency, pipeline: pipeline)  // warm-up
        let ours = try await RedisBenchmark.run(client: client, requests: requests, concurrency: concurrency, pipeline: pipeline)
        await client.close()

        let reference = [ours[0].name: baseline["SET"], ours[1].name: baseline["GET"], ours[2].name: baselinePipelined["GET"]]
        print("redis bench: \(requests) requests, concurrency \(concurrency), server \(endpoint), client connections \(connections)")
        print("test".padding(toLength: 22, withPad: " ", startingAt: 0) + "storefront req/s   redis-benchmark req/s   ratio")
        for result in ours {
            let base = reference[result.name] ?? nil
            let ratio = base.map { String(format: "%.2f", result.requestsPerSecond / $0) } ?? "n/a"
            print(result.name.padding(toLength: 22, withPad: " ", startingAt: 0)
                  + String(format: "%16.0f", result.requestsPerSecond) + String(format: "%24.0f", base ?? .nan) + "   " + ratio)
        }
    }

    /// Runs redis-benchmark and returns requests/s per test (SET, GET).
    private func redisBenchmark(_ endpoint: RedisEndpoint, pipeline: Int) throws -> [String: Double] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var arguments = ["redis-benchmark", "-h", endpoint.host, "-p", String(endpoint.port), "-t", "set,get", "-n", String(requests),
                         "-c", String(concurrency), "-P", String(pipeline), "-d", "3", "--csv"]
        if let password = try RedisConfiguration(url: url).password { arguments += ["-a", password] }
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // A watchdog: redis-benchmark never gives up on a server that went away.
        let watchdog = DispatchWorkItem { [process] in if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(300), execute: watchdog)
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        watchdog.cancel()
        guard process.terminationStatus == 0 else { throw ValidationError("redis-benchmark failed (is redis-tools installed?)") }
        var rates: [String: Double] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            if fields.count >= 2, let rate = Double(fields[1]) { rates[fields[0]] = rate }
        }
        return rates
    }
}

/// `storefront bench mariadb`: confirmed purchases/s through the whole saga write path (begin, reserve,
/// order, payment, confirm: one transaction each, outbox included) vs MariaDB's own hot-row ceiling measured by
/// `mariadb-slap` on the same server in the same run.
struct MariaDBBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mariadb",
        abstract: "Saga write path (purchases/s, one hot product and 1000 products) vs mariadb-slap's hot-row update rate.")

    @Option(help: "MariaDB primary (mysql://user:pass@host:port/db; the user needs CREATE on storefront_bench_*).")
    var url = "mysql://app:apppass@127.0.0.1:3306/storefront"
    @Option(help: "Purchases per test.") var purchases = 2000
    @Option(help: "Concurrent purchases (and mariadb-slap clients).") var concurrency = 16

    func run() async throws {
        let base = try MariaDBConfiguration(url: url)
        let slapPerSecond = try slap(base)
        print("mariadb bench: \(purchases) purchases per test, concurrency \(concurrency), server \(base.host):\(base.port)")
        print("baseline: mariadb-slap hot-row UPDATE (autocommit) \(String(format: "%.0f", slapPerSecond)) transactions/s")
        print("test".padding(toLength: 30, withPad: " ", startingAt: 0) + "purchases/s   transactions/s   ratio to baseline (transactions)")
        for mode in [PurchaseMode.atomic, .lock] {
            for distinct in [1, 1000] {
                let rate = try await measure(base, mode: mode, products: distinct)
                // A confirmed purchase is 6 write transactions: begin, reserve, order, the (simulated) provider's
                // ledger entry, payment recorded, confirm — each with its outbox rows.
                let transactions = rate * 6
                let name = "\(mode.rawValue), \(distinct == 1 ? "1 hot product" : "\(distinct) products")"
                print(name.padding(toLength: 30, withPad: " ", startingAt: 0) + String(format: "%11.0f", rate)
                      + String(format: "%17.0f", transactions) + String(format: "   %.2f", transactions / slapPerSecond))
            }
        }
    }

    /// A throw-away database, a Storefront on it (in-process lock and counter: only the database is measured).
    private func measure(_ base: MariaDBConfiguration, mode: PurchaseMode, products: Int) async throws -> Double {
        let (name, urls) = try await MariaDBDatabase.createScratchDatabase(on: url, prefix: "storefront_bench", pointing: [url])
        var config = StorefrontConfig(instanceID: "bench")
        config.databaseURL = urls[0]
        config.purchaseMode = mode
        config.lockWaitMilliseconds = 50
        config.databasePoolSize = concurrency
        config.logLevel = "error"
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let storefront = try await Storefront(config: config, logger: logger)
        var ids: [Int64] = []
        for n in 0..<products {
            let p = try await storefront.database.products.create(
                NewProduct(sku: "b-\(n)", name: "Bench \(n)", description: "", priceMinor: 100, currency: "USD", stock: Int64(purchases)), now: Date())
            ids.append(p.id)
        }
        let purchaseService = storefront.services.purchases
        let tickets = Tickets()
        let productIDs = ids
        let purchases = self.purchases
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var confirmed = 0
                    while true {
                        let n = tickets.next.wrappingAdd(1, ordering: .relaxed).oldValue
                        guard n < purchases else { return confirmed }
                        // Lock mode: a busy product is retried at once (one purchase per product at a time).
                        while true {
                            do {
                                _ = try await purchaseService.purchase(PurchaseRequest(productId: productIDs[n % productIDs.count], qty: 1))
                                break
                            } catch StorefrontError.productBusy {
                                try await Task.sleep(for: .milliseconds(1))
                            }
                        }
                        confirmed += 1
                    }
                }
            }
            var total = 0
            for try await c in group { total += c }
            guard total == purchases else { throw ValidationError("only \(total) of \(purchases) purchases confirmed") }
        }
        let elapsed = ContinuousClock.now - started
        await storefront.shutdown()
        var admin = base
        admin.database = nil
        _ = try await MariaDBConnection.withConnection(admin) { connection in
            try await connection.withSession { try $0.execute("DROP DATABASE \(name)") }
        }
        return Double(purchases) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// mariadb-slap: `concurrency` clients updating one row (autocommit), `purchases * 6` updates in all.
    private func slap(_ base: MariaDBConfiguration) throws -> Double {
        let queries = purchases * 6
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var arguments = ["mariadb-slap", "--no-defaults", "-h", base.host, "-P", String(base.port), "-u", base.user,
                         "--create-schema=storefront_bench_slap", "--concurrency=\(concurrency)", "--iterations=1", "--delimiter=;",
                         "--number-of-queries=\(queries)",
                         "--create=CREATE TABLE hot (id INT PRIMARY KEY, n BIGINT NOT NULL) ENGINE=InnoDB; INSERT INTO hot VALUES (1, 0)",
                         "--query=UPDATE hot SET n = n + 1 WHERE id = 1"]
        if let password = base.password { arguments.append("--password=\(password)") }
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0,
              let line = text.split(separator: "\n").first(where: { $0.contains("Average number of seconds to run all queries") }),
              let seconds = Double(line.split(separator: ":").last?.split(separator: " ").first ?? "")
        else { throw ValidationError("mariadb-slap failed (is mariadb-client installed?): \(text.prefix(300))") }
        return Double(queries) / max(seconds, 0.001)
    }
}

/// Hands out purchase numbers to the benchmark's workers.
final class Tickets: Sendable {
    let next = Atomic<Int>(0)
}
