import Foundation

public struct PurchaseSettings: Sendable {
    public var mode: PurchaseMode
    /// Largest quantity one purchase may ask for.
    public var maxQty: Int64
    public var lockTTL: Duration
    /// How long to wait for a busy lock before answering `product_busy` (0 = the seed's fail-fast).
    public var lockWait: Duration
    /// `Retry-After` for `product_busy` and other retryable answers.
    public var retryAfterSeconds: Int
    /// How long a request with a known idempotency key waits for the first request's saga to finish.
    public var idempotencyWait: Duration

    public init(
        mode: PurchaseMode = .lock, maxQty: Int64 = 100, lockTTL: Duration = .seconds(30), lockWait: Duration = .zero,
        retryAfterSeconds: Int = 1, idempotencyWait: Duration = .seconds(10)
    ) {
        self.mode = mode
        self.maxQty = maxQty
        self.lockTTL = lockTTL
        self.lockWait = lockWait
        self.retryAfterSeconds = retryAfterSeconds
        self.idempotencyWait = idempotencyWait
    }

    public static let maxIdempotencyKeyLength = 128
}
