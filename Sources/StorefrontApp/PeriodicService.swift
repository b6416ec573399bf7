import Logging
import ServiceLifecycle

/// A background job of the app server as a `Service` in the application's one `ServiceGroup`: runs `round`
/// again and again, waiting between rounds the pause the round returns, until graceful shutdown; then runs
/// `atShutdown` once. A round that throws is logged and tried again after `retryAfter`. Saga recovery, stock
/// reconciliation, the outbox relay and the database monitor all have this one shape, so they start, stop
/// and fail the same way.
///
/// Graceful shutdown ends the pause, never a round: a round in flight (a recovery pass driving a saga, a relay
/// batch Kafka acknowledged but not yet marked) finishes first. Cancellation (the group failing) stops at
/// once and skips `atShutdown`.
public struct PeriodicService: Service, CustomStringConvertible {
    public let description: String
    private let firstPause: Duration
    private let retryAfter: Duration
    private let logger: Logger
    private let round: @Sendable () async throws -> Duration
    private let atShutdown: (@Sendable () async -> Void)?

    /// - Parameters:
    ///   - firstPause: the wait before the first round.
    ///   - round: one round of the job; returns how long to wait before the next one.
    public init(
        _ name: String, firstPause: Duration = .zero, retryAfter: Duration = .seconds(1), logger: Logger,
        atShutdown: (@Sendable () async -> Void)? = nil, round: @escaping @Sendable () async throws -> Duration
    ) {
        self.description = name
        self.firstPause = firstPause
        self.retryAfter = retryAfter
        self.logger = logger
        self.round = round
        self.atShutdown = atShutdown
    }

    public func run() async throws {
        logger.debug("background service started", metadata: ["service": "\(description)"])
        var pause = firstPause
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            if pause > .zero {
                // Only the pause ends early on graceful shutdown.
                let wait = pause
                let slept: Void? = try? await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
                guard slept != nil else { break }
            }
            do {
                pause = try await round()
            } catch is CancellationError where Task.isCancelled {
                break
            } catch {
                logger.warning("background round failed; trying again", metadata: [
                    "service": "\(description)", "error": "\(error)", "retryAfter": "\(retryAfter)",
                ])
                pause = retryAfter
            }
        }
        if !Task.isCancelled { await atShutdown?() }
        logger.debug("background service stopped", metadata: ["service": "\(description)"])
    }
}
