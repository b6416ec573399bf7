import Foundation
import Synchronization

/// The embedded per-product lock: token-owned entries with expiry, like `SET NX PX` plus compare-and-delete.
public final class InProcessProductLock: ProductLock {
    private struct Holder {
        var token: String
        var expires: ContinuousClock.Instant
    }

    private let holders = Mutex<[Int64: Holder]>([:])

    public init() {}

    public func acquire(productId: Int64, token: String, ttl: Duration) async throws -> Bool {
        let now = ContinuousClock.now
        return holders.withLock { map in
            if let h = map[productId], h.expires > now { return false }
            map[productId] = Holder(token: token, expires: now + ttl)
            return true
        }
    }

    public func release(productId: Int64, token: String) async throws -> Bool {
        let now = ContinuousClock.now
        return holders.withLock { map in
            guard let h = map[productId], h.token == token, h.expires > now else { return false }
            map[productId] = nil
            return true
        }
    }

    public func extend(productId: Int64, token: String, ttl: Duration) async throws -> Bool {
        let now = ContinuousClock.now
        return holders.withLock { map in
            guard let h = map[productId], h.token == token, h.expires > now else { return false }
            map[productId] = Holder(token: token, expires: now + ttl)
            return true
        }
    }
}
