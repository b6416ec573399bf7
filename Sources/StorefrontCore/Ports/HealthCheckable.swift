import Foundation

/// A dependency whose health `/health/ready` reports.
public protocol HealthCheckable: Sendable {
    var healthName: String { get }
    /// Throws when the dependency cannot serve.
    func checkHealth() async throws
    /// False for a dependency the service works without (read replicas): its failure shows as `degraded`
    /// and does not make the server unready.
    var healthIsCritical: Bool { get }
    /// The servers behind this dependency, each with its own state (database primary and replicas with their
    /// lag, Redis Cluster nodes): what an operator needs to see which one failed. Empty when there is one.
    /// Called after `checkHealth` with its outcome (nil: it passed), so a server the check just probed is not
    /// probed again; bounded by the caller's timeout. It does not throw: a server it cannot reach is a row
    /// that says so.
    func healthNodes(checkError: (any Error)?) async -> [HealthNode]
}

extension HealthCheckable {
    public var healthIsCritical: Bool { true }
    public func healthNodes(checkError: (any Error)?) async -> [HealthNode] { [] }
}

/// One server behind a health check.
public struct HealthNode: Sendable, Codable, Equatable {
    /// `primary` / `replica` (database), `master` / `replica` / `standalone` (Redis).
    public var role: String
    /// host:port as configured or as the cluster reports it.
    public var endpoint: String
    /// `up`, `degraded` (answers but does not serve its full part, e.g. a replica out of read rotation) or `down`.
    public var status: String
    /// A replica's replication delay as last measured, in seconds (nil: not a replica, or unknown).
    public var lagSeconds: Int?
    public var detail: String?

    public init(role: String, endpoint: String, status: String, lagSeconds: Int? = nil, detail: String? = nil) {
        self.role = role
        self.endpoint = endpoint
        self.status = status
        self.lagSeconds = lagSeconds
        self.detail = detail
    }
}
