import Foundation
import StorefrontCore
import Testing

/// The contract every `PaymentLedger` adapter must satisfy.
public enum PaymentLedgerContract {
    public static func run(_ ledger: any PaymentLedger) async throws {
        let now = Date(timeIntervalSince1970: 1_760_000_000)
        let charged = PaymentRecord(idempotencyKey: "k1", status: .charged, amountMinor: 500, currency: "USD", reference: "r1",
                                    reason: nil, createdAt: now, updatedAt: now)
        #expect(try await ledger.payment(idempotencyKey: "k1") == nil)
        #expect(try await ledger.insertIfAbsent(charged) == charged)
        var second = charged
        second.status = .voided
        second.reference = "r2"
        #expect(try await ledger.insertIfAbsent(second).reference == "r1", "the first record keeps the key")
        #expect(try await ledger.chargedTotals() == (1, 500))
        #expect(try await ledger.markRefunded(idempotencyKey: "k1", at: now)?.status == .refunded)
        #expect(try await ledger.chargedTotals() == (0, 0))
        #expect(try await ledger.markRefunded(idempotencyKey: "nope", at: now) == nil)
        var voided = charged
        voided.idempotencyKey = "k2"
        voided.status = .voided
        _ = try await ledger.insertIfAbsent(voided)
        #expect(try await ledger.markRefunded(idempotencyKey: "k2", at: now)?.status == .voided, "only a charge can be refunded")
    }
}
