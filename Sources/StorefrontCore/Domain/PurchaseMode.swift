import Foundation

/// How a purchase checks stock before the saga (DESIGN §3).
public enum PurchaseMode: String, Sendable, Codable, CaseIterable {
    /// The seed's flow: per-product lock, cached stock check, saga, decrement, release.
    case lock
    /// Flash-sale flow: atomic reserve on the stock counter, no lock; compensation gives it back.
    case atomic
}
