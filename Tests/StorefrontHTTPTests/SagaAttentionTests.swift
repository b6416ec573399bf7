import Foundation
import HTTPTypes
import HummingbirdTesting
import StorefrontApp
import StorefrontCore
import Testing

/// Issue 10.5 through the API: a hung payment provider, bounded waits, a saga left to a person, and the
/// operator's way out.
@Suite("Sagas that need a person")
struct SagaAttentionTests {
    @Test func aHungProviderEndsInAttentionThenTheOperatorResolvesIt() async throws {
        let url = temporaryDatabaseURL()
        let tweak: @Sendable (inout StorefrontConfig) -> Void = {
            $0.paymentHangRate = 1
            $0.paymentCallTimeoutMilliseconds = 100
            $0.sagaLeaseSeconds = 1
            $0.sagaMaxAttempts = 1
        }
        let storefront = try await makeStorefront(databaseURL: url, tweak)
        let (id, sagaId) = try await storefront.test { client in
            let id = try await client.createProduct(stock: 10)
            let start = ContinuousClock.now
            let r = try await client.purchase(id, qty: 2)
            #expect(r.status == .serviceUnavailable && r.headers[.retryAfter] != nil, "\(r.raw)")
            #expect(ContinuousClock.now - start < .seconds(10), "the hung provider is not waited for forever")
            let sagas = try await client.call(.get, "/admin/sagas", headers: [.authorization: "Bearer \(adminToken)"])
            let items = try #require(sagas.json["items"] as? [[String: any Sendable]])
            let saga = try #require(items.first)
            #expect(saga["state"] as? String == "REFUNDING" && saga["needsAttention"] as? Bool == false)
            return (id, try #require(saga["id"] as? String))
        }
        // The lease passes; recovery tries once (its maximum here), the provider still hangs: left to a person.
        try await Task.sleep(for: .milliseconds(1100))
        let report = try await storefront.recovery.pass()
        #expect(report.claimed == 1 && report.flagged == 1)
        try await Task.sleep(for: .milliseconds(1100))
        #expect(try await storefront.recovery.pass().claimed == 0, "never claimed while it needs attention")
        try await storefront.test { client in
            let listed = try await client.call(.get, "/admin/sagas?state=needs_attention", headers: [.authorization: "Bearer \(adminToken)"])
            let item = try #require((listed.json["items"] as? [[String: any Sendable]])?.first)
            #expect(item["id"] as? String == sagaId && item["needsAttention"] as? Bool == true && item["attempts"] as? Int == 1)
            #expect((item["lastError"] as? String)?.contains("did not answer") == true)
            #expect(try await client.call(.get, "/products/\(id)").int("available") == 8, "its units stay reserved")
            let bad = try await client.call(.get, "/admin/sagas?state=bogus", headers: [.authorization: "Bearer \(adminToken)"])
            #expect(bad.status == .badRequest && bad.error == "invalid_parameter")
            #expect(try await client.call(.get, "/admin/sagas").status == .unauthorized)
        }
        // The provider answers again; the operator resolves it from the command line's runbook.
        var config = StorefrontConfig(instanceID: "ops")
        config.databaseURL = url
        let message = try await StorefrontDatabase.with(config, logger: .init(label: "test")) { database in
            let runbook = SagaRunbook(config: config, database: database, logger: .init(label: "test"))
            #expect(try await runbook.list(needingAttention: true, limit: 10).first?.contains("NEEDS-ATTENTION") == true)
            return try await runbook.resolve(try #require(UUID(uuidString: sagaId)))
        }
        #expect(message.contains("COMPENSATED") && message.contains("payment_unavailable"), "the recorded reason stays: \(message)")
        try await storefront.test { client in
            // (the app's cached product page may still say 8: this runbook ran outside the app server)
            #expect(try await storefront.database.products.product(id: id, consistency: .primary)?.available == 10)
            let listed = try await client.call(.get, "/admin/sagas", headers: [.authorization: "Bearer \(adminToken)"])
            #expect((listed.json["items"] as? [[String: any Sendable]])?.isEmpty == true)
        }
    }

    /// The same through the admin API, inside the app server: retry hands it back to recovery; resolve finishes
    /// it now and refreshes the server's cached product.
    @Test func theAdminAPIRetriesAndResolves() async throws {
        let storefront = try await makeStorefront {
            $0.paymentHangRate = 1
            $0.paymentCallTimeoutMilliseconds = 100
            $0.sagaLeaseSeconds = 1
            $0.sagaMaxAttempts = 1
        }
        let auth: HTTPFields = [.authorization: "Bearer \(adminToken)"]
        try await storefront.test { client in
            let id = try await client.createProduct(stock: 10)
            #expect(try await client.purchase(id, qty: 2).status == .serviceUnavailable)
            #expect(try await client.call(.get, "/products/\(id)").int("available") == 8)
            // The lease (1 s) runs from the saga's last step, which a loaded machine may take a while to write:
            // recovery flags it once the lease has expired, within a few seconds — this pass or the server's own
            // periodic one, whichever comes first (so the flag is looked for, not the pass's count).
            var listed = try await client.call(.get, "/admin/sagas?state=needs_attention", headers: auth)
            for _ in 0..<50 where (listed.json["items"] as? [[String: any Sendable]])?.count != 1 {
                try await Task.sleep(for: .milliseconds(200))
                _ = try await storefront.recovery.pass()
                listed = try await client.call(.get, "/admin/sagas?state=needs_attention", headers: auth)
            }
            #expect((listed.json["items"] as? [[String: any Sendable]])?.count == 1, "flagged")
            let sagaId = try #require((listed.json["items"] as? [[String: any Sendable]])?.first?["id"] as? String)
            // retry: back to recovery (which gives up again: the provider still hangs)
            let retried = try await client.call(.post, "/admin/sagas/\(sagaId)/retry", headers: auth)
            #expect(retried.status == .ok && retried.json["needsAttention"] as? Bool == false && retried.int("attempts") == 0, "\(retried.raw)")
            #expect(try await storefront.recovery.pass().flagged == 1)
            // resolve while the provider still hangs: refused, still needs attention
            let failed = try await client.call(.post, "/admin/sagas/\(sagaId)/resolve", headers: auth)
            #expect(failed.status == .serviceUnavailable, "\(failed.raw)")
            #expect(try await storefront.database.sagas.saga(id: try #require(UUID(uuidString: sagaId)))?.needsAttention == true)
            storefront.gateway.setBehavior(.reliable)
            let resolved = try await client.call(.post, "/admin/sagas/\(sagaId)/resolve", headers: auth)
            #expect(resolved.status == .ok && resolved.string("state") == "COMPENSATED", "\(resolved.raw)")
            #expect(try await client.call(.get, "/products/\(id)").int("available") == 10, "the app's cached product was refreshed")
            #expect(try await client.call(.post, "/admin/sagas/\(sagaId)/resolve", headers: auth).error == "saga_not_found")
            #expect(try await client.call(.post, "/admin/sagas/not-a-uuid/retry", headers: auth).error == "invalid_parameter")
        }
    }

    /// The nemesis and the drills tune each app server's simulated provider at run time.
    @Test func thePaymentSimulatorIsTunedThroughTheAdminAPI() async throws {
        let storefront = try await makeStorefront()
        let auth: HTTPFields = [.authorization: "Bearer \(adminToken)"]
        try await storefront.test { client in
            let id = try await client.createProduct(stock: 10)
            let set = try await client.call(.put, "/admin/payment-simulator",
                                            body: #"{"latencyMs":0,"failureRate":0,"declineRate":1,"timeoutRate":0,"hangRate":0}"#, headers: auth)
            #expect(set.status == .ok && set.json["declineRate"] as? Double == 1, "\(set.raw)")
            #expect(try await client.purchase(id).error == "payment_declined")
            let bad = try await client.call(.put, "/admin/payment-simulator",
                                            body: #"{"latencyMs":0,"failureRate":0.6,"declineRate":0.6,"timeoutRate":0,"hangRate":0}"#, headers: auth)
            #expect(bad.status == .unprocessableContent && bad.error == "validation_failed")
            #expect(try await client.call(.get, "/admin/payment-simulator", headers: auth).json["declineRate"] as? Double == 1, "unchanged")
            #expect(try await client.call(.put, "/admin/payment-simulator", body: "{}").status == .unauthorized)
            _ = try await client.call(.put, "/admin/payment-simulator",
                                      body: #"{"latencyMs":0,"failureRate":0,"declineRate":0,"timeoutRate":0,"hangRate":0}"#, headers: auth)
            #expect(try await client.purchase(id).status == .created)
        }
    }

    /// An operator's action on a saga whose owner's lease is live is refused unless forced.
    @Test func aSagaInFlightIsOnlyTakenWhenForced() async throws {
        let storefront = try await makeStorefront {
            $0.paymentHangRate = 1
            $0.paymentCallTimeoutMilliseconds = 50
            $0.sagaLeaseSeconds = 30
        }
        let auth: HTTPFields = [.authorization: "Bearer \(adminToken)"]
        try await storefront.test { client in
            let id = try await client.createProduct(stock: 10)
            #expect(try await client.purchase(id, qty: 1).status == .serviceUnavailable)
            let listed = try await client.call(.get, "/admin/sagas", headers: auth)
            let sagaId = try #require((listed.json["items"] as? [[String: any Sendable]])?.first?["id"] as? String)
            let refused = try await client.call(.post, "/admin/sagas/\(sagaId)/resolve", headers: auth)
            #expect(refused.status == .conflict && refused.error == "saga_in_flight", "\(refused.raw)")
            #expect(try await client.call(.post, "/admin/sagas/\(sagaId)/retry", headers: auth).error == "saga_in_flight")
            #expect(try await client.call(.post, "/admin/sagas/\(sagaId)/retry?force=maybe", headers: auth).error == "invalid_parameter")
            storefront.gateway.setBehavior(.reliable)
            let forced = try await client.call(.post, "/admin/sagas/\(sagaId)/resolve?force=true", headers: auth)
            #expect(forced.status == .ok && forced.string("state") == "COMPENSATED" && forced.int("epoch") == 2, "\(forced.raw)")
        }
    }
}
