import DequeModule
import Foundation
import Logging
import Metrics
import Synchronization

/// Pool settings.
public struct MariaDBPoolConfiguration: Sendable {
    public var maxConnections = 10
    /// Idle connections older than this are closed (when the pool is next used).
    public var idleTimeout: Duration = .seconds(60)
    /// A connection idle longer than this is pinged before it is handed out; a dead one is replaced.
    public var pingAfterIdle: Duration = .seconds(5)
    /// How long `lease` waits for a free connection before failing with `.poolExhausted`.
    public var acquireTimeout: Duration = .seconds(5)

    public init() {}
}

/// A connection pool: at most `maxConnections` open, idle ones reused most-recent-first (so surplus ones
/// idle out), pinged after idling, broken ones discarded, waiters served in order with a deadline.
public final class MariaDBPool: Sendable {
    public let configuration: MariaDBConfiguration
    public let poolConfiguration: MariaDBPoolConfiguration
    public let executor: MariaDBExecutor
    let logger: Logger
    private let state = Mutex(State())
    private let opened: Counter
    private let closedCounter: Counter
    private let inUse: Gauge

    private struct Idle {
        let connection: MariaDBConnection
        let since: ContinuousClock.Instant
    }

    private enum Grant {
        /// `idleSince` is nil when the connection comes straight from another task.
        case connection(MariaDBConnection, idleSince: ContinuousClock.Instant?)
        /// Permission to open a new connection (a slot was freed by a discarded one).
        case slot
    }

    private struct Waiter {
        let id: Int
        let continuation: CheckedContinuation<Grant, any Error>
    }

    private struct State {
        var idle: [Idle] = []
        var open = 0
        var waiters = Deque<Waiter>()
        var nextWaiter = 0
        var closed = false
    }

    public init(configuration: MariaDBConfiguration, pool: MariaDBPoolConfiguration = .init(), executor: MariaDBExecutor = .shared,
                logger: Logger = Logger(label: "mariadb.pool"), label: String = "primary") {
        self.configuration = configuration
        poolConfiguration = pool
        self.executor = executor
        self.logger = logger
        let dimensions = [("pool", label)]
        opened = Counter(label: "mariadb_pool_connections_opened_total", dimensions: dimensions)
        closedCounter = Counter(label: "mariadb_pool_connections_closed_total", dimensions: dimensions)
        inUse = Gauge(label: "mariadb_pool_connections_in_use", dimensions: dimensions)
    }

    /// Connections open now (idle or leased).
    public var openConnections: Int { state.withLock { $0.open } }
    public var idleConnections: Int { state.withLock { $0.idle.count } }

    /// Leases a connection for `body`; returns it afterwards (or discards it if it broke).
    public func withConnection<T: Sendable>(_ body: (MariaDBConnection) async throws -> T) async throws -> T {
        let connection = try await lease()
        do {
            let result = try await body(connection)
            release(connection)
            return result
        } catch {
            release(connection)
            throw error
        }
    }

    /// `body` in one transaction on a pooled connection (one executor hop).
    public func transaction<T: Sendable>(_ body: @escaping @Sendable (MariaDBSession) throws -> T) async throws -> T {
        try await withConnection { try await $0.transaction(body) }
    }

    /// `body` on a pooled connection without an explicit transaction (autocommit: each statement on its own).
    public func session<T: Sendable>(_ body: @escaping @Sendable (MariaDBSession) throws -> T) async throws -> T {
        try await withConnection { try await $0.withSession(body) }
    }

    public func query(_ sql: String, _ parameters: [any MariaDBEncodable] = []) async throws -> MariaDBResult {
        let values = parameters.map(\.mariaDBValue)
        return try await session { try $0.query(sql, values) }
    }

    public func lease() async throws -> MariaDBConnection {
        while true {
            let grant = try await acquire()
            switch grant {
            case .connection(let connection, _):
                return connection
            case .slot:
                do {
                    let connection = try await MariaDBConnection.connect(configuration, executor: executor)
                    opened.increment()
                    inUse.record(state.withLock { $0.open - $0.idle.count })
                    return connection
                } catch {
                    giveBackSlot()
                    throw error
                }
            }
        }
    }

    /// Returns a leased connection: to the next waiter, to the idle list, or closed if it broke.
    public func release(_ connection: MariaDBConnection) {
        if connection.isBroken {
            discard(connection)
            return
        }
        let (waiter, expired): (Waiter?, [MariaDBConnection]) = state.withLock { s in
            if s.closed { return (nil, [connection]) }
            if let waiter = s.waiters.popFirst() { return (waiter, []) }
            s.idle.append(Idle(connection: connection, since: .now))
            return (nil, reapExpired(&s))
        }
        if !expired.isEmpty { closeAll(expired, countedOpen: true) }
        waiter?.continuation.resume(returning: .connection(connection, idleSince: nil))
        inUse.record(state.withLock { $0.open - $0.idle.count })
    }

