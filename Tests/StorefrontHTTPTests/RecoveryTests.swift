import Foundation
import HummingbirdTesting
import StorefrontApp
import StorefrontContracts
import StorefrontCore
import Testing

@Suite("Recovery across instances")
struct RecoveryTests {
    /// Instance A dies mid-saga (its saga ports "crash" at `point`); instance B, sharing the database, finishes or compensates its
    /// sagas once their leases expire.
    @Test(arguments: [
        (SagaFaultPoint.after(.reserveInventory), "COMPENSATED"),
        (.after(.createOrder), "COMPENSATED"),
        // charged, not recorded: still before the pivot, so B refunds the key
        (.before(.confirmOrder), "COMPENSATED"),
    ])
    func survivorFinishesADeadInstancesSagas(point: SagaFaultPoint, expected: String) async throws {
        let url = temporaryDatabaseURL()
        let lease = 10
        let a = try await makeStorefront(databaseURL: url, instance: "app-a", faults: FaultScript([point: .crash])) { $0.sagaLeaseSeconds = lease }
        let b = try await makeStorefront(databaseURL: url, instance: "app-b") { $0.sagaLeaseSeconds = lease }
        let started = ContinuousClock.now  // every saga starts after this: none may be claimed before `lease` s from here
        let (id, dead) = try await a.test { client in
            let id = try await client.createProduct(stock: 10)
            var replies: [Reply] = []
            for _ in 0..<3 { replies.append(try await client.purchase(id, qty: 2)) }
            return (id, replies)
        }
        // From the crash on, the dying instance's saga store fails for that saga: it answers 5xx (never success).
        #expect(dead.allSatisfy { $0.status.code >= 500 }, "the dying instance never answered success: \(dead.map(\.status.code))")
        #expect(try await b.services.sagas.countUnfinished() == 3)

        // Before the lease ends (by the database's clock), B leaves them alone; after, it claims and finishes all
        // three. (Polled, not slept for: on a busy machine the sagas start later than the test expects.)
        #expect(try await b.recovery.recoverOnce().claimed == 0)
        var claimed = 0, finished = 0
        var firstClaim: ContinuousClock.Instant?
        while claimed < 3, ContinuousClock.now - started < .seconds(lease + 30) {
            try await Task.sleep(for: .milliseconds(250))
            let report = try await b.recovery.recoverOnce()
            if report.claimed > 0, firstClaim == nil { firstClaim = .now }
            claimed += report.claimed
            finished += report.finished
        }
        #expect(claimed == 3 && finished == 3)
        #expect(try #require(firstClaim) - started >= .seconds(lease), "no saga was claimed before its lease could have ended")
        #expect(try await b.services.sagas.countUnfinished() == 0)

        let product = try #require(try await b.database.products.product(id: id, consistency: .primary))
        #expect(try await b.database.products.unitsHeld(productId: id) == 0)
        #expect(product.stock == (expected == "CONFIRMED" ? 4 : 10))
        try await b.test { client in
            #expect(try await client.call(.get, "/products/\(id)").int("available") == product.available)
            if expected == "CONFIRMED" {
                for orderId in 1...3 {
                    let order = try await client.call(.get, "/orders/\(orderId)")
                    #expect(order.string("status") == "CONFIRMED")
                    let saga = try #require(order.json["saga"] as? [String: any Sendable])
                    #expect(saga["attempts"] as? Int == 1)
                }
            }
            // B keeps selling normally afterwards.
            #expect(try await client.purchase(id, qty: 1).status == .created)
        }
        #expect(try await b.database.payments.chargedTotals().count == (expected == "CONFIRMED" ? 4 : 1))
    }
}

@Suite("Sagas that cannot finish in the request")
struct UnfinishedSagaTests {
    @Test func compensationThatKeepsFailingAnswers503AndRecoveryFinishesIt() async throws {
        let faults = FaultScript([.before(.releaseInventory): .fail(times: 1000)])
        let storefront = try await makeStorefront(faults: faults) {
            $0.paymentDeclineRate = 1
            $0.sagaLeaseSeconds = 1
        }
        try await storefront.test { client in
            let id = try await client.createProduct(stock: 5)
            let r = try await client.purchase(id, qty: 2)
            #expect(r.status == .serviceUnavailable && r.error == "service_unavailable", "\(r.raw)")
            #expect(r.headers[.retryAfter] != nil)
            #expect(try await storefront.services.sagas.countUnfinished() == 1)
            faults.set(.before(.releaseInventory), nil)
            try await Task.sleep(for: .milliseconds(1100))
            #expect(try await storefront.recovery.recoverOnce().finished == 1)
            #expect(try await client.call(.get, "/products/\(id)").int("available") == 5)
        }
    }

    /// The payment is recorded with the confirmation: when that transaction keeps failing the charge is
    /// refunded and the order cancelled (the saga never passed the pivot), and the answer says retry.
    @Test func paymentThatCannotBeRecordedIsRefundedAndAnswers503() async throws {
        let faults = FaultScript([.before(.confirmOrder): .fail(times: 1000)])
        let storefront = try await makeStorefront(faults: faults) { $0.sagaLeaseSeconds = 1 }
        try await storefront.test { client in
            let id = try await client.createProduct(stock: 5)
            let r = try await client.purchase(id, qty: 2)
            #expect(r.status == .serviceUnavailable && r.error == "service_unavailable", "\(r.raw)")
            #expect(try await storefront.services.sagas.countUnfinished() == 0)
            #expect(try await storefront.database.payments.chargedTotals().count == 0, "refunded")
            #expect(try await client.call(.get, "/orders/1").string("status") == "CANCELLED")
            #expect(try await client.call(.get, "/products/\(id)").int("available") == 5)
        }
    }
}
