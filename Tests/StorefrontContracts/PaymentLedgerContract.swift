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
        let first = try await ledger.insertIfAbsent(charged)
        #expect(first.record == charged && first.inserted)
        #expect(try await ledger.payment(idempotencyKey: "k1") == first.record, "what insertIfAbsent answered is what is stored")
        var second = charged
        second.status = .voided
        second.reference = "r2"
        let again = try await ledger.insertIfAbsent(second)
        #expect(again.record.reference == "r1" && !again.inserted, "the first record keeps the key")
        // Times are stored in whole milliseconds: the answer of an insert says so too.
        var precise = charged
        precise.idempotencyKey = "k3"
        precise.createdAt = now.addingTimeInterval(0.0004567)
        precise.updatedAt = precise.createdAt
        let stored = try await ledger.insertIfAbsent(precise)
        #expect(try await ledger.payment(idempotencyKey: "k3") == stored.record)
        #expect(try await ledger.markRefunded(idempotencyKey: "k3", at: now)?.status == .refunded)
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
