import Foundation

/// Every failure the application reports to a caller, each with a stable machine-readable code.
public enum StorefrontError: Error, Sendable, Equatable {
    /// Input failed validation; nothing was written.
    case validation(String)
    case productNotFound(Int64)
    case orderNotFound(Int64)
    case sagaNotFound(UUID)
    /// An operator action on a saga a live server is driving (use force to take it over anyway).
    case sagaInFlight(UUID, owner: String)
    case insufficientStock(productId: Int64, available: Int64?)
    /// Another purchase holds the product's lock; retry after the given seconds.
    case productBusy(productId: Int64, retryAfterSeconds: Int)
    case paymentDeclined(sagaId: UUID, reason: String)
    /// The payment provider could not be reached; the saga was compensated.
    case paymentUnavailable(sagaId: UUID)
    case idempotencyKeyReused(String)
    /// A retry of a purchase whose saga failed and was undone for a reason no retry with the same key can
    /// change (the key is spent): final, not retryable.
    case purchaseFailed(sagaId: UUID, reason: String)
    case skuConflict(String)
    /// A dependency is down; retry after the given seconds.
    case unavailable(String, retryAfterSeconds: Int)
    case unauthorized

    /// Stable code for clients, e.g. `insufficient_stock`.
    public var code: String {
        switch self {
        case .validation: "validation_failed"
        case .productNotFound: "product_not_found"
        case .orderNotFound: "order_not_found"
        case .sagaNotFound: "saga_not_found"
        case .sagaInFlight: "saga_in_flight"
        case .insufficientStock: "insufficient_stock"
        case .productBusy: "product_busy"
        case .paymentDeclined: "payment_declined"
        case .paymentUnavailable: "payment_unavailable"
        case .idempotencyKeyReused: "idempotency_key_reused"
        case .purchaseFailed: "purchase_failed"
        case .skuConflict: "sku_conflict"
        case .unavailable: "service_unavailable"
        case .unauthorized: "unauthorized"
        }
    }

    /// Human-readable explanation.
    public var message: String {
        switch self {
        case .validation(let m): m
        case .productNotFound(let id): "product \(id) does not exist"
        case .orderNotFound(let id): "order \(id) does not exist"
        case .sagaNotFound(let id): "no unfinished saga \(id)"
        case .sagaInFlight(let id, let owner): "saga \(id) is being driven by \(owner) (its lease is live); force to take it over anyway"
        case .insufficientStock(let id, let available):
            if let available { "product \(id) has only \(max(available, 0)) unit(s) available" } else { "product \(id) does not have enough stock" }
        case .productBusy(let id, _): "product \(id) is being purchased by another request; retry shortly"
        case .paymentDeclined(_, let reason): "payment was declined: \(reason)"
        case .paymentUnavailable: "the payment provider could not be reached; nothing was charged; to try again, send a new Idempotency-Key"
        case .idempotencyKeyReused(let key): "Idempotency-Key '\(key)' was already used for a different request"
        case .purchaseFailed(_, let reason):
            "the purchase with this Idempotency-Key failed and was undone (\(reason)); any charge was refunded; send a new Idempotency-Key to try again"
        case .skuConflict(let sku): "a product with sku '\(sku)' already exists"
        case .unavailable(let what, _): "\(what) is unavailable; retry shortly"
        case .unauthorized: "a valid admin bearer token is required"
        }
    }
}

extension StorefrontError: CustomStringConvertible {
    /// The sentence, not the Swift value (what a person reads in a log line or at the prompt).
    public var description: String { message }
}
