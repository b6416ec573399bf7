import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization
import StorefrontCore

/// The router's path templates and their methods, to tell 405 from 404.
final class KnownRoutes: Sendable {
    private let table = Mutex<[(segments: [Substring], methods: Set<String>)]>([])

    func set(_ routes: [(path: String, method: String)]) {
        var grouped: [String: Set<String>] = [:]
        for route in routes { grouped[route.path, default: []].insert(route.method) }
        table.withLock { t in
            t = grouped.map { (segments: $0.key.split(separator: "/"), methods: $0.value) }
        }
    }

    /// Methods served on `path`, or nil if no template matches it.
    func methods(for path: String) -> Set<String>? {
        let parts = path.split(separator: "/")
        return table.withLock { t in
            t.first { entry in
                entry.segments.count == parts.count
                    && zip(entry.segments, parts).allSatisfy { template, part in template.hasPrefix("{") || template.hasPrefix(":") || template == part }
            }?.methods
        }
    }
}
