import Hummingbird
import Logging

/// Adopts the `X-Request-Id` a proxy in front assigned (nginx passes its `$request_id`), so the proxy's access
/// log, this server's log lines and the response all name one id. A missing or unusable header keeps the id
/// Hummingbird made. Runs first, so every later middleware and route logs and answers with the adopted id.
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext

    /// 1–128 characters of `A–Z a–z 0–9 . _ : -` (nginx's ids are 32 hex digits); anything else is ignored,
    /// so a client cannot put arbitrary text into logs.
    static func isAcceptable(_ id: String) -> Bool {
        guard (1...128).contains(id.utf8.count) else { return false }
        return id.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E || c == 0x5F || c == 0x3A || c == 0x2D
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let id = request.headers[.requestID], Self.isAcceptable(id) else { return try await next(request, context) }
        var context = context
        context.logger[metadataKey: "hb.request.id"] = .string(id)
        return try await next(request, context)
    }
}
