import Foundation

/// Names of saga steps and compensations as they appear in the timeline.
public enum SagaStepName: String, Sendable, Codable, CaseIterable {
    case startSaga
    case reserveInventory
    case createOrder
    case processPayment
    case confirmOrder
    case startCompensation
    case refundPayment
    case cancelOrder
    case releaseInventory
    case failSaga
}

/// Outcome of one timeline entry.
public enum SagaStepStatus: String, Sendable, Codable {
    case done
    case failed
    case compensated
    case skipped
}

/// One entry of a saga's timeline (the `saga_steps` rows).
public struct SagaStep: Sendable, Equatable {
    public var sequence: Int
    public var name: SagaStepName
    public var status: SagaStepStatus
    public var detail: String?
    public var at: Date

    public init(sequence: Int, name: SagaStepName, status: SagaStepStatus, detail: String?, at: Date) {
        self.sequence = sequence
        self.name = name
        self.status = status
        self.detail = detail
        self.at = at
    }
}
