import Foundation
import StorefrontCore

/// Wire shapes (DESIGN §5). Fields may be added; none is renamed.
struct ProductDTO: Codable, Equatable {
    var id: Int64
    var sku: String
    var name: String
    var description: String
    var priceMinor: Int64
    var currency: String
    var available: Int64
    var updatedAt: String

    init(_ p: Product) {
        id = p.id
        sku = p.sku
        name = p.name
        description = p.description
        priceMinor = p.priceMinor
        currency = p.currency
        available = max(p.available, 0)
        updatedAt = Timestamp.rfc3339(p.updatedAt)
    }
}

extension ProductDTO: JSONObjectWritable {
    func write(to w: inout JSONObjectWriter) {
        w.field("id", id)
        w.field("sku", sku)
        w.field("name", name)
        w.field("description", description)
        w.field("priceMinor", priceMinor)
        w.field("currency", currency)
        w.field("available", available)
        w.field("updatedAt", updatedAt)
    }
}

/// `GET /admin/products/{id}`: the public shape plus the primary's bookkeeping.
struct AdminProductDTO: Encodable {
    var product: ProductDTO
    /// Units on hand, including those held by sagas in flight.
    var stock: Int64
    /// Units held by sagas in flight (reserved, not yet sold or given back).
    var reserved: Int64
    var version: Int64

    init(_ read: (product: Product, held: Int64)) {
        product = ProductDTO(read.product)
        stock = read.product.stock + read.held
        reserved = read.held
        version = read.product.version
    }

    private enum CodingKeys: String, CodingKey { case stock, reserved, version }

    func encode(to encoder: any Encoder) throws {
        try product.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(stock, forKey: .stock)
        try c.encode(reserved, forKey: .reserved)
        try c.encode(version, forKey: .version)
    }
}

extension AdminProductDTO: JSONObjectWritable {
    func write(to w: inout JSONObjectWriter) {
        product.write(to: &w)
        w.field("stock", stock)
        w.field("reserved", reserved)
        w.field("version", version)
    }
}

struct ProductPageDTO: Codable {
    var items: [ProductDTO]
    /// Cursor of the next page; explicitly `null` on the last page.
    var next: String?

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(items, forKey: .items)
        try c.encode(next, forKey: .next)
    }
}

extension ProductPageDTO: JSONObjectWritable {
    func write(to w: inout JSONObjectWriter) {
        w.field("items", json: "[" + items.map(\.jsonText).joined(separator: ",") + "]")
        if let next { w.field("next", next) } else { w.field("next", json: "null") }
    }
}

struct PurchaseBody: Decodable {
    var productId: Int64
    var qty: Int64
}

struct PurchaseDTO: Codable {
    var orderId: Int64?
    var sagaId: String
    var status: String
    var productId: Int64
    var qty: Int64
    var amountMinor: Int64
    var currency: String

    init(_ saga: Saga) {
        orderId = saga.orderId
        sagaId = saga.id.uuidString
        status = saga.state == .confirmed ? OrderStatus.confirmed.rawValue : OrderStatus.pending.rawValue
        productId = saga.productId
        qty = saga.qty
        amountMinor = saga.amountMinor
        currency = saga.currency
    }
}

struct OrderDTO: Codable {
    struct SagaDTO: Codable {
        var id: String
        var state: String
        var mode: String
        var failureCode: String?
        var attempts: Int
        var needsAttention: Bool
        var steps: [StepDTO]
    }

    struct StepDTO: Codable {
        var name: String
        var status: String
        var at: String
        var detail: String?
    }

    var id: Int64
    var status: String
    var productId: Int64
    var qty: Int64
    var amountMinor: Int64
    var currency: String
    var createdAt: String
    var updatedAt: String
    var saga: SagaDTO

    init(order: Order, saga: Saga, steps: [SagaStep]) {
        id = order.id
        status = order.status.rawValue
        productId = order.productId
        qty = order.qty
        amountMinor = order.amountMinor
        currency = order.currency
        createdAt = Timestamp.rfc3339(order.createdAt)
        updatedAt = Timestamp.rfc3339(order.updatedAt)
        self.saga = SagaDTO(
            id: saga.id.uuidString, state: saga.state.rawValue, mode: saga.mode.rawValue, failureCode: saga.failureCode?.rawValue,
            attempts: saga.attempts, needsAttention: saga.needsAttention,
            steps: steps.map { StepDTO(name: $0.name.rawValue, status: $0.status.rawValue, at: Timestamp.rfc3339($0.at), detail: $0.detail) })
    }
}

struct NewProductBody: Decodable {
    var sku: String
    var name: String
    var description: String?
    var priceMinor: Int64
    var currency: String
    var stock: Int64?

