import StorefrontCore
import Synchronization

/// A point where a test holds a simulated process still (a GC pause, SIGSTOP, a slow disk) until it is
/// opened. The test awaits `reached()` to know the process is parked there.
public final class FaultGate: Sendable {
    private struct State {
        var open = false
        var arrivals = 0
        var parked: [CheckedContinuation<Void, Never>] = []
        var watchers: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    public init() {}

    /// Called by the paused process: parks it until `open()` (passes at once if already open).
    public func pass() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let (resume, watchers) = state.withLock { s -> (Bool, [CheckedContinuation<Void, Never>]) in
                s.arrivals += 1
                let watchers = s.watchers
                s.watchers = []
                if s.open { return (true, watchers) }
                s.parked.append(c)
                return (false, watchers)
            }
            watchers.forEach { $0.resume() }
            if resume { c.resume() }
        }
    }

    /// Returns once some process has reached the gate.
    public func reached() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let already = state.withLock { s -> Bool in
                if s.arrivals > 0 { return true }
                s.watchers.append(c)
                return false
            }
            if already { c.resume() }
        }
    }

    /// Lets every parked process (and every later one) through.
    public func open() {
        let parked = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.open = true
            defer { s.parked = [] }
            return s.parked
        }
        parked.forEach { $0.resume() }
    }
}

/// A `PaymentGateway` whose process stalls right after the provider answered a charge or a refund, before the
/// saga records it: the window in which another instance may take the saga over.
public struct StallingPaymentGateway: PaymentGateway {
    let inner: any PaymentGateway
    let afterCharge: FaultGate?
    let afterRefund: FaultGate?

    public init(_ inner: any PaymentGateway, afterCharge: FaultGate? = nil, afterRefund: FaultGate? = nil) {
        self.inner = inner
        self.afterCharge = afterCharge
        self.afterRefund = afterRefund
    }

    public func charge(idempotencyKey: String, amountMinor: Int64, currency: String) async throws -> ChargeResult {
        let result = try await inner.charge(idempotencyKey: idempotencyKey, amountMinor: amountMinor, currency: currency)
        await afterCharge?.pass()
        return result
    }

    public func status(idempotencyKey: String) async throws -> PaymentStatus { try await inner.status(idempotencyKey: idempotencyKey) }

    public func refund(idempotencyKey: String) async throws -> Bool {
        let result = try await inner.refund(idempotencyKey: idempotencyKey)
        await afterRefund?.pass()
        return result
    }
}
