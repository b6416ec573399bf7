import Metrics
import Synchronization

/// One counter per set of dimension values, each handle made once and reused: making a swift-metrics handle
/// goes through the backend's registry (a lock and a lookup), too much for every purchase.
public final class CounterFamily: Sendable {
    private let label: String
    private let dimensionNames: [String]
    private let counters = Mutex<[[String]: Counter]>([:])

    public init(label: String, dimensions: [String] = []) {
        self.label = label
        dimensionNames = dimensions
    }

    /// Increments the counter for `values` (one per dimension name, in order).
    public func increment(_ values: String..., by amount: Int = 1) {
        let counter = counters.withLock { counters in
            if let counter = counters[values] { return counter }
            let counter = Counter(label: label, dimensions: Array(zip(dimensionNames, values)))
            counters[values] = counter
            return counter
        }
        counter.increment(by: amount)
    }
}
