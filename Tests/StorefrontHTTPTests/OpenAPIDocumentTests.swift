import Foundation
import StorefrontApp
import StorefrontHTTP
import Testing

@Suite("docs/openapi.yaml")
struct OpenAPIDocumentTests {
    /// `METHOD /path` pairs declared in the document (paths at two spaces, methods at four).
    static func documentedOperations() throws -> Set<String> {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/openapi.yaml"), encoding: .utf8)
        var operations: Set<String> = []
        var path: String?
        for line in text.split(separator: "\n") {
            if line.hasPrefix("  /"), line.hasSuffix(":") {
                path = String(line.dropFirst(2).dropLast())
            } else if line.hasPrefix("  "), !line.hasPrefix("   ") {
                path = nil
            } else if let p = path, line.hasPrefix("    "), !line.hasPrefix("     ") {
                let method = line.trimmingCharacters(in: .whitespaces).dropLast()
                if ["get", "post", "put", "delete", "patch"].contains(String(method)) {
                    operations.insert("\(method.uppercased()) \(p)")
                }
            }
            if line == "components:" { break }
        }
        return operations
    }

    @Test func documentsExactlyTheRoutesTheRouterServes() async throws {
        let storefront = try await makeStorefront()
        let served = Set(buildRouter(storefront.services).routes.map { "\($0.method.rawValue) \($0.path.description)" })
        let documented = try Self.documentedOperations()
        #expect(documented.count >= 11)
        #expect(served == documented, "undocumented: \(served.subtracting(documented)); not served: \(documented.subtracting(served))")
    }
}
