import Foundation
import Logging
import MariaDB
import StorefrontApp
import StorefrontCore
import Synchronization

/// `storefront bench mariadb`: confirmed purchases/s through the whole saga write path (open + reserve + order,
/// the provider's ledger, payment + confirm: three transactions, outbox included) vs MariaDB's own hot-row ceiling measured by
/// `mariadb-slap` on the same server in the same run.
public struct SagaWritePathBench: Sendable {
    public var url: String
    public var purchases: Int
    public var concurrency: Int

    public init(url: String, purchases: Int, concurrency: Int) {
        (self.url, self.purchases, self.concurrency) = (url, purchases, concurrency)
    }

    /// Runs the baseline and the four scenarios and reports a table through `print`.
    public func run(print: (String) -> Void) async throws {
        let base = try MariaDBConfiguration(url: url)
        let slapPerSecond = try slap(base)
        print("mariadb bench: \(purchases) purchases per test, concurrency \(concurrency), server \(base.host):\(base.port)")
        print("baseline: mariadb-slap hot-row UPDATE (autocommit) \(String(format: "%.0f", slapPerSecond)) transactions/s")
        print("test".padding(toLength: 30, withPad: " ", startingAt: 0) + "purchases/s   transactions/s   ratio to baseline (transactions)")
        for mode in [PurchaseMode.atomic, .lock] {
            for distinct in [1, 1000] {
                let rate = try await measure(base, mode: mode, products: distinct)
                // A confirmed purchase is 3 write transactions: open + reserve + order, the (simulated) provider's
                // ledger entry, payment recorded + confirm — each with its outbox rows. (6 before issue 12.)
                let transactions = rate * 3
                let name = "\(mode.rawValue), \(distinct == 1 ? "1 hot product" : "\(distinct) products")"
                print(name.padding(toLength: 30, withPad: " ", startingAt: 0) + String(format: "%11.0f", rate)
                      + String(format: "%17.0f", transactions) + String(format: "   %.2f", transactions / slapPerSecond))
            }
        }
    }

    /// A throw-away database, a Storefront on it (in-process lock and counter: only the database is measured).
    private func measure(_ base: MariaDBConfiguration, mode: PurchaseMode, products: Int) async throws -> Double {
        let (name, urls) = try await ScratchDatabase.create(on: url, prefix: "storefront_bench", pointing: [url])
        var config = StorefrontConfig(instanceID: "bench")
        config.databaseURL = urls[0]
        config.purchaseMode = mode
        config.lockWaitMilliseconds = 50
        config.mariadb.poolSize = concurrency
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
            guard total == purchases else { throw BenchError("only \(total) of \(purchases) purchases confirmed") }
        }
        let elapsed = ContinuousClock.now - started
        await storefront.shutdown()
        try await ScratchDatabase.drop(name, on: url)
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
        else { throw BenchError("mariadb-slap failed (is mariadb-client installed?): \(text.prefix(300))") }
        return Double(queries) / max(seconds, 0.001)
    }
}

/// Hands out purchase numbers to the benchmark's workers.
final class Tickets: Sendable {
    let next = Atomic<Int>(0)
}

/// A benchmark could not run or its result is wrong.
public struct BenchError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
