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
        /// The servers behind the check, each with its state (asked for with `?nodes=true`; omitted for a
        /// single-server dependency).
        var nodes: [HealthNode]?
        /// Why `nodes` is missing although asked for (the listing did not finish in time).
        var nodesError: String?
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
        router.get("/health/ready") { request, _ in
            // Load balancers probe this often: the servers behind each check only when asked for.
            let nodes = try request.uri.queryParameters.get("nodes").map { raw -> Bool in
                guard let value = Bool(raw) else { throw APIError.invalidParameter("nodes must be true or false") }
                return value
            } ?? false
            let report = await Self.report(checks, timeout: timeout, nodes: nodes)
            let ready = report.status == "ready"
            return try jsonResponse(report, status: ready ? .ok : .serviceUnavailable, headers: ready ? [:] : [.retryAfter: "5"])
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: metrics.emitToBuffer())))
        }
    }

    /// Every check at once, each bounded by `timeout` (a check that ignores cancellation is left behind, not
    /// waited for); with `nodes`, each check's servers after it, bounded by `timeout` again. What
    /// `/health/ready` answers and the console shows.
    static func report(_ checks: [any HealthCheckable], timeout: Duration = .seconds(2), nodes: Bool = false) async -> Report {
        let results = await withTaskGroup(of: (String, Check).self) { group in
            for check in checks {
                group.addTask { (check.healthName, await run(check, timeout: timeout, nodes: nodes)) }
            }
            var all: [String: Check] = [:]
            for await (name, result) in group { all[name] = result }
            return all
        }
        let ready = results.values.allSatisfy { $0.status != "down" }
        return Report(status: ready ? "ready" : "unavailable", checks: results)
    }

    private static func run(_ check: any HealthCheckable, timeout: Duration, nodes: Bool) async -> Check {
        let start = ContinuousClock.now
        var failure: (any Error)?
        do {
            try await withDeadline(timeout, what: check.healthName) { try await check.checkHealth() }
        } catch let error as ProviderTimeout {
            failure = StorefrontError.unavailable("\(check.healthName) did not answer within \(error.after)", retryAfterSeconds: 5)
        } catch {
            failure = error
        }
        var result = Check(status: failure == nil ? "up" : check.healthIsCritical ? "down" : "degraded",
                           latencyMs: Self.ms(since: start), error: failure.map { "\($0)" })
        guard nodes else { return result }
        let checkError = failure
        do {
            let listed = try await withDeadline(timeout, what: "listing \(check.healthName)'s servers") { await check.healthNodes(checkError: checkError) }
            if !listed.isEmpty { result.nodes = listed }
        } catch {
            result.nodesError = "\(error)"
        }
        return result
    }

    static func ms(since start: ContinuousClock.Instant) -> Int {
        let d = ContinuousClock.now - start
        return Int(d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000)
    }
}
