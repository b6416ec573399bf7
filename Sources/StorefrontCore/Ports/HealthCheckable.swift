import Foundation

/// A dependency whose health `/health/ready` reports.
public protocol HealthCheckable: Sendable {
    var healthName: String { get }
    /// Throws when the dependency cannot serve.
    func checkHealth() async throws
    /// False for a dependency the service works without (read replicas): its failure shows as `degraded`
    /// and does not make the server unready.
    var healthIsCritical: Bool { get }
}

extension HealthCheckable {
    public var healthIsCritical: Bool { true }
}