    private enum CodingKeys: String, CodingKey { case sku, name, description, priceMinor, currency, stock }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self).refusingNulls()
        sku = try c.decode(String.self, forKey: .sku)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        priceMinor = try c.decode(Int64.self, forKey: .priceMinor)
        currency = try c.decode(String.self, forKey: .currency)
        stock = try c.decodeIfPresent(Int64.self, forKey: .stock)
    }

    var model: NewProduct {
        NewProduct(sku: sku, name: name, description: description ?? "", priceMinor: priceMinor, currency: currency, stock: stock ?? 0)
    }
}

struct ProductUpdateBody: Decodable {
    var sku: String?
    var name: String?
    var description: String?
    var priceMinor: Int64?
    var currency: String?

    private enum CodingKeys: String, CodingKey { case sku, name, description, priceMinor, currency }

    /// Absent fields stay as they are.
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self).refusingNulls()
        sku = try c.decodeIfPresent(String.self, forKey: .sku)
        name = try c.decodeIfPresent(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        priceMinor = try c.decodeIfPresent(Int64.self, forKey: .priceMinor)
        currency = try c.decodeIfPresent(String.self, forKey: .currency)
    }

    var model: ProductUpdate {
        ProductUpdate(sku: sku, name: name, description: description, priceMinor: priceMinor, currency: currency)
    }
}

struct RestockBody: Decodable {
    var qty: Int64
}

struct EventPageDTO: Codable {
    struct Item: Codable {
        var id: Int64
        var published: Bool
        var event: SagaEvent
    }

    var items: [Item]
    var next: Int64?

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(items, forKey: .items)
        try c.encode(next, forKey: .next)
    }
}

extension KeyedDecodingContainer {
    /// Absent optional fields are fine; an explicit `null` is refused (it would be ambiguous).
    func refusingNulls() throws -> Self {
        for key in allKeys where try decodeNil(forKey: key) {
            throw DecodingError.valueNotFound(String.self, .init(codingPath: codingPath + [key], debugDescription: "null"))
        }
        return self
    }
}

/// `GET /admin/sagas`: unfinished sagas for an operator.
struct SagaListDTO: Encodable {
    struct Item: Encodable {
        var id: String
        var state: String
        var productId: Int64
        var qty: Int64
        var amountMinor: Int64
        var currency: String
        var orderId: Int64?
        var owner: String
        var epoch: Int
        var attempts: Int
        var needsAttention: Bool
        var failureCode: String?
        var lastError: String?
        var createdAt: String
        var updatedAt: String

        init(_ saga: Saga) {
            id = saga.id.uuidString
            state = saga.state.rawValue
            productId = saga.productId
            qty = saga.qty
            amountMinor = saga.amountMinor
            currency = saga.currency
            orderId = saga.orderId
            owner = saga.owner
            epoch = saga.epoch
            attempts = saga.attempts
            needsAttention = saga.needsAttention
            failureCode = saga.failureCode?.rawValue
            lastError = saga.lastError
            createdAt = Timestamp.rfc3339(saga.createdAt)
            updatedAt = Timestamp.rfc3339(saga.updatedAt)
        }
    }

    var items: [Item]
}

/// `GET|PUT /admin/payment-simulator`: the simulated provider's behaviour (rates 0–1, latency in ms).
struct PaymentSimulatorBody: Codable {
    var latencyMs: Int
    var failureRate: Double
    var declineRate: Double
    var timeoutRate: Double
    var hangRate: Double

    init(_ b: SimulatedPaymentGateway.Behavior) {
        latencyMs = Int(Millis.of(b.latency))
        failureRate = b.failureRate
        declineRate = b.declineRate
        timeoutRate = b.timeoutAfterChargeRate
        hangRate = b.hangRate
    }

    func behavior() throws -> SimulatedPaymentGateway.Behavior {
        guard (0...60_000).contains(latencyMs) else { throw APIError(status: .unprocessableContent, code: "validation_failed", message: "latencyMs must be 0…60000") }
        for (name, rate) in [("failureRate", failureRate), ("declineRate", declineRate), ("timeoutRate", timeoutRate), ("hangRate", hangRate)]
        where !(0...1).contains(rate) {
            throw APIError(status: .unprocessableContent, code: "validation_failed", message: "\(name) must be between 0 and 1")
        }
        guard failureRate + declineRate <= 1 else {
            throw APIError(status: .unprocessableContent, code: "validation_failed", message: "failureRate + declineRate must not exceed 1")
        }
        return .init(latency: .milliseconds(latencyMs), failureRate: failureRate, declineRate: declineRate, timeoutAfterChargeRate: timeoutRate,
                     hangRate: hangRate)
    }
}
