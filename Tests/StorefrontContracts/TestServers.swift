import Foundation
import Testing

/// The real servers `scripts/test-servers up` starts, found through the variables it exports
/// (`STOREFRONT_TEST_REDIS_URL`, `STOREFRONT_TEST_MARIADB_URL`, …). One helper for every test target.
public enum TestServers {
    /// The variable's value. Missing or empty, the test fails — an engine that is not there is never a pass.
    public static func required(_ variable: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty else {
            Issue.record("\(variable) is not set: run the tests with scripts/test (it starts the test servers)")
            throw MissingTestServer(variable: variable)
        }
        return value
    }
}

/// A test needs a server whose variable is not set.
public struct MissingTestServer: Error, CustomStringConvertible {
    public let variable: String
    public var description: String { "\(variable) is not set" }
}
