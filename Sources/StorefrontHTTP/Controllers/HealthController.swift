import Foundation
import Hummingbird
import Prometheus
import StorefrontCore

/// `/health/live` (the process answers), `/health/ready` (every critical dependency answers; a non-critical one
/// that fails shows as `degraded`), `/metrics` (Prometheus).
struct HealthController {
    let checks: [any HealthCheckable]
    let metrics: PrometheusCollectorRegistry
    let timeout: Duration = .seconds(2)

    struct Check: Codable {
        var status: String
        var latencyMs: Int
        var error: String?
        /// The servers behind the check, each with its state (omitted for a single-server dependency).
        var nodes: [HealthNode]?
    }

    struct Report: Codable {
        var status: String
        var checks: [String: Check]
    }

    static let liveBody = ByteBuffer(string: #"{"status":"ok"}"#)

    func addRoutes(to router: Router<AppRequestContext>) {
        router.get("/health/live") { _, _ in
            // A constant answer, encoded once (the route load balancers probe most: issue 12 measured the
            // JSON encoder at ~9 % of its cost).
            Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: Self.liveBody))
        }
        router.get("/health/ready") { _, _ in
            let report = await Self.report(checks, timeout: timeout)
            let ready = report.status == "ready"
            return try jsonResponse(report, status: ready ? .ok : .serviceUnavailable, headers: ready ? [:] : [.retryAfter: "5"])
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: metrics.emitToBuffer())))
        }
    }

    /// Every check at once, each bounded by `timeout`: what `/health/ready` answers and the console shows.
    static func report(_ checks: [any HealthCheckable], timeout: Duration = .seconds(2)) async -> Report {
        let results = await withTaskGroup(of: (String, Check).self) { group in
            for check in checks {
                group.addTask { (check.healthName, await run(check, timeout: timeout)) }
            }
            var all: [String: Check] = [:]
            for await (name, result) in group { all[name] = result }
            return all
        }
        let ready = results.values.allSatisfy { $0.status != "down" }
        return Report(status: ready ? "ready" : "unavailable", checks: results)
    }

    private static func run(_ check: any HealthCheckable, timeout: Duration) async -> Check {
        // The nodes are listed alongside the check, within the same bound (none listed when they take longer).
        async let nodes = try? withDeadline(timeout, what: "\(check.healthName) nodes") { await check.healthNodes() }
        var result = await verdict(check, timeout: timeout)
        if let nodes = await nodes, !nodes.isEmpty { result.nodes = nodes }
        return result
    }

    private static func verdict(_ check: any HealthCheckable, timeout: Duration) async -> Check {
        let start = ContinuousClock.now
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await check.checkHealth() }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    throw StorefrontError.unavailable("\(check.healthName) did not answer in time", retryAfterSeconds: 5)
                }
                try await group.next()
                group.cancelAll()
            }
            return Check(status: "up", latencyMs: Self.ms(since: start), error: nil)
        } catch {
            return Check(status: check.healthIsCritical ? "down" : "degraded", latencyMs: Self.ms(since: start), error: "\(error)")
        }
    }

    static func ms(since start: ContinuousClock.Instant) -> Int {
        let d = ContinuousClock.now - start
        return Int(d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000)
    }
}
