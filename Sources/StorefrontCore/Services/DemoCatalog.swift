import Foundation

/// `storefront seed`: the demo catalogue `demo-1` … `demo-N`, created in batches. Idempotent: SKUs that
/// exist are kept as they are (their stock is not reset).
public struct DemoCatalog: Sendable {
    let products: any ProductStore
    let batchSize: Int

    public init(products: any ProductStore, batchSize: Int = 500) {
        self.products = products
        self.batchSize = max(batchSize, 1)
    }

    /// Demo product number `n` (1-based): a fixed SKU and name, a price between 1.99 and 99.98 USD.
    public static func product(_ n: Int, stock: Int64) -> NewProduct {
        NewProduct(sku: "demo-\(n)", name: "Demo product \(n)", description: "Seeded demo product number \(n).",
                   priceMinor: Int64(199 + ((n - 1) * 37) % 9800), currency: "USD", stock: stock)
    }

    /// Creates the products missing among the first `count`; `progress` gets the number handled so far.
    /// Returns how many were created.
    @discardableResult
    public func seed(count: Int, stock: Int64, now: Date, progress: @Sendable (Int) -> Void = { _ in }) async throws -> Int {
        var done = 0
        var created = 0
        while done < count {
            let end = min(done + batchSize, count)
            created += try await products.insertIgnoringExisting((done + 1...end).map { Self.product($0, stock: stock) }, now: now)
            done = end
            progress(done)
        }
        return created
    }
}
