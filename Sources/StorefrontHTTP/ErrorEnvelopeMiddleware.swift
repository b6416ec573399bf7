import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization
import StorefrontCore

/// Turns every thrown error into the JSON envelope, stamps `X-Request-Id`, and logs server-side failures.
struct ErrorEnvelopeMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let routes: KnownRoutes

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            var response = try await next(request, context)
            response.headers[.requestID] = context.id
            return response
        } catch {
            var api = APIError(error)
            var allow: String?
            if api.code == "not_found", let methods = routes.methods(for: request.uri.path) {
                // The path exists, the method does not.
                api = APIError(status: .methodNotAllowed, code: "method_not_allowed", message: "\(request.method) is not allowed here")
                allow = methods.sorted().joined(separator: ", ")
            }
            if api.status.code >= 500, !(error is StorefrontError) {
                context.logger.error("request failed", metadata: ["status": "\(api.status.code)", "code": "\(api.code)", "error": "\(error)"])
            } else {
                context.logger.debug("request answered with an error", metadata: ["status": "\(api.status.code)", "code": "\(api.code)"])
            }
            var response = api.response(requestId: context.id)
            response.headers[.requestID] = context.id
            if let allow { response.headers[.allow] = allow }
            return response
        }
    }
}
