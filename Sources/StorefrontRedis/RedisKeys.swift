/// Key layout (DESIGN §4). The `{id}` hash tag keeps all of one product's keys in one cluster slot.
enum RedisKeys {
    static func details(_ id: Int64) -> String { "product:{\(id)}:details" }
    static func stock(_ id: Int64) -> String { "product:{\(id)}:stock" }
    static func lock(_ id: Int64) -> String { "lock:product:{\(id)}" }
}

extension Duration {
    /// Whole milliseconds, at least 1 (Redis rejects PX 0).
    var milliseconds: Int64 {
        max(components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000, 1)
    }
}
