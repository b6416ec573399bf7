import Foundation
import Hummingbird
import NIOCore
import StorefrontCore

/// How much of an oversized body is still read (and dropped) before the 413 is answered. A client that writes
/// the whole body before it reads the answer (Python's urllib, Java's HttpURLConnection) can only read the 413
/// once its body is sent: without this it would wait until its own timeout. Past this, the connection is
/// closed (the client then sees a reset rather than an answer).
enum OversizedBody {
    static let drainBytes = 16 << 20
    static let drainTime = Duration.seconds(10)
}

extension Request {
    /// Reads at most `limit` bytes and decodes JSON; errors map to 400/413/422 envelopes. An oversized body is
    /// drained up to `OversizedBody`'s bounds and answered 413 with `Connection: close`.
    func decodeJSON<T: Decodable>(as type: T.Type, limit: Int, context: AppRequestContext) async throws -> T {
        let data = Data(buffer: try await collectBody(limit: limit, context: context))
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
            // Valid JSON whose value does not fit (e.g. 19.99 for an integer field) is a 422, not a syntax error.
            guard (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) != nil else {
                throw APIError(status: .badRequest, code: "malformed_json", message: "request body is not valid JSON")
            }
            throw APIError(status: .unprocessableContent, code: "validation_failed", message: context.debugDescription)
        }
    }

    /// The whole body, or `APIError.payloadTooLarge` past `limit` (after draining a little of the rest).
    func collectBody(limit: Int, context: AppRequestContext) async throws -> ByteBuffer {
        var body = ByteBuffer()
        var iterator = self.body.makeAsyncIterator()
        while let chunk = try await iterator.next() {
            guard body.readableBytes + chunk.readableBytes <= limit else {
                var drained = body.readableBytes + chunk.readableBytes
                // A client that stops sending mid-body must not hold the handler: past the drain time the
                // connection's input is closed, which ends the wait below.
                let channel = context.channel
                let timer = Task {
                    guard (try? await Task.sleep(for: OversizedBody.drainTime)) != nil else { return }
                    channel?.close(mode: .input, promise: nil)
                }
                defer { timer.cancel() }
                var finished = false
                do {
                    while drained <= OversizedBody.drainBytes {
                        guard let more = try await iterator.next() else { finished = true; break }
                        drained += more.readableBytes
                    }
                } catch {
                    // the input was closed (the drain time passed) or the connection failed
                }
                if !finished {
                    // Stop reading: the connection closes once the 413 is written.
                    context.channel?.close(mode: .input, promise: nil)
                }
                context.logger.notice("request body too large", metadata: ["limit": "\(limit)", "read": "\(drained)", "drained": "\(finished)"])
                throw APIError.payloadTooLarge
            }
            body.writeImmutableBuffer(chunk)
        }
        return body
    }

    /// An `application/x-www-form-urlencoded` body (an HTML form) as name → value (the last of a repeated name).
    func decodeForm(limit: Int, context: AppRequestContext) async throws -> [String: String] {
        let body = try await collectBody(limit: limit, context: context)
        var fields: [String: String] = [:]
        for pair in String(buffer: body).split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String? { s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding }
            guard let name = decode(parts[0]), let value = decode(parts.count > 1 ? parts[1] : "") else {
                throw APIError(status: .badRequest, code: "malformed_form", message: "the form body is not valid URL encoding")
            }
            fields[name] = value
        }
        return fields
    }
}

extension Request {
    /// `?force=true|false` (default false), or 400 `invalid_parameter`.
    func forceFlag() throws -> Bool {
        switch uri.queryParameters.get("force") {
        case nil, "false": false
        case "true": true
        default: throw APIError.invalidParameter("force must be true or false")
        }
    }
}

extension AppRequestContext {
    /// The `id` path parameter as a saga id, or 400 `invalid_parameter`.
    func sagaID() throws -> UUID {
        guard let raw = parameters.get("id"), let id = UUID(uuidString: raw) else { throw APIError.invalidParameter("id must be a saga id (UUID)") }
        return id
    }

    /// A positive integer path parameter, or 400 `invalid_parameter`.
    func positiveID(_ name: String = "id") throws -> Int64 {
        guard let raw = parameters.get(name), let id = Int64(raw), id > 0 else {
            throw APIError.invalidParameter("\(name) must be a positive integer")
        }
        return id
    }
}

/// Opaque list cursors: base64url of `v1:<last id>`.
enum Cursor {
    static func encode(_ id: Int64) -> String {
        Data("v1:\(id)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ cursor: String) throws -> Int64 {
        var b64 = cursor.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.count % 4 != 0 { b64 += "=" }
        guard cursor.count <= 64, let data = Data(base64Encoded: b64), let text = String(data: data, encoding: .utf8),
              text.hasPrefix("v1:"), let id = Int64(text.dropFirst(3)), id >= 0
        else { throw APIError.invalidParameter("after is not a valid cursor") }
        return id
    }
}

/// JSON responses with an explicit status and headers.
/// One encoder for every response (its configuration never changes; encoding is safe from any thread).
private let sharedEncoder = JSONEncoder()

func jsonResponse<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
    var headers = headers
    headers[.contentType] = "application/json; charset=utf-8"
    let data = try sharedEncoder.encode(value)
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

/// A response object of the hot paths (product views), written without `JSONEncoder` — which was 8 % of
/// a cached product view's CPU. It stays `Encodable` too; a test checks both say the same.
protocol JSONObjectWritable: Encodable {
    func write(to w: inout JSONObjectWriter)
}

extension JSONObjectWritable {
    var jsonText: String {
        var w = JSONObjectWriter()
        write(to: &w)
        return w.finish()
    }
}

func jsonResponse<T: JSONObjectWritable>(_ value: T, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
    var headers = headers
    headers[.contentType] = "application/json; charset=utf-8"
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: value.jsonText)))
}
