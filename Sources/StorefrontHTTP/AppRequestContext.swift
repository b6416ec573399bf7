import Hummingbird
import Logging
import NIOCore

/// The request context of every Storefront route.
public struct AppRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connection the request came on (closed early after an oversized body, see `decodeJSON`).
    let channel: (any Channel)?
    /// The console session's nonce, when the request was authenticated by the session cookie (not the bearer
    /// token): console writes check their CSRF token against it.
    var adminSessionNonce: String?

    /// The client's IP address: the peer's, or — when the peer is a proxy on this machine (a loopback address,
    /// as nginx is in `scripts/cluster`) — the `X-Real-IP` it set (deploy/nginx/storefront.conf sets it to its
    /// own peer, overwriting whatever the client sent). "unknown" without a channel (in-process tests).
    func clientAddress(_ request: Request) -> String {
        guard let peer = channel?.remoteAddress?.ipAddress else { return "unknown" }
        if peer == "127.0.0.1" || peer == "::1" || peer.hasPrefix("127."), let real = request.headers[.realIP], !real.isEmpty {
            return real
        }
        return peer
    }

    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }
}
