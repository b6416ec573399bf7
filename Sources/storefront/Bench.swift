import ArgumentParser
import Hummingbird
import Logging
import StorefrontBench

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks against a baseline measured in the same run.", subcommands: [RedisBench.self, MariaDBBench.self, HelloBench.self])
}

/// `storefront bench hello`: a Hummingbird hello-world, the per-request ceiling `scripts/bench` measures
/// Storefront's routes against (same framework, same build, same machine, no middleware).
struct HelloBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hello", abstract: "Serve a Hummingbird hello-world (GET / → 13 bytes) until stopped: the per-request ceiling.")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on.") var port = 8099

    func run() async throws {
        let router = Router()
        router.get("/") { _, _ in "Hello, world!" }
        var logger = Logger(label: "hello")
        logger.logLevel = .warning
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: port)), logger: logger)
        try await app.runService()
    }
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
        let bench = RedisClientBench(url: url, requests: requests, concurrency: concurrency, pipeline: pipeline, connections: connections)
        do {
            try await bench.run { print($0) }
        } catch let error as BenchError {
            throw ValidationError(error.description)
        }
    }
}

/// `storefront bench mariadb`: the saga write path vs `mariadb-slap`'s hot-row update rate.
struct MariaDBBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mariadb",
        abstract: "Saga write path (purchases/s, one hot product and 1000 products) vs mariadb-slap's hot-row update rate.")

    @Option(help: "MariaDB primary (mysql://user:pass@host:port/db; the user needs CREATE on storefront_bench_*).")
    var url = "mysql://app:apppass@127.0.0.1:3306/storefront"
    @Option(help: "Purchases per test.") var purchases = 2000
    @Option(help: "Concurrent purchases (and mariadb-slap clients).") var concurrency = 16

    func run() async throws {
        do {
            try await SagaWritePathBench(url: url, purchases: purchases, concurrency: concurrency).run { print($0) }
        } catch let error as BenchError {
            throw ValidationError(error.description)
        }
    }
}
