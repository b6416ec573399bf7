import Foundation

/// Source of the current UTC time, injectable so tests can move time (lease expiry).
public struct WallClock: Sendable {
    private let read: @Sendable () -> Date
    public init(_ read: @escaping @Sendable () -> Date) { self.read = read }
    public func now() -> Date { read() }
    public static let system = WallClock { Date() }
}

extension Date {
    /// This date moved by a `Duration`.
    public func adding(_ duration: Duration) -> Date {
        let (seconds, attoseconds) = duration.components
        return addingTimeInterval(Double(seconds) + Double(attoseconds) / 1e18)
    }
}
