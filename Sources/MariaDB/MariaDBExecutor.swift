internal import CMariaDB
import Foundation
import NIOPosix
import Synchronization

/// The threads that run Connector/C's blocking calls, so they never block Swift's cooperative pool.
/// One call at a time per connection; size it at least as large as the connection pools that use it.
public final class MariaDBExecutor: Sendable {
    private let threads: NIOThreadPool

    public init(threads: Int) {
        self.threads = NIOThreadPool(numberOfThreads: threads)
        self.threads.start()
    }

    /// The process-wide executor (32 threads), started on first use.
    public static let shared = MariaDBExecutor(threads: 32)

    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await threads.runIfActive(body)
    }

    public func shutdown() async throws {
        try await threads.shutdownGracefully()
    }
}
