import Crypto
import Foundation
import HTTPTypes
import Synchronization

/// The operations console's session: the admin token, exchanged once at sign-in for a cookie.
///
/// The cookie is signed, not stored: `v1.<expires>.<nonce>.<mac>`, where the MAC is HMAC-SHA256 under a key
/// derived from the admin token. Every app server sharing the token accepts it, so a session survives a
/// failover, and rotating the token signs everyone out. It is `HttpOnly`, `SameSite=Strict`, and `Secure`
/// when the request came over TLS (`X-Forwarded-Proto: https` from nginx).
///
/// Every cookie-authenticated write carries a CSRF token: HMAC of the session's nonce, in the form's `csrf`
/// field or the `X-CSRF-Token` header. A page from another site can make the browser send the cookie (not
/// with SameSite=Strict, but older browsers), never read the token.
///
/// A stolen cookie lets its holder test guesses of the admin token offline (the key is a hash of it), so the
/// token must be long and random: `scripts/cluster` makes a 128-bit one; docs/web.md says so.
struct AdminSession: Sendable {
    static let cookieName = "sf_admin"
    static let lifetime: TimeInterval = 8 * 3600
    private let key: SymmetricKey

    init(adminToken: String) {
        key = SymmetricKey(data: SHA256.hash(data: Data("storefront admin session v1\u{0}\(adminToken)".utf8)))
    }

    /// A new session's cookie value.
    func issue(now: Date = Date()) -> String {
        let expires = Int64(now.timeIntervalSince1970 + Self.lifetime)
        let nonce = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let body = "v1.\(expires).\(nonce)"
        return body + "." + mac(body)
    }

    /// The session's nonce if `cookie` is one this key signed and it has not expired.
    func verify(_ cookie: String, now: Date = Date()) -> String? {
        let parts = cookie.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "v1", let expires = Int64(parts[1]), parts[2].utf8.count == 32 else { return nil }
        let body = parts[0...2].joined(separator: ".")
        guard Self.equal(mac(body), String(parts[3])), Double(expires) > now.timeIntervalSince1970 else { return nil }
        return String(parts[2])
    }

    /// The CSRF token of a session.
    func csrfToken(nonce: String) -> String { mac("csrf." + nonce) }

    func verifyCSRF(_ token: String?, nonce: String) -> Bool {
        guard let token else { return false }
        return Self.equal(csrfToken(nonce: nonce), token)
    }

    private func mac(_ text: String) -> String {
        HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: key).map { String(format: "%02x", $0) }.joined()
    }

    static func equal(_ a: String, _ b: String) -> Bool {
        BearerTokenMiddleware.constantTimeEqual(Array(a.utf8), Array(b.utf8))
    }

    /// Every `sf_admin` value in a request's `Cookie` headers (a stale one with another path may come first).
    static func cookies(in headers: HTTPFields) -> [String] {
        var found: [String] = []
        for field in headers[values: .cookie] {
            for pair in field.split(separator: ";") {
                let kv = pair.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
                if kv.count == 2, kv[0] == cookieName { found.append(String(kv[1])) }
            }
        }
        return found
    }

    /// The nonce of the first session cookie in `headers` that verifies.
    func session(in headers: HTTPFields, now: Date = Date()) -> String? {
        for cookie in Self.cookies(in: headers) {
            if let nonce = verify(cookie, now: now) { return nonce }
        }
        return nil
    }

    /// `Set-Cookie` for a new session (or, with `nil`, one that deletes it).
    static func setCookie(_ value: String?, secure: Bool) -> String {
        var cookie = "\(cookieName)=\(value ?? ""); Path=/admin; HttpOnly; SameSite=Strict"
        cookie += value == nil ? "; Max-Age=0" : "; Max-Age=\(Int(lifetime))"
        if secure { cookie += "; Secure" }
        return cookie
    }

    static func overTLS(_ headers: HTTPFields) -> Bool {
        headers[.forwardedProto]?.lowercased() == "https"
    }
}

/// Console sign-in attempts per client address: past `limit` attempts that were not successful in `window`,
/// that address's sign-ins are refused (429) until the window ends, right token or not, so the token cannot
/// be guessed online at speed. An attempt is counted before its token is compared (`admit`), so concurrent
/// attempts cannot slip past the limit together, and given back when it succeeds. The table is bounded
/// (`maxAddresses`): expired windows go first, then the oldest.
///
/// The address is the client's, not a proxy's: see `AppRequestContext.clientAddress` (nginx's `X-Real-IP`,
/// trusted from a loopback peer only), so one client cannot lock the others out.
final class SignInThrottle: Sendable {
    private struct Window { var start: ContinuousClock.Instant; var attempts: Int }
    let limit: Int
    let window: Duration
    let maxAddresses: Int
    private let windows = Mutex<[String: Window]>([:])

    init(limit: Int = 20, window: Duration = .seconds(60), maxAddresses: Int = 10_000) {
        self.limit = limit
        self.window = window
        self.maxAddresses = maxAddresses
    }

    /// Counts an attempt from `address`: nil when it may go ahead, else the seconds until it may try again
    /// (a refused attempt is not counted).
    func admit(_ address: String, now: ContinuousClock.Instant = .now) -> Int? {
        windows.withLock { table in
            if var w = table[address], now - w.start < window {
                guard w.attempts < limit else {
                    let left = w.start + window - now
                    return max(1, Int(left.components.seconds) + (left.components.attoseconds > 0 ? 1 : 0))
                }
                w.attempts += 1
                table[address] = w
                return nil
            }
            if table[address] == nil, table.count >= maxAddresses {
                table = table.filter { now - $0.value.start < window }
                if table.count >= maxAddresses, let oldest = table.min(by: { $0.value.start < $1.value.start })?.key { table[oldest] = nil }
            }
            table[address] = Window(start: now, attempts: 1)
            return nil
        }
    }

    /// The attempt `admit` counted succeeded: it does not count against the address.
    func succeeded(_ address: String) {
        windows.withLock { table in
            guard var w = table[address] else { return }
            w.attempts -= 1
            table[address] = w.attempts > 0 ? w : nil
        }
    }

    var addresses: Int { windows.withLock { $0.count } }
}
