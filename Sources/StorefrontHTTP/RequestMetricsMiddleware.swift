import Dispatch
import HTTPTypes
import Hummingbird
import Metrics
import Synchronization

/// Hummingbird's request metrics — the same names and dimensions as its `MetricsMiddleware`
/// (`http.server.active_requests`, `hb.requests`, `http.server.request.duration`, `hb.request.errors`) — recorded
/// when the route's response is returned rather than after it was written.
///
/// Hummingbird's middleware wraps every response body in a closure that records once the body is written. A
/// body wrapped that way loses Hummingbird's single-write path: the head, the body and the end go to the channel
/// as three writes (two `write(2)` calls per response instead of one `writev`), which cost a trivial route ~20 %
/// of its throughput. So the duration here is the time to produce the response, not to send it (every
/// Storefront route answers with one buffer; sending it is the kernel's and the client's pace).
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    private let cache = Cache()

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = DispatchTime.now().uptimeNanoseconds
        let active = cache.active(request.method)
        active.increment()
        defer { active.decrement() }
        do {
            let response = try await next(request, context)
            let metrics = cache.endpoint(.init(route: context.endpointPath ?? "Unknown", method: request.method, status: response.status))
            metrics.requests.increment()
            metrics.duration.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - start))
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status ?? .internalServerError
            let metrics = cache.endpoint(.init(route: context.endpointPath ?? "NotFound", method: request.method, status: status))
            metrics.requests.increment()
            metrics.errors.increment()
            throw error
        }
    }

    /// The metric objects of each method and route × method × status, made once (a metrics factory lookup
    /// per request would take its lock and build the label set every time).
    private final class Cache: Sendable {
        struct Endpoint: Hashable {
            let route: String
            let method: HTTPRequest.Method
            let status: HTTPResponse.Status
        }
        struct EndpointMetrics: Sendable {
            let requests: Counter
            let duration: Timer
            let errors: Counter

            init(_ id: Endpoint) {
                let dimensions = [
                    ("http.route", id.route), ("http.request.method", id.method.rawValue),
                    ("http.response.status_code", String(id.status.code)),
                ]
                requests = Counter(label: "hb.requests", dimensions: dimensions)
                duration = Timer(label: "http.server.request.duration", dimensions: dimensions, preferredDisplayUnit: .seconds)
                errors = Counter(label: "hb.request.errors", dimensions: [
                    ("http.route", id.route), ("http.request.method", id.method.rawValue), ("error.type", String(id.status.code)),
                ])
            }
        }

        private let actives = Mutex<[HTTPRequest.Method: Meter]>([:])
        private let endpoints = Mutex<[Endpoint: EndpointMetrics]>([:])

        func active(_ method: HTTPRequest.Method) -> Meter {
            actives.withLock { map in
                if let meter = map[method] { return meter }
                let meter = Meter(label: "http.server.active_requests", dimensions: [("http.request.method", method.rawValue)])
                map[method] = meter
                return meter
            }
        }

        func endpoint(_ id: Endpoint) -> EndpointMetrics {
            endpoints.withLock { map in
                if let metrics = map[id] { return metrics }
                let metrics = EndpointMetrics(id)
                map[id] = metrics
                return metrics
            }
        }
    }
}
