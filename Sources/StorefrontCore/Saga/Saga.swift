import Foundation

/// A purchase saga's durable record (the `sagas` row).
public struct Saga: Sendable, Equatable {
    public var id: UUID
    public var idempotencyKey: String?
    public var productId: Int64
    public var qty: Int64
    public var amountMinor: Int64
    public var currency: String
    public var mode: PurchaseMode
    public var state: SagaState
    public var orderId: Int64?
    public var paymentRef: String?
    public var attempts: Int
    public var owner: String
    /// Fencing token: goes up each time another instance takes the saga over. Every transition is
    /// conditioned on `owner` and `epoch`, so a stalled former owner can no longer write.
    public var epoch: Int
    /// Until when `owner` holds the saga, by the store's clock (the database's, not an app server's).
    public var leaseUntil: Date
    /// Machine-readable reason a saga failed or was compensated (`insufficient_stock`, `payment_declined`, …).
    public var failureCode: SagaFailureCode?
    public var lastError: String?
    /// Recovery gave up on it (`SagaSettings.maxRecoveryAttempts`): no instance claims it until an operator
    /// retries or resolves it. Its reserved units stay reserved.
    public var needsAttention: Bool
    public var eventSequence: Int
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        id: UUID, idempotencyKey: String?, productId: Int64, qty: Int64, amountMinor: Int64, currency: String,
        mode: PurchaseMode, state: SagaState, orderId: Int64?, paymentRef: String?, attempts: Int, owner: String,
        epoch: Int = 1, leaseUntil: Date, failureCode: SagaFailureCode?, lastError: String?, needsAttention: Bool = false, eventSequence: Int, createdAt: Date,
        updatedAt: Date
    ) {
        self.id = id
        self.idempotencyKey = idempotencyKey
        self.productId = productId
        self.qty = qty
        self.amountMinor = amountMinor
        self.currency = currency
        self.mode = mode
        self.state = state
        self.orderId = orderId
        self.paymentRef = paymentRef
        self.attempts = attempts
        self.owner = owner
        self.epoch = epoch
        self.leaseUntil = leaseUntil
        self.failureCode = failureCode
        self.lastError = lastError
        self.needsAttention = needsAttention
        self.eventSequence = eventSequence
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// Who may write this saga now.
    public var fence: SagaFence { SagaFence(owner: owner, epoch: epoch) }
}

/// The owner and epoch a transition must match to be written (a fencing token).
public struct SagaFence: Sendable, Hashable, CustomStringConvertible {
    public var owner: String
    public var epoch: Int

    public init(owner: String, epoch: Int) {
        self.owner = owner
        self.epoch = epoch
    }

    public var description: String { "\(owner)#\(epoch)" }
}