    /// Closes idle connections and refuses new leases; leased ones are closed when returned.
    public func close() async {
        let (idle, waiters) = state.withLock { s in
            s.closed = true
            defer { s.idle.removeAll(); s.waiters.removeAll() }
            return (s.idle.map(\.connection), Array(s.waiters))
        }
        waiters.forEach { $0.continuation.resume(throwing: MariaDBError(kind: .connectFailed, message: "the pool is closed")) }
        state.withLock { $0.open -= idle.count }
        for connection in idle { await connection.close() }
    }

    // MARK: internals

    private func acquire() async throws -> Grant {
        while true {
            enum Step { case grant(Grant, expired: [MariaDBConnection]), wait, closed }
            let step: Step = state.withLock { s in
                if s.closed { return .closed }
                let expired = reapExpired(&s)
                if let idle = s.idle.popLast() { return .grant(.connection(idle.connection, idleSince: idle.since), expired: expired) }
                if s.open < poolConfiguration.maxConnections {
                    s.open += 1
                    return .grant(.slot, expired: expired)
                }
                return .wait
            }
            switch step {
            case .closed:
                throw MariaDBError(kind: .connectFailed, message: "the pool is closed")
            case .grant(let grant, let expired):
                if !expired.isEmpty { closeAll(expired, countedOpen: true) }
                if case .connection(let connection, let since) = grant, !(await healthy(connection, idleSince: since)) {
                    discard(connection)
                    continue
                }
                return grant
            case .wait:
                let grant = try await waitForGrant()
                if case .connection(let connection, let since) = grant, !(await healthy(connection, idleSince: since)) {
                    discard(connection)
                    continue
                }
                return grant
            }
        }
    }

    /// Pings a connection that idled longer than `pingAfterIdle` (recently used ones skip it).
    private func healthy(_ connection: MariaDBConnection, idleSince: ContinuousClock.Instant?) async -> Bool {
        if connection.isBroken { return false }
        guard let idleSince, ContinuousClock.now - idleSince > poolConfiguration.pingAfterIdle else { return true }
        do {
            try await connection.ping()
            return true
        } catch {
            logger.warning("discarding a pooled connection that failed its ping", metadata: ["error": "\(error)", "endpoint": "\(configuration.endpoint)"])
            return false
        }
    }

    private func waitForGrant() async throws -> Grant {
        let id = state.withLock { s in defer { s.nextWaiter += 1 }; return s.nextWaiter }
        let timeout = poolConfiguration.acquireTimeout
        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            self?.failWaiter(id, MariaDBError(kind: .poolExhausted, message: "no database connection free within \(timeout) (pool of \(self?.poolConfiguration.maxConnections ?? 0))"))
        }
        defer { timer.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let enqueued = state.withLock { s in
                    guard !s.closed else { return false }
                    s.waiters.append(Waiter(id: id, continuation: continuation))
                    return true
                }
                if !enqueued { continuation.resume(throwing: MariaDBError(kind: .connectFailed, message: "the pool is closed")) }
            }
        } onCancel: {
            failWaiter(id, CancellationError())
        }
    }

    private func failWaiter(_ id: Int, _ error: any Error) {
        let waiter = state.withLock { s -> Waiter? in
            guard let index = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return s.waiters.remove(at: index)
        }
        waiter?.continuation.resume(throwing: error)
    }

    /// A connection that will not be reused: its slot goes to the next waiter (who opens a new one).
    private func discard(_ connection: MariaDBConnection) {
        closeAll([connection], countedOpen: false)
        giveBackSlot()
    }

    private func giveBackSlot() {
        let waiter = state.withLock { s -> Waiter? in
            if let waiter = s.waiters.popFirst() { return waiter }  // the slot passes on; `open` is unchanged
            s.open -= 1
            return nil
        }
        waiter?.continuation.resume(returning: .slot)
        inUse.record(state.withLock { $0.open - $0.idle.count })
    }

    private func reapExpired(_ s: inout State) -> [MariaDBConnection] {
        let cutoff = ContinuousClock.now - poolConfiguration.idleTimeout
        let expired = s.idle.filter { $0.since < cutoff }.map(\.connection)
        guard !expired.isEmpty else { return [] }
        s.idle.removeAll { $0.since < cutoff }
        return expired
    }

    /// Closes connections in the background; `countedOpen` ones are still counted in `open` and are uncounted here.
    private func closeAll(_ connections: [MariaDBConnection], countedOpen: Bool) {
        if countedOpen { state.withLock { $0.open -= connections.count } }
        closedCounter.increment(by: connections.count)
        Task { for connection in connections { await connection.close() } }
    }
}
