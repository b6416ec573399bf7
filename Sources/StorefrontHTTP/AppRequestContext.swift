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

    /// The peer's IP address ("unknown" without a channel): nginx's, behind nginx (see `X-Forwarded-For`).
    var clientAddress: String { channel?.remoteAddress?.ipAddress ?? "unknown" }

    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }
}
