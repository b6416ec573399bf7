import NIOCore

/// Parses one complete RESP2/RESP3 frame at a time. Never trusts lengths: bulk sizes, element counts,
/// line lengths and nesting depth are capped, and anything malformed is an error (the caller closes the
/// connection). Returns nil, consuming nothing, until a whole frame is buffered.
public struct RESPParser: Sendable {
    public var maxBulkLength: Int
    public var maxElements: Int
    public var maxDepth: Int
    public var maxLineLength: Int

    public init(maxBulkLength: Int = 64 * 1024 * 1024, maxElements: Int = 1_048_576, maxDepth: Int = 32, maxLineLength: Int = 64 * 1024) {
        self.maxBulkLength = maxBulkLength
        self.maxElements = maxElements
        self.maxDepth = maxDepth
        self.maxLineLength = maxLineLength
    }

    public func parse(_ buffer: inout ByteBuffer) throws -> RESPValue? {
        var copy = buffer
        guard let value = try parseValue(&copy, depth: 0) else { return nil }
        buffer = copy
        return value
    }

    private func parseValue(_ buffer: inout ByteBuffer, depth: Int) throws -> RESPValue? {
        guard depth <= maxDepth else { throw RESPError.tooDeep(maxDepth) }
        guard let type: UInt8 = buffer.readInteger() else { return nil }
        switch type {
        case UInt8(ascii: "+"):
            return try readLine(&buffer).map { .simpleString($0) }
        case UInt8(ascii: "-"):
            return try readLine(&buffer).map { .error($0) }
        case UInt8(ascii: ":"):
            guard let line = try readLine(&buffer) else { return nil }
            guard let value = Int64(line) else { throw RESPError.invalidFrame("integer '\(line.prefix(32))'") }
            return .integer(value)
        case UInt8(ascii: "$"), UInt8(ascii: "="), UInt8(ascii: "!"):
            guard let length = try readLength(&buffer, allowNull: true) else { return nil }
            if length < 0 { return .null }
            guard length <= maxBulkLength else { throw RESPError.tooLarge("bulk of \(length) bytes > \(maxBulkLength)") }
            guard buffer.readableBytes >= length + 2 else { return nil }
            let bytes = buffer.readSlice(length: length)!
            guard buffer.readInteger(as: UInt8.self) == 13, buffer.readInteger(as: UInt8.self) == 10 else {
                throw RESPError.invalidFrame("bulk not terminated by CRLF")
            }
            switch type {
            case UInt8(ascii: "$"): return .bulkString(bytes)
            case UInt8(ascii: "!"): return .error(String(buffer: bytes))
            default:  // verbatim: "txt:" prefix
                let text = String(buffer: bytes)
                return .verbatimString(text.count >= 4 ? String(text.dropFirst(4)) : text)
            }
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"), UInt8(ascii: "|"):
            guard let count = try readLength(&buffer, allowNull: type == UInt8(ascii: "*")) else { return nil }
            if count < 0 { return .null }
            let elements = type == UInt8(ascii: "%") || type == UInt8(ascii: "|") ? count * 2 : count
            guard elements <= maxElements else { throw RESPError.tooLarge("\(elements) elements > \(maxElements)") }
            var values: [RESPValue] = []
            values.reserveCapacity(min(elements, 1024))
            for _ in 0..<elements {
                guard let v = try parseValue(&buffer, depth: depth + 1) else { return nil }
                values.append(v)
            }
            switch type {
            case UInt8(ascii: "~"): return .set(values)
            case UInt8(ascii: ">"): return .push(values)
            case UInt8(ascii: "%"): return .map(values)
            case UInt8(ascii: "|"):
                // An attribute precedes the real reply; skip it.
                return try parseValue(&buffer, depth: depth)
            default: return .array(values)
            }
        case UInt8(ascii: "_"):
            guard let line = try readLine(&buffer) else { return nil }
            guard line.isEmpty else { throw RESPError.invalidFrame("null with payload") }
            return .null
        case UInt8(ascii: "#"):
            guard let line = try readLine(&buffer) else { return nil }
            switch line {
            case "t": return .boolean(true)
            case "f": return .boolean(false)
            default: throw RESPError.invalidFrame("boolean '\(line.prefix(8))'")
            }
        case UInt8(ascii: ","):
            guard let line = try readLine(&buffer) else { return nil }
            switch line {
            case "inf": return .double(.infinity)
            case "-inf": return .double(-.infinity)
            case "nan": return .double(.nan)
            default:
                guard let d = Double(line) else { throw RESPError.invalidFrame("double '\(line.prefix(32))'") }
                return .double(d)
            }
        case UInt8(ascii: "("):
            guard let line = try readLine(&buffer) else { return nil }
            guard !line.isEmpty, line.drop(while: { $0 == "-" || $0 == "+" }).allSatisfy(\.isNumber) else {
                throw RESPError.invalidFrame("big number")
            }
            return .bigNumber(line)
        default:
            throw RESPError.invalidType(type)
        }
    }

    /// A CRLF-terminated line, or nil if the CRLF has not arrived yet.
    private func readLine(_ buffer: inout ByteBuffer) throws -> String? {
        let view = buffer.readableBytesView
        guard let cr = view.firstIndex(of: 13) else {
            if view.count > maxLineLength { throw RESPError.tooLarge("line longer than \(maxLineLength)") }
            return nil
        }
        let length = cr - view.startIndex
        guard length <= maxLineLength else { throw RESPError.tooLarge("line longer than \(maxLineLength)") }
        guard buffer.readableBytes >= length + 2 else { return nil }
        let line = buffer.readString(length: length)!
        guard buffer.readInteger(as: UInt8.self) == 13, buffer.readInteger(as: UInt8.self) == 10 else {
            throw RESPError.invalidFrame("CR not followed by LF")
        }
        return line
    }

    private func readLength(_ buffer: inout ByteBuffer, allowNull: Bool) throws -> Int? {
        guard let line = try readLine(&buffer) else { return nil }
        guard line.count <= 19, let n = Int(line) else { throw RESPError.invalidLength(String(line.prefix(32))) }
        if n == -1, allowNull { return -1 }
        guard n >= 0 else { throw RESPError.invalidLength(line) }
        return n
    }
}

/// Encodes commands as RESP arrays of bulk strings.
public enum RESPCommandEncoder {
    public static func encode(_ arguments: [RESPArgument], into buffer: inout ByteBuffer) {
        buffer.writeString("*\(arguments.count)\r\n")
        for argument in arguments {
            switch argument {
            case .string(let s):
                buffer.writeString("$\(s.utf8.count)\r\n")
                buffer.writeString(s)
            case .bytes(let b):
                buffer.writeString("$\(b.readableBytes)\r\n")
                buffer.writeImmutableBuffer(b)
            }
            buffer.writeStaticString("\r\n")
        }
    }
}

/// One argument of a command.
public enum RESPArgument: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    case string(String)
    case bytes(ByteBuffer)

    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .string(String(value)) }
    public init(_ value: Int64) { self = .string(String(value)) }

    public var text: String {
        switch self {
        case .string(let s): s
        case .bytes(let b): String(buffer: b)
        }
    }
}
