import StorefrontCore

/// A point in the saga where tests can inject a fault. `.before(step)` runs before the transaction that holds
/// the step, `.after(step)` once it committed (steps the orchestrator chains into one transaction share it) — except for the payment steps, whose `.before` runs before each call to
/// the provider (`charge`, `refund`): a failure there is a failed provider call, which the orchestrator
/// retries like any other.
public enum SagaFaultPoint: Hashable, Sendable {
    case before(SagaStepName)
    case after(SagaStepName)
}

/// Decides what happens at every fault point (`FaultScript` is the scripted one). Throwing `SimulatedCrash`
/// "kills" the process for that saga (see `FaultInjectingSagaStore`); any other error is an ordinary failure
/// of that step.
public protocol SagaFaultInjector: Sendable {
    func check(_ point: SagaFaultPoint) async throws
}

/// The process "died" at a fault point: nothing more is done for the saga by this instance.
public struct SimulatedCrash: Error, Sendable, Equatable {
    public var point: SagaFaultPoint
    public init(point: SagaFaultPoint) { self.point = point }
}

/// An injected failure of one step.
public struct InjectedFault: Error, Sendable, Equatable, CustomStringConvertible {
    public var point: SagaFaultPoint
    public init(point: SagaFaultPoint) { self.point = point }
    public var description: String { "injected fault at \(point)" }
}
