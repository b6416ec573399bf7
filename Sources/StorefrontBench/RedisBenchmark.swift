import NIOCore
import RedisClient

/// Throughput of this client against one server: `concurrency` tasks issue `requests` commands in total.
public enum RedisBenchmark {
    public struct Result: Sendable {
        public var name: String
        public var requests: Int
        public var seconds: Double
        public var requestsPerSecond: Double { Double(requests) / seconds }
    }

    /// SET, GET, and GET in pipelines of `pipeline` commands, like `redis-benchmark -t set,get [-P n]`.
    public static func run(client: RedisClient, requests: Int, concurrency: Int, pipeline: Int) async throws -> [Result] {
        let key = "bench:key:{0}"
        let value = RESPArgument.bytes(ByteBuffer(repeating: UInt8(ascii: "x"), count: 3))
        try await client.send(["SET", .string(key), value], key: key)
        let set = try await measure("SET", requests: requests, concurrency: concurrency) { _ in
            try await client.send(["SET", .string(key), value], key: key)
        }
        let get = try await measure("GET", requests: requests, concurrency: concurrency) { _ in
            try await client.send(["GET", .string(key)], key: key)
        }
        let batch = Array(repeating: [RESPArgument.string("GET"), .string(key)], count: pipeline)
        let pipelined = try await measure("GET (pipeline \(pipeline))", requests: requests / pipeline * pipeline, concurrency: concurrency,
                                          perCall: pipeline) { _ in
            _ = try await client.pipeline(batch, key: key)
        }
        return [set, get, pipelined]
    }

    private static func measure(
        _ name: String, requests: Int, concurrency: Int, perCall: Int = 1, _ call: @escaping @Sendable (Int) async throws -> Void
    ) async throws -> Result {
        let calls = requests / perCall
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var n = worker
                    while n < calls {
                        try await call(n)
                        n += concurrency
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return Result(name: name, requests: calls * perCall, seconds: seconds)
    }
}
