import Foundation

/// A product in the catalogue. Money is integer minor units (cents); `available` is what can still be bought.
public struct Product: Sendable, Equatable, Codable {
    public var id: Int64
    public var sku: String
    public var name: String
    public var description: String
    public var priceMinor: Int64
    public var currency: String
    /// Units that can still be bought: on hand, minus those held by sagas in flight (a reservation takes units
    /// out of `stock`; a confirmation sells them without touching the product; a compensation puts them back).
    public var stock: Int64
    public var version: Int64
    public var updatedAt: Date

    public init(
        id: Int64, sku: String, name: String, description: String, priceMinor: Int64, currency: String,
        stock: Int64, version: Int64, updatedAt: Date
    ) {
        self.id = id
        self.sku = sku
        self.name = name
        self.description = description
        self.priceMinor = priceMinor
        self.currency = currency
        self.stock = stock
        self.version = version
        self.updatedAt = updatedAt
    }

    /// Units that can still be bought (`stock`).
    public var available: Int64 { stock }
}

/// What an administrator supplies to create a product.
public struct NewProduct: Sendable, Equatable {
    public var sku: String
    public var name: String
    public var description: String
    public var priceMinor: Int64
    public var currency: String
    public var stock: Int64

    public init(sku: String, name: String, description: String, priceMinor: Int64, currency: String, stock: Int64) {
        self.sku = sku
        self.name = name
        self.description = description
        self.priceMinor = priceMinor
        self.currency = currency
        self.stock = stock
    }

    /// Checks every field; throws `StorefrontError.validation` naming the first bad one.
    public func validated() throws -> NewProduct {
        try ProductRules.check(sku: sku, name: name, description: description, priceMinor: priceMinor, currency: currency)
        guard stock >= 0, stock <= ProductRules.maxStock else {
            throw StorefrontError.validation("stock must be between 0 and \(ProductRules.maxStock)")
        }
        return self
    }
}

/// A change to a product's descriptive fields; `nil` leaves a field as it is. Stock changes go through restock.
public struct ProductUpdate: Sendable, Equatable {
    public var sku: String?
    public var name: String?
    public var description: String?
    public var priceMinor: Int64?
    public var currency: String?

    public init(sku: String? = nil, name: String? = nil, description: String? = nil, priceMinor: Int64? = nil, currency: String? = nil) {
        self.sku = sku
        self.name = name
        self.description = description
        self.priceMinor = priceMinor
        self.currency = currency
    }

    public var isEmpty: Bool { sku == nil && name == nil && description == nil && priceMinor == nil && currency == nil }

    /// The product with this update applied, validated.
    public func applied(to product: Product) throws -> Product {
        var p = product
        if let sku { p.sku = sku }
        if let name { p.name = name }
        if let description { p.description = description }
        if let priceMinor { p.priceMinor = priceMinor }
        if let currency { p.currency = currency }
        try ProductRules.check(sku: p.sku, name: p.name, description: p.description, priceMinor: p.priceMinor, currency: p.currency)
        return p
    }
}

/// Limits on product fields, shared by every adapter and the HTTP layer.
public enum ProductRules {
    public static let maxSKULength = 64
    public static let maxNameLength = 200
    public static let maxDescriptionLength = 4000
    public static let maxPriceMinor: Int64 = 1_000_000_000_00
    public static let maxStock: Int64 = 1_000_000_000

    static func check(sku: String, name: String, description: String, priceMinor: Int64, currency: String) throws {
        guard !sku.isEmpty, sku.count <= maxSKULength,
              sku.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) })
        else { throw StorefrontError.validation("sku must be 1–\(maxSKULength) characters of letters, digits, '-', '_' or '.'") }
        guard !name.trimmingCharacters(in: .whitespaces).isEmpty, name.count <= maxNameLength else {
            throw StorefrontError.validation("name must be 1–\(maxNameLength) characters")
        }
        guard description.count <= maxDescriptionLength else {
            throw StorefrontError.validation("description must be at most \(maxDescriptionLength) characters")
        }
        guard priceMinor >= 0, priceMinor <= maxPriceMinor else {
            throw StorefrontError.validation("priceMinor must be an integer between 0 and \(maxPriceMinor) (minor units)")
        }
        guard currency.count == 3, currency.allSatisfy({ $0.isASCII && $0.isUppercase }) else {
            throw StorefrontError.validation("currency must be a 3-letter ISO 4217 code such as USD")
        }
    }
}

/// One page of products, ordered by id; `next` is the cursor for the following page.
public struct ProductPage: Sendable, Equatable {
    public var items: [Product]
    public var next: Int64?
    public init(items: [Product], next: Int64?) {
        self.items = items
        self.next = next
    }
}
