import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization
import StorefrontCore

/// The one error envelope: `{"error": {"code": "…", "message": "…", "requestId": "…"}}`.
public struct APIError: Error, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var retryAfterSeconds: Int?
    public var sagaId: UUID?

    public init(status: HTTPResponse.Status, code: String, message: String, retryAfterSeconds: Int? = nil, sagaId: UUID? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
        self.sagaId = sagaId
    }

    static func invalidParameter(_ message: String) -> APIError {
        APIError(status: .badRequest, code: "invalid_parameter", message: message)
    }

    /// The body is over the limit: answered with `Connection: close` (the rest of the body is not wanted).
    static let payloadTooLarge = APIError(status: .contentTooLarge, code: "payload_too_large", message: "request body is too large")

    /// Maps any error to the envelope; unknown errors become a 500 that reveals nothing internal.
    public init(_ error: any Error) {
        switch error {
        case let e as APIError:
            self = e
        case let e as StorefrontError:
            self.init(status: Self.status(of: e), code: e.code, message: e.message)
            switch e {
            case .productBusy(_, let s), .unavailable(_, let s): retryAfterSeconds = s
            case .paymentUnavailable(let id): retryAfterSeconds = 1; sagaId = id
            case .paymentDeclined(let id, _), .purchaseFailed(let id, _): sagaId = id
            default: break
            }
        case let e as DecodingError:
            self = Self.decoding(e)
        case is NIOTooManyBytesError:
            self.init(status: .contentTooLarge, code: "payload_too_large", message: "request body is too large")
        case let e as HTTPError:
            switch e.status {
            case .contentTooLarge:
                self.init(status: .contentTooLarge, code: "payload_too_large", message: "request body is too large")
            case .notFound:
                self.init(status: .notFound, code: "not_found", message: "no such route")
            default:
                self.init(status: e.status, code: e.status.code < 500 ? "bad_request" : "internal_error", message: e.body ?? e.status.reasonPhrase)
            }
        default:
            self.init(status: .internalServerError, code: "internal_error", message: "internal error; see server logs with the request id")
        }
    }

    static func status(of e: StorefrontError) -> HTTPResponse.Status {
        switch e {
        case .validation, .idempotencyKeyReused: .unprocessableContent
        case .productNotFound, .orderNotFound, .sagaNotFound: .notFound
        case .insufficientStock, .productBusy, .skuConflict, .purchaseFailed, .sagaInFlight: .conflict
        case .paymentDeclined: HTTPResponse.Status(code: 402, reasonPhrase: "Payment Required")
        case .paymentUnavailable, .unavailable: .serviceUnavailable
        case .unauthorized: .unauthorized
        }
    }

    /// Malformed JSON is a 400; well-formed JSON with missing or mistyped fields is a 422 naming the field.
    static func decoding(_ e: DecodingError) -> APIError {
        func path(_ context: DecodingError.Context, _ key: (any CodingKey)? = nil) -> String {
            let keys = context.codingPath + (key.map { [$0] } ?? [])
            return keys.map(\.stringValue).joined(separator: ".")
        }
        switch e {
        case .dataCorrupted(let c) where c.codingPath.isEmpty:
            return APIError(status: .badRequest, code: "malformed_json", message: "request body is not valid JSON")
        case .dataCorrupted(let c):
            return APIError(status: .unprocessableContent, code: "validation_failed", message: "field '\(path(c))' has an invalid value")
        case .keyNotFound(let key, let c):
            return APIError(status: .unprocessableContent, code: "validation_failed", message: "field '\(path(c, key))' is required")
        case .valueNotFound(_, let c):
            return APIError(status: .unprocessableContent, code: "validation_failed", message: "field '\(path(c))' must not be null")
        case .typeMismatch(let type, let c) where c.codingPath.isEmpty:
            return APIError(status: .unprocessableContent, code: "validation_failed", message: "request body must be a JSON object (\(type))")
        case .typeMismatch(let type, let c):
            let expected = type == Int64.self || type == Int.self ? "an integer" : type == String.self ? "a string" : "\(type)"
            return APIError(status: .unprocessableContent, code: "validation_failed", message: "field '\(path(c))' must be \(expected)")
        @unknown default:
            return APIError(status: .badRequest, code: "malformed_json", message: "request body could not be decoded")
        }
    }

    func response(requestId: String) -> Response {
        struct Envelope: Encodable {
            struct Body: Encodable {
                var code: String
                var message: String
                var requestId: String
                var sagaId: String?
            }
            var error: Body
        }
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        if let retryAfterSeconds { headers[.retryAfter] = String(retryAfterSeconds) }
        if status == .contentTooLarge { headers[.connection] = "close" }
        let body = Envelope(error: .init(code: code, message: message, requestId: requestId, sagaId: sagaId?.uuidString))
        let data = (try? JSONEncoder().encode(body)) ?? Data(#"{"error":{"code":"internal_error"}}"#.utf8)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
