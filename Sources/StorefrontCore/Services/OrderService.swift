import Foundation

/// An order with its saga and the saga's timeline (every step, time and outcome).
public struct OrderView: Sendable, Equatable {
    public var order: Order
    public var saga: Saga
    public var steps: [SagaStep]
}

/// `GET /orders/{id}` and the operator's event log: reads of what purchases wrote. Orders are read from the
/// primary (a client checks its order right after buying it).
public struct OrderService: Sendable {
    private let sagas: any SagaStore
    private let outbox: any OutboxStore

    public init(sagas: any SagaStore, outbox: any OutboxStore) {
        self.sagas = sagas
        self.outbox = outbox
    }

    public func order(id: Int64) async throws -> OrderView {
        guard let order = try await sagas.order(id: id), let saga = try await sagas.saga(id: order.sagaId) else {
            throw StorefrontError.orderNotFound(id)
        }
        return OrderView(order: order, saga: saga, steps: try await sagas.steps(sagaId: saga.id))
    }

    /// The order a saga created (nil if it never got that far, or no such saga).
    public func orderId(sagaId: UUID) async throws -> Int64? {
        try await sagas.saga(id: sagaId)?.orderId
    }

    /// Saga events as the outbox holds them (`id > after`, in id order, optionally of one saga), published or not.
    public func events(after: Int64, limit: Int, sagaId: UUID?) async throws -> [OutboxRecord] {
        try await outbox.records(after: after, limit: limit, sagaId: sagaId)
    }
}
