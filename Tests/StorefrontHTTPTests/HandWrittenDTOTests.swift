import Foundation
import StorefrontCore
@testable import StorefrontHTTP
import Testing

/// The product DTOs written by hand say what their `Encodable` conformance says.
@Suite("Hand-written product JSON")
struct HandWrittenDTOTests {
    static let product = Product(id: 9, sku: "sku-\"1\"", name: "Mug \\ Tasse\n🛒", description: "", priceMinor: 1299, currency: "EUR",
                                 stock: 4, version: 3, updatedAt: Millis.date(1_795_000_000_999))

    static func same<T: JSONObjectWritable>(_ value: T) throws {
        let hand = try JSONSerialization.jsonObject(with: Data(value.jsonText.utf8)) as? NSDictionary
        let codable = try JSONSerialization.jsonObject(with: JSONEncoder().encode(value)) as? NSDictionary
        #expect(hand != nil && hand == codable, "\(value.jsonText)")
    }

    @Test func productViewsAdminViewsAndPages() throws {
        try Self.same(ProductDTO(Self.product))
        try Self.same(AdminProductDTO((product: Self.product, held: 2)))
        try Self.same(ProductPageDTO(items: [ProductDTO(Self.product), ProductDTO(Self.product)], next: "v1:9"))
        try Self.same(ProductPageDTO(items: [], next: nil))
        #expect(ProductPageDTO(items: [], next: nil).jsonText == #"{"items":[],"next":null}"#)
        #expect(ProductDTO(Self.product).updatedAt == "2026-11-18T11:06:40.999Z")
    }
}
