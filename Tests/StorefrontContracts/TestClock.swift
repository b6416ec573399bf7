import Foundation
import StorefrontCore
import Synchronization

/// A wall clock tests can move forward (to expire leases).
public final class TestClock: Sendable {
    private let current: Mutex<Date>
    public init(_ start: Date = Date(timeIntervalSince1970: 1_760_000_000)) { current = Mutex(start) }
    public var now: Date { current.withLock { $0 } }
    public func advance(by seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
    public var wall: WallClock { WallClock { self.now } }
}
