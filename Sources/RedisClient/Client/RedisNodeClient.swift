import Logging
import Metrics
import NIOCore
import NIOPosix
import Synchronization

/// A fixed set of multiplexed connections to one node, sized by `connectionsPerNode`. Each connection
/// pipelines commands from many tasks; a broken one is replaced on next use, with exponential back-off while
/// the node stays down (during which commands fail fast instead of waiting).
public final class RedisNodeClient: Sendable {
    public let endpoint: RedisEndpoint
    private let slots: [ConnectionSlot]
    private let next = Atomic<Int>(0)

    public init(endpoint: RedisEndpoint, configuration: RedisConfiguration, logger: Logger = Logger(label: "redis"),
                eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.endpoint = endpoint
        slots = (0..<configuration.connectionsPerNode).map { _ in
            ConnectionSlot(endpoint: endpoint, configuration: configuration, logger: logger, eventLoopGroup: eventLoopGroup)
        }
    }

    /// A live connection (round-robin over the slots).
    public func connection() async throws -> RedisConnection {
        let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
        return try await slots[abs(index % slots.count)].connection()
    }

    @discardableResult
    public func send(_ arguments: [RESPArgument]) async throws -> RESPValue {
        try await timed(arguments) { try await self.connection().send(arguments) }
    }

    public func sendRaw(_ arguments: [RESPArgument]) async throws -> RESPValue {
        try await timed(arguments) { try await self.connection().sendRaw(arguments) }
    }

    public func pipeline(_ commands: [[RESPArgument]]) async throws -> [RESPValue] {
        try await connection().pipeline(commands)
    }

    public func close() async {
        for slot in slots { await slot.close() }
    }

    private func timed<T>(_ arguments: [RESPArgument], _ body: () async throws -> T) async throws -> T {
        let start = ContinuousClock.now
        let metrics = CommandMetrics.for(arguments.first)
        do {
            let result = try await body()
            metrics.duration.recordInterval(since: start)
            return result
        } catch {
            metrics.errors.increment()
            throw error
        }
    }
}

/// Per-command metric handles, created once (looking them up per command would cost more than the command).
struct CommandMetrics: Sendable {
    let duration: Timer
    let errors: Counter

    private static let cache = Mutex<[String: CommandMetrics]>([:])

    static func `for`(_ argument: RESPArgument?) -> CommandMetrics {
        let raw = argument?.text ?? "?"
        return cache.withLock { cache in
            if let hit = cache[raw] { return hit }
            let name = cache.count < 64 ? raw.uppercased() : "OTHER"
            let metrics = CommandMetrics(duration: Timer(label: "redis_command_duration_seconds", dimensions: [("command", name)]),
                                         errors: Counter(label: "redis_command_errors_total", dimensions: [("command", name)]))
            cache[raw] = metrics
            return metrics
        }
    }
}

extension Timer {
    func recordInterval(since start: ContinuousClock.Instant) {
        let d = ContinuousClock.now - start
        recordNanoseconds(d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000)
    }
}

/// One connection of a node client: connects lazily, reconnects after failures with back-off.
final class ConnectionSlot: Sendable {
    private enum State {
        case idle(failures: Int, retryAt: ContinuousClock.Instant)
        case connecting(Task<RedisConnection, any Error>, failures: Int)
        case connected(RedisConnection)
        case closed
    }

    private enum Next {
        case ready(RedisConnection)
        case wait(Task<RedisConnection, any Error>)
        case fail(any Error)
    }

    private let endpoint: RedisEndpoint
    private let configuration: RedisConfiguration
    private let logger: Logger
    private let eventLoopGroup: any EventLoopGroup
    private let state = Mutex<State>(.idle(failures: 0, retryAt: .now))

    init(endpoint: RedisEndpoint, configuration: RedisConfiguration, logger: Logger, eventLoopGroup: any EventLoopGroup) {
        self.endpoint = endpoint
        self.configuration = configuration
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
    }

    func connection() async throws -> RedisConnection {
        let next: Next = state.withLock { state in
            switch state {
            case .connected(let c) where c.isActive:
                return .ready(c)
            case .connecting(let task, _):
                return .wait(task)
            case .closed:
                return .fail(RedisClientError.connectionClosed)
            case .idle(let failures, let retryAt) where failures > 0 && ContinuousClock.now < retryAt:
                return .fail(RedisClientError.connectionUnavailable("\(endpoint) is down (\(failures) failed attempt(s)); retrying shortly"))
            case .idle(let failures, _):
                return .wait(startConnecting(&state, failures: failures))
            case .connected:
                Counter(label: "redis_reconnects_total", dimensions: [("node", "\(endpoint)")]).increment()
                return .wait(startConnecting(&state, failures: 0))
            }
        }
        switch next {
        case .ready(let c):
            return c
        case .fail(let e):
            throw e
        case .wait(let task):
            do {
                let c = try await task.value
                state.withLock { state in
                    if case .connecting = state { state = .connected(c) }
                }
                return c
            } catch {
                let failures = state.withLock { state -> Int in
                    guard case .connecting(_, let before) = state else { return 0 }
                    let f = before + 1
                    let delay = min(configuration.minReconnectDelay * (1 << min(f - 1, 16)), configuration.maxReconnectDelay)
                    state = .idle(failures: f, retryAt: .now + delay)
                    return f
                }
                if failures == 1 { logger.warning("redis connection failed", metadata: ["node": "\(endpoint)", "error": "\(error)"]) }
                throw RedisClientError.connectionUnavailable("\(endpoint): \(error)")
            }
        }
    }

    private func startConnecting(_ state: inout State, failures: Int) -> Task<RedisConnection, any Error> {
        let task = Task { [endpoint, configuration, eventLoopGroup] in
            try await RedisConnection.connect(to: endpoint, configuration: configuration, eventLoopGroup: eventLoopGroup)
        }
        state = .connecting(task, failures: failures)
        return task
    }

    func close() async {
        let connection: RedisConnection? = state.withLock { state in
            defer { state = .closed }
            if case .connected(let c) = state { return c }
            if case .connecting(let t, _) = state { t.cancel() }
            return nil
        }
        await connection?.close()
    }
}
