import Foundation
import Logging
import Synchronization

/// A **simulated** payment provider for development and tests — it moves no money.
/// It keeps its own ledger, is idempotent per key, and can be told to be slow, to fail, to decline,
/// or to time out *after* charging (the unknown-outcome case the saga must resolve by querying).
public final class SimulatedPaymentGateway: PaymentGateway {
    public struct Behavior: Sendable, Equatable {
        /// Added to every call.
        public var latency: Duration
        /// Probability a charge fails with `PaymentError.unavailable` and charges nothing.
        public var failureRate: Double
        /// Probability a charge is declined.
        public var declineRate: Double
        /// Probability a charge succeeds but the caller sees `PaymentError.timeout`.
        public var timeoutAfterChargeRate: Double
        /// Probability a charge or refund never answers (a hung provider: only the caller's timeout ends it).
        public var hangRate: Double

        public init(latency: Duration = .zero, failureRate: Double = 0, declineRate: Double = 0, timeoutAfterChargeRate: Double = 0,
                    hangRate: Double = 0) {
            self.latency = latency
            self.failureRate = failureRate
            self.declineRate = declineRate
            self.timeoutAfterChargeRate = timeoutAfterChargeRate
            self.hangRate = hangRate
        }

        public static let reliable = Behavior()
    }

    private let ledger: any PaymentLedger
    private let behaviorState: Mutex<Behavior>
    private let logger: Logger

    public init(ledger: any PaymentLedger, behavior: Behavior = .reliable, logger: Logger = Logger(label: "storefront.payment")) {
        self.ledger = ledger
        self.behaviorState = Mutex(behavior)
        self.logger = logger
    }

    /// Changes the simulator's behaviour at run time (tests, drills).
    public func setBehavior(_ newValue: Behavior) {
        behaviorState.withLock { $0 = newValue }
    }

    /// The simulator's behaviour now.
    public var behavior: Behavior { behaviorState.withLock { $0 } }

    /// A hung call: waits until the caller gives up (cancels), then fails.
    private func hangIfTold(_ b: Behavior) async throws {
        guard b.hangRate > 0, Double.random(in: 0..<1) < b.hangRate else { return }
        logger.debug("simulated provider hang")
        try await Task.sleep(for: .seconds(86_400))
    }

    public func charge(idempotencyKey: String, amountMinor: Int64, currency: String) async throws -> ChargeResult {
        let b = behaviorState.withLock { $0 }
        if b.latency > .zero { try await Task.sleep(for: b.latency) }
        try await hangIfTold(b)
        // A key charged before gets its first outcome, whatever this call's roll (as a real provider's
        // idempotency keys do). Looked up only when needed: on the common path, a new key, the insert tells.
        let roll = Double.random(in: 0..<1)
        if roll < b.failureRate {
            if let existing = try await ledger.payment(idempotencyKey: idempotencyKey) { return Self.chargeResult(of: existing) }
            throw PaymentError.unavailable("simulated provider outage")
        }
        let now = Date()
        let declined = roll < b.failureRate + b.declineRate
        let (record, inserted) = try await ledger.insertIfAbsent(PaymentRecord(
            idempotencyKey: idempotencyKey, status: declined ? .declined : .charged, amountMinor: amountMinor,
            currency: currency, reference: "sim_" + UUID().uuidString.lowercased().prefix(18), reason: declined ? "card declined (simulated)" : nil,
            createdAt: now, updatedAt: now))
        guard inserted else { return Self.chargeResult(of: record) }
        if record.status == .charged, Double.random(in: 0..<1) < b.timeoutAfterChargeRate {
            logger.debug("simulated timeout after charging", metadata: ["key": "\(idempotencyKey)"])
            throw PaymentError.timeout
        }
        return Self.chargeResult(of: record)
    }

    public func status(idempotencyKey: String) async throws -> PaymentStatus {
        guard let record = try await ledger.payment(idempotencyKey: idempotencyKey) else { return .unknown }
        switch record.status {
        case .charged: return .charged(reference: record.reference)
        case .declined: return .declined(reason: record.reason ?? "declined")
        case .refunded: return .refunded(reference: record.reference)
        case .voided: return .voided
        }
    }

    public func refund(idempotencyKey: String) async throws -> Bool {
        try await hangIfTold(behaviorState.withLock { $0 })
        let now = Date()
        // Void the key first if nothing is there, so a charge arriving late is declined.
        let (record, _) = try await ledger.insertIfAbsent(PaymentRecord(
            idempotencyKey: idempotencyKey, status: .voided, amountMinor: 0, currency: "XXX", reference: "void",
            reason: "voided by compensation", createdAt: now, updatedAt: now))
        switch record.status {
        case .charged:
            let after = try await ledger.markRefunded(idempotencyKey: idempotencyKey, at: now)
            return after?.status == .refunded
        case .refunded:
            return true
        case .declined, .voided:
            return false
        }
    }

    private static func chargeResult(of record: PaymentRecord) -> ChargeResult {
        switch record.status {
        case .charged: .charged(reference: record.reference)
        case .declined: .declined(reason: record.reason ?? "declined")
        case .refunded, .voided: .declined(reason: "payment key was voided by compensation")
        }
    }
}
