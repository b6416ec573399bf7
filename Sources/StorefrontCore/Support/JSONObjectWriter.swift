/// Writes one flat JSON object by hand, for the hot paths where `JSONEncoder`'s generic machinery
/// (containers, coding keys, type metadata lookups) costs more than the object itself: saga events
/// (five per purchase) and product views. Keys are written as given (callers pass plain ASCII names,
/// in the order they want them); string values are escaped per RFC 8259. A `nil` optional is left out,
/// as `encodeIfPresent` does.
public struct JSONObjectWriter: Sendable {
    private var out: String
    private var empty = true

    public init(capacity: Int = 256) {
        out = "{"
        out.reserveCapacity(capacity)
    }

    public mutating func field(_ key: String, _ value: String) {
        name(key)
        Self.appendQuoted(value, to: &out)
    }

    public mutating func field(_ key: String, _ value: String?) {
        if let value { field(key, value) }
    }

    public mutating func field(_ key: String, _ value: Int64) {
        name(key)
        out += String(value)
    }

    public mutating func field(_ key: String, _ value: Int64?) {
        if let value { field(key, value) }
    }

    public mutating func field(_ key: String, _ value: Int) {
        field(key, Int64(value))
    }

    public mutating func field(_ key: String, _ value: Bool) {
        name(key)
        out += value ? "true" : "false"
    }

    /// A value that is already JSON (an object or array written elsewhere).
    public mutating func field(_ key: String, json: String) {
        name(key)
        out += json
    }

    /// The finished object.
    public consuming func finish() -> String {
        out += "}"
        return out
    }

    private mutating func name(_ key: String) {
        assert(key.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x80 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") },
               "JSONObjectWriter keys are plain ASCII names (they are written unescaped)")
        if !empty { out += "," }
        empty = false
        out += "\""
        out += key
        out += "\":"
    }

    /// `value` as a JSON string literal: quote, backslash and control characters escaped, everything else
    /// (including non-ASCII) as is, since the output is UTF-8.
    public static func appendQuoted(_ value: String, to out: inout String) {
        out += "\""
        if !value.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out += value
        } else {
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case _ where scalar.value < 0x20:
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                default: out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}
