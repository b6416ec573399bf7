/// Which way a saga is being driven.
public enum SagaDirection: Sendable, Equatable {
    case forward
    /// Unwind what was done, recording why.
    case compensate(code: SagaFailureCode, reason: String)
}

/// The saga's state machine as a pure function: given where a saga is and which way it is going,
/// what must happen next. The orchestrator performs the answer; stores only apply guarded transitions.
public enum SagaPlan {
    public enum Action: Sendable, Equatable {
        /// Apply this guarded transition.
        case apply(SagaTransition)
        /// Charge the payment (the pivot), then apply `paymentSucceeded` or compensate.
        case charge
        /// Refund or void the payment, then apply `paymentReversed(refunded:)`.
        case refund
        /// The saga is terminal.
        case finished
    }

    public static func next(_ state: SagaState, _ direction: SagaDirection) -> Action {
        if state.isTerminal { return .finished }
        // Past the pivot the saga only moves forward; once unwinding it only moves back.
        let compensating: (code: SagaFailureCode, reason: String)?
        switch direction {
        case .forward: compensating = state.isCompensating ? (.compensated, "resumed compensation") : nil
        case .compensate(let code, let reason): compensating = state.isPastPivot ? nil : (code, reason)
        }
        if let (code, reason) = compensating {
            switch state {
            case .started:
                return .apply(.init(step: .failSaga, from: .started, to: .failed, effect: .none, status: .failed,
                                    events: [.sagaFailed], failureCode: code, detail: reason))
            case .reserved:
                return .apply(releaseInventory(from: .reserved, code: code, reason: reason))
            case .orderCreated:
                // Durable before the provider is called: from here no forward step can be applied.
                return .apply(.init(step: .startCompensation, from: .orderCreated, to: .refunding, effect: .none,
                                    status: .compensated, events: [], failureCode: code, detail: reason))
            case .refunding:
                return .refund
            case .paymentReversed:
                return .apply(.init(step: .cancelOrder, from: .paymentReversed, to: .orderCancelled, effect: .cancelOrder,
                                    status: .compensated, events: [.orderCancelled], failureCode: code, detail: reason))
            case .orderCancelled:
                return .apply(releaseInventory(from: .orderCancelled, code: code, reason: reason))
            case .paid, .confirmed, .compensated, .failed:
                break
            }
        }
        switch state {
        case .started:
            return .apply(.init(step: .reserveInventory, from: .started, to: .reserved, effect: .reserveInventory,
                                events: [.inventoryReserved]))
        case .reserved:
            return .apply(.init(step: .createOrder, from: .reserved, to: .orderCreated, effect: .createOrder,
                                events: [.orderCreated]))
        case .orderCreated:
            return .charge
        case .paid:
            return .apply(.init(step: .confirmOrder, from: .paid, to: .confirmed, effect: .confirmOrder,
                                events: [.orderConfirmed]))
        case .refunding, .paymentReversed, .orderCancelled, .confirmed, .compensated, .failed:
            return .finished  // unreachable: handled above
        }
    }

    /// The transitions that follow one another from `state` without anything outside the database in between
    /// (no payment call): the orchestrator applies them in one transaction. Empty when the next action is the
    /// charge, the refund, or the saga is terminal.
    public static func chain(from state: SagaState, _ direction: SagaDirection) -> [SagaTransition] {
        var chain: [SagaTransition] = []
        var state = state
        while case .apply(let transition) = next(state, direction) {
            chain.append(transition)
            state = transition.to
        }
        return chain
    }

    /// The reservation found too little stock: the saga fails with nothing to undo.
    public static func insufficientStock(available: Int64?) -> SagaTransition {
        .init(step: .reserveInventory, from: .started, to: .failed, effect: .none, status: .failed,
              events: [.sagaFailed], failureCode: .insufficientStock,
              detail: available.map { "only \(max($0, 0)) unit(s) available" } ?? "not enough stock")
    }

    /// The payment provider charged the amount: the pivot is passed.
    public static func paymentSucceeded(reference: String) -> SagaTransition {
        .init(step: .processPayment, from: .orderCreated, to: .paid, effect: .recordPayment(reference: reference),
              events: [.paymentProcessed], detail: "reference \(reference)")
    }

    /// The payment was refunded (`refunded`) or there was nothing to refund and the key is now void.
    public static func paymentReversed(refunded: Bool, code: SagaFailureCode, reason: String) -> SagaTransition {
        .init(step: .refundPayment, from: .refunding, to: .paymentReversed, effect: .none,
              status: refunded ? .compensated : .skipped, events: refunded ? [.paymentRefunded] : [],
              failureCode: code, detail: refunded ? "payment refunded; \(reason)" : "nothing was charged; \(reason)")
    }

    private static func releaseInventory(from: SagaState, code: SagaFailureCode, reason: String) -> SagaTransition {
        .init(step: .releaseInventory, from: from, to: .compensated, effect: .releaseInventory, status: .compensated,
              events: [.inventoryReleased, .sagaCompensated], failureCode: code, detail: reason)
    }
}
