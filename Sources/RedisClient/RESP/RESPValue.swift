import NIOCore

/// A RESP2/RESP3 value.
public enum RESPValue: Sendable, Equatable {
    case simpleString(String)
    case error(String)
    case integer(Int64)
    case bulkString(ByteBuffer)
    case null
    case array([RESPValue])
    case double(Double)
    case boolean(Bool)
    case bigNumber(String)
    case verbatimString(String)
    /// Keys and values alternate: k1, v1, k2, v2 …
    case map([RESPValue])
    case set([RESPValue])
    /// Out-of-band push (RESP3 `>`); never a reply to a command.
    case push([RESPValue])

    /// The value as text, for string-like replies.
    public var string: String? {
        switch self {
        case .simpleString(let s), .verbatimString(let s), .bigNumber(let s): s
        case .bulkString(let b): String(buffer: b)
        case .integer(let i): String(i)
        default: nil
        }
    }

    public var int: Int64? {
        switch self {
        case .integer(let i): i
        case .bulkString, .simpleString: string.flatMap { Int64($0) }
        case .double(let d): Int64(exactly: d)
        default: nil
        }
    }

    public var array: [RESPValue]? {
        switch self {
        case .array(let a), .set(let a), .push(let a), .map(let a): a
        default: nil
        }
    }

    public var isNull: Bool { self == .null }
}

/// Protocol-level failures; the connection is closed when one happens.
public enum RESPError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidType(UInt8)
    case invalidLength(String)
    case tooLarge(String)
    case tooDeep(Int)
    case invalidFrame(String)

    public var description: String {
        switch self {
        case .invalidType(let t): "RESP: unknown type byte 0x\(String(t, radix: 16))"
        case .invalidLength(let s): "RESP: invalid length '\(s)'"
        case .tooLarge(let s): "RESP: frame too large (\(s))"
        case .tooDeep(let d): "RESP: nesting deeper than \(d)"
        case .invalidFrame(let s): "RESP: malformed frame (\(s))"
        }
    }
}
