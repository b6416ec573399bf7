import StorefrontContracts
import StorefrontCore
import Testing

@Suite("In-memory fakes follow the same contracts")
struct InMemoryContractTests {
    @Test func productStore() async throws { try await ProductStoreContract.run(InMemoryStore()) }
    @Test func sagaStore() async throws {
        let store = InMemoryStore()
        try await SagaStoreContract.run(products: store, sagas: store)
    }
    @Test func paymentLedger() async throws { try await PaymentLedgerContract.run(InMemoryStore()) }
}
