/// Key layout (DESIGN §4), under a prefix (`STOREFRONT_REDIS_KEY_PREFIX`, default `storefront:`) so that two
/// deployments or databases sharing one Redis never read each other's keys. The `{id}` hash tag keeps all of
/// one product's keys in one cluster slot (the prefix may not contain braces).
public struct RedisKeys: Sendable, Equatable {
    public static let defaultPrefix = "storefront:"
    public let prefix: String

    public init(prefix: String = RedisKeys.defaultPrefix) throws {
        guard prefix.utf8.count <= 64, prefix.unicodeScalars.allSatisfy({ $0.properties.isAlphabetic && $0.isASCII || "0123456789:_.-".unicodeScalars.contains($0) })
        else { throw RedisKeysError(prefix: prefix) }
        self.prefix = prefix
    }

    public func details(_ id: Int64) -> String { "\(prefix)product:{\(id)}:details" }
    public func stock(_ id: Int64) -> String { "\(prefix)product:{\(id)}:stock" }
    public func lock(_ id: Int64) -> String { "\(prefix)lock:product:{\(id)}" }
    /// The sharded Pub/Sub channel of product cache invalidations (a product id per message).
    public var invalidations: String { "\(prefix)products:invalidated" }
}

public struct RedisKeysError: Error, CustomStringConvertible {
    public var prefix: String
    public var description: String { "Redis key prefix \"\(prefix)\": at most 64 characters of A–Z, a–z, 0–9, ':', '_', '.', '-'" }
}

extension Duration {
    /// Whole milliseconds, at least 1 (Redis rejects PX 0).
    var milliseconds: Int64 {
        max(components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000, 1)
    }
}
