import Foundation
import Metrics
import Synchronization

/// Where a near cache announces its invalidations, so that every app server's near cache drops the entry.
public protocol InvalidationBroadcast: Sendable {
    func publish(productId: Int64) async throws
}

/// A small in-memory copy of the shared product cache in each app server ("near cache"), kept correct by
/// invalidation messages: every invalidation (an admin change, a confirmed purchase) deletes the shared entry,
/// then is broadcast; every server drops its copy when the message arrives.
///
/// It serves copies only while it is `live` — subscribed to the broadcast. Until `subscribed()` is called, and from
/// `unsubscribed()` until the next `subscribed()`, every lookup goes to the shared cache, as without it, and every
/// copy is dropped, since messages may have been missed.
///
/// A copy is kept only if no invalidation of its product arrived between the start of the shared lookup and its
/// end: a value read just before another server's delete, whose message overtook the reply, is returned but not
/// kept. Copies live at most `ttl`, which bounds staleness if a broadcast is lost while the subscription looks
/// healthy.
public final class NearProductCache: ProductCache {
    public struct Settings: Sendable, Equatable {
        /// Longest life of a copy; zero disables the near cache.
        public var ttl: Duration
        public var capacity: Int
        /// How long `invalidate` waits for its broadcast: a slow or paused channel node must not hold a purchase
        /// (or its product's lock) for the command timeout. A broadcast still pending then goes on by itself;
        /// until it lands, other servers' copies live at most `ttl`.
        public var publishWait: Duration
        public init(ttl: Duration = .seconds(5), capacity: Int = 10_000, publishWait: Duration = .milliseconds(250)) {
            self.ttl = ttl
            self.capacity = max(capacity, 1)
            self.publishWait = publishWait
        }
    }

    private struct Entry {
        let lookup: CacheLookup
        let expires: ContinuousClock.Instant
    }

    private struct State {
        var live = false
        /// Changes whenever `live` does: a lookup begun under another epoch keeps nothing.
        var epoch: UInt64 = 0
        /// Counts invalidations received.
        var sequence: UInt64 = 0
        var entries: [Int64: Entry] = [:]
        /// product → `sequence` of its last invalidation (bounded; see `floor`).
        var invalidatedAt: [Int64: UInt64] = [:]
        /// Lookups begun before this sequence keep nothing (`invalidatedAt` was cleared then).
        var floor: UInt64 = 0
    }

    private enum Local {
        case found(CacheLookup)
        case lookUp(epoch: UInt64, sequence: UInt64)
        case bypass
    }

    public let settings: Settings
    private let shared: any ProductCache
    private let broadcast: any InvalidationBroadcast
    private let state = Mutex(State())
    private static let invalidationMemory = 4096
    private let nearHits = Counter(label: "storefront_near_cache_total", dimensions: [("result", "hit")])
    private let nearMisses = Counter(label: "storefront_near_cache_total", dimensions: [("result", "miss")])
    private let bypasses = Counter(label: "storefront_near_cache_total", dimensions: [("result", "bypass")])
    private let received = Counter(label: "storefront_near_cache_invalidations_total")
    private let liveGauge = Gauge(label: "storefront_near_cache_live")
    private let slowPublishes = Counter(label: "storefront_near_cache_slow_publishes_total")

    public init(shared: any ProductCache, broadcast: any InvalidationBroadcast, settings: Settings = .init()) {
        self.shared = shared
        self.broadcast = broadcast
        self.settings = settings
    }

    /// Whether copies are being served (subscribed to the broadcast).
    public var isLive: Bool { state.withLock { $0.live } }

    /// Copies held now.
    public var count: Int { state.withLock { $0.entries.count } }

    public func get(id: Int64) async throws -> CacheLookup {
        let now = ContinuousClock.now
        let local: Local = state.withLock { s in
            guard s.live else { return .bypass }
            if let entry = s.entries[id] {
                if entry.expires > now { return .found(entry.lookup) }
                s.entries[id] = nil
            }
            return .lookUp(epoch: s.epoch, sequence: s.sequence)
        }
        switch local {
        case .found(let lookup):
            nearHits.increment()
            return lookup
        case .bypass:
            bypasses.increment()
            return try await shared.get(id: id)
        case .lookUp(let epoch, let sequence):
            nearMisses.increment()
            let lookup = try await shared.get(id: id)
            if lookup != .miss { keep(id, lookup, epoch: epoch, sequence: sequence) }
            return lookup
        }
    }

    private func keep(_ id: Int64, _ lookup: CacheLookup, epoch: UInt64, sequence: UInt64) {
        let expires = ContinuousClock.now + settings.ttl
        state.withLock { s in
            guard s.live, s.epoch == epoch, sequence >= s.floor, (s.invalidatedAt[id] ?? 0) <= sequence else { return }
            if s.entries.count >= settings.capacity, s.entries[id] == nil {
                let now = ContinuousClock.now
                s.entries = s.entries.filter { $0.value.expires > now }
                if s.entries.count >= settings.capacity {
                    for key in Array(s.entries.keys.prefix(max(settings.capacity / 10, 1))) { s.entries[key] = nil }
                }
            }
            s.entries[id] = Entry(lookup: lookup, expires: expires)
        }
    }

    public func put(_ product: Product, ttl: Duration) async throws {
        try await shared.put(product, ttl: ttl)
    }

    public func putAbsent(id: Int64, ttl: Duration) async throws {
        try await shared.putAbsent(id: id, ttl: ttl)
    }

    /// Deletes the shared entry, drops the local copy, then tells every server. The delete comes first: a server
    /// that dropped its copy and looked again before the delete would keep the old value.
    /// The broadcast is waited for at most `settings.publishWait` (then it goes on in the background, counted
    /// in `storefront_near_cache_slow_publishes_total`); a broadcast that failed within it is reported.
    public func invalidate(id: Int64) async throws {
        var failure: (any Error)?
        do { try await shared.invalidate(id: id) } catch { failure = error }
        invalidated(id)
        // The publish runs in a task of its own: past the wait, the deadline gives up on it without cancelling it.
        let broadcast = self.broadcast
        let publishing = Task { try await broadcast.publish(productId: id) }
        do {
            try await withDeadline(settings.publishWait, what: "invalidation broadcast") { try await publishing.value }
        } catch is ProviderTimeout {
            slowPublishes.increment()
        } catch {
            failure = failure ?? error
        }
        if let failure { throw failure }
    }

    // MARK: the subscription's events

    /// A broadcast invalidation (or this server's own).
    public func invalidated(_ id: Int64) {
        received.increment()
        state.withLock { s in
            s.sequence &+= 1
            s.entries[id] = nil
            if s.invalidatedAt.count >= Self.invalidationMemory {
                s.invalidatedAt.removeAll(keepingCapacity: true)
                s.floor = s.sequence
            }
            s.invalidatedAt[id] = s.sequence
        }
    }

    /// A message that names no product: drops every copy.
    public func invalidatedAll() {
        state.withLock { s in
            s.sequence &+= 1
            s.epoch &+= 1
            s.entries.removeAll()
        }
    }

    /// The subscription is in place: from now on every invalidation arrives, so copies may be served.
    public func subscribed() { setLive(true) }

    /// The subscription was lost (messages may have been missed): drop every copy and serve none until subscribed.
    public func unsubscribed() { setLive(false) }

    /// Either way every copy goes and lookups under way keep nothing (a new epoch).
    private func setLive(_ live: Bool) {
        state.withLock { s in
            s.epoch &+= 1
            s.entries.removeAll()
            s.live = live
        }
        liveGauge.record(live ? 1 : 0)
    }
}
