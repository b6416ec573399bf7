import Foundation
import RedisClient

/// `storefront bench redis`: Storefront's Redis client vs `redis-benchmark` on the same server, at the same
/// concurrency, in the same run.
public struct RedisClientBench: Sendable {
    public var url: String
    public var requests: Int
    public var concurrency: Int
    public var pipeline: Int
    public var connections: Int

    public init(url: String, requests: Int, concurrency: Int, pipeline: Int, connections: Int) {
        (self.url, self.requests, self.concurrency, self.pipeline, self.connections) = (url, requests, concurrency, pipeline, connections)
    }

    /// Runs both and reports a table of requests/s and ratios through `print`.
    public func run(print: (String) -> Void) async throws {
        var config = try RedisConfiguration(url: url)
        config.connectionsPerNode = connections
        guard !config.cluster else { throw BenchError("bench redis needs a standalone redis:// URL") }
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
        guard process.terminationStatus == 0 else { throw BenchError("redis-benchmark failed (is redis-tools installed?)") }
        var rates: [String: Double] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            if fields.count >= 2, let rate = Double(fields[1]) { rates[fields[0]] = rate }
        }
        return rates
    }
}
