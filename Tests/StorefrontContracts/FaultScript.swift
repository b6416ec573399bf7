import StorefrontCore
import Synchronization

/// A scripted `SagaFaultInjector`: each fault point can be told to crash the instance or to fail N times.
public final class FaultScript: SagaFaultInjector {
    public enum Fault: Sendable {
        /// The process "dies" here, every time this point is reached.
        case crash
        /// This point fails the next `times` times, then passes.
        case fail(times: Int)
        /// The process stalls here until the gate opens (a GC pause, SIGSTOP).
        case pause(FaultGate)
    }

    private let faults = Mutex<[SagaFaultPoint: Fault]>([:])
    private let hits = Mutex<[SagaFaultPoint: Int]>([:])

    public init(_ faults: [SagaFaultPoint: Fault] = [:]) {
        self.faults.withLock { $0 = faults }
    }

    public func set(_ point: SagaFaultPoint, _ fault: Fault?) {
        faults.withLock { $0[point] = fault }
    }

    /// How often `point` was reached.
    public func count(_ point: SagaFaultPoint) -> Int { hits.withLock { $0[point] ?? 0 } }

    public func check(_ point: SagaFaultPoint) async throws {
        hits.withLock { $0[point, default: 0] += 1 }
        let fault: Fault? = faults.withLock { map in
            guard let fault = map[point] else { return nil }
            if case .fail(let times) = fault {
                map[point] = times > 1 ? .fail(times: times - 1) : nil
            }
            return fault
        }
        switch fault {
        case .crash: throw SimulatedCrash(point: point)
        case .fail: throw InjectedFault(point: point)
        case .pause(let gate): await gate.pass()
        case nil: return
        }
    }
}
