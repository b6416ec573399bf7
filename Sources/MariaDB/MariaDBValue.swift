import Foundation

/// A parameter or column value, as the binary protocol carries it.
public enum MariaDBValue: Sendable, Hashable {
    case null
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    /// DECIMAL columns, exactly as the server printed them (no binary floating point on the way).
    case decimal(MariaDBDecimal)
    case string(String)
    case bytes([UInt8])
    case dateTime(MariaDBDateTime)

    public var isNull: Bool { self == .null }
}

/// An exact decimal number in its text form (`-12.3400`).
public struct MariaDBDecimal: Sendable, Hashable, CustomStringConvertible {
    public let text: String

    /// Nil unless `text` is an optional sign, digits, and at most one point with digits after it.
    public init?(_ text: String) {
        let body = text.hasPrefix("-") || text.hasPrefix("+") ? text.dropFirst() : Substring(text)
        let parts = body.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) })
        else { return nil }
        self.text = text
    }

    /// The same value as a Foundation `Decimal` (exact for up to 38 significant digits).
    public var decimal: Decimal? { Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")) }
    public var description: String { text }
}

/// DATE / DATETIME / TIMESTAMP values. The server has no time zone for DATETIME; Storefront stores UTC.
public struct MariaDBDateTime: Sendable, Hashable, CustomStringConvertible {
    public var year: Int
    public var month: Int
    public var day: Int
    public var hour: Int
    public var minute: Int
    public var second: Int
    public var microsecond: Int

    public init(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0, microsecond: Int = 0) {
        (self.year, self.month, self.day, self.hour, self.minute, self.second, self.microsecond) = (year, month, day, hour, minute, second, microsecond)
    }

    /// The UTC calendar fields of `date`, to the microsecond.
    public init(_ date: Date) {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded(.down))
        let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        let parts = utcCalendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: Date(timeIntervalSince1970: Double(seconds)))
        self.init(year: parts.year!, month: parts.month!, day: parts.day!, hour: parts.hour!, minute: parts.minute!, second: parts.second!,
                  microsecond: Int(micros - seconds * 1_000_000))
    }

    /// As a UTC instant (nil for the zero date).
    public var date: Date? {
        let parts = DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        guard year > 0, let whole = utcCalendar.date(from: parts) else { return nil }
        return Date(timeIntervalSince1970: whole.timeIntervalSince1970 + Double(microsecond) / 1_000_000)
    }

    public var description: String {
        func pad(_ n: Int, _ width: Int) -> String { String(repeating: "0", count: max(0, width - String(n).count)) + String(n) }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2)) \(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2)).\(pad(microsecond, 6))"
    }
}

private let utcCalendar: Calendar = {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    return calendar
}()

/// A Swift value that can be bound as a statement parameter.
public protocol MariaDBEncodable: Sendable {
    var mariaDBValue: MariaDBValue { get }
}

/// A Swift value a column can be decoded into.
public protocol MariaDBDecodable {
    init(mariaDBValue: MariaDBValue) throws
}

extension MariaDBValue: MariaDBEncodable, MariaDBDecodable {
    public var mariaDBValue: MariaDBValue { self }
    public init(mariaDBValue: MariaDBValue) { self = mariaDBValue }
}

extension Int64: MariaDBEncodable, MariaDBDecodable {
    public var mariaDBValue: MariaDBValue { .int(self) }
    public init(mariaDBValue value: MariaDBValue) throws {
        switch value {
        case .int(let n): self = n
        case .uint(let n) where n <= UInt64(Int64.max): self = Int64(n)
        case .decimal(let d) where Int64(d.text) != nil: self = Int64(d.text)!
        default: throw MariaDBError.decoding("expected an integer, got \(value)")
        }
    }
}

extension Int: MariaDBEncodable, MariaDBDecodable {
    public var mariaDBValue: MariaDBValue { .int(Int64(self)) }
    public init(mariaDBValue value: MariaDBValue) throws { self = Int(try Int64(mariaDBValue: value)) }
}

extension Int32: MariaDBEncodable, MariaDBDecodable {
    public var mariaDBValue: MariaDBValue { .int(Int64(self)) }
    public init(mariaDBValue value: MariaDBValue) throws {
        guard let n = Int32(exactly: try Int64(mariaDBValue: value)) else { throw MariaDBError.decoding("\(value) does not fit Int32") }
        self = n
    }
}

extension UInt64: MariaDBEncodable, MariaDBDecodable {
    public var mariaDBValue: MariaDBValue { .uint(self) }
    public init(mariaDBValue value: MariaDBValue) throws {
        switch value {
        case .uint(let n): self = n
        case .int(let n) where n >= 0: self = UInt64(n)
        default: throw MariaDBError.decoding("expected an unsigned integer, got \(value)")
        }
    }
}

extension Bool: MariaDBEncodable, MariaDBDecodable {
    public var mariaDBValue: MariaDBValue { .int(self ? 1 : 0) }
    public init(mariaDBValue value: MariaDBValue) throws { self = try Int64(mariaDBValue: value) != 0 }
}

extension Double: MariaDBEncodable, MariaDBDecodable {
    public var mariaDBValue: MariaDBValue { .double(self) }
    public init(mariaDBValue value: MariaDBValue) throws {
        switch value {
        case .double(let d): self = d
        case .int(let n): self = Double(n)
        case .uint(let n): self = Double(n)
        default: throw MariaDBError.decoding("expected a double, got \(value)")
        }
    }
}

extension MariaDBDecimal: MariaDBEncodable, MariaDBDecodable {
    public var mariaDBValue: MariaDBValue { .decimal(self) }
    public init(mariaDBValue value: MariaDBValue) throws {
        switch value {
        case .decimal(let d): self = d
        case .int(let n): self = MariaDBDecimal(String(n))!
        case .uint(let n): self = MariaDBDecimal(String(n))!
        case .string(let s) where MariaDBDecimal(s) != nil: self = MariaDBDecimal(s)!
        default: throw MariaDBError.decoding("expected a decimal, got \(value)")
        }
    }
}

extension String: MariaDBEncodable, MariaDBDecodable {
    public var mariaDBValue: MariaDBValue { .string(self) }
    public init(mariaDBValue value: MariaDBValue) throws {
        switch value {
        case .string(let s): self = s
        case .bytes(let b): self = String(decoding: b, as: UTF8.self)
        case .decimal(let d): self = d.text
        default: throw MariaDBError.decoding("expected a string, got \(value)")
        }
    }
}

extension UUID: MariaDBEncodable, MariaDBDecodable {
    /// Stored as its 36-character text form.
    public var mariaDBValue: MariaDBValue { .string(uuidString) }
    public init(mariaDBValue value: MariaDBValue) throws {
        guard let uuid = UUID(uuidString: try String(mariaDBValue: value)) else { throw MariaDBError.decoding("not a UUID: \(value)") }
        self = uuid
    }
}

extension Array: MariaDBEncodable, MariaDBDecodable where Element == UInt8 {
    public var mariaDBValue: MariaDBValue { .bytes(self) }
    public init(mariaDBValue value: MariaDBValue) throws {
        switch value {
        case .bytes(let b): self = b
        case .string(let s): self = Array(s.utf8)
        default: throw MariaDBError.decoding("expected bytes, got \(value)")
        }
    }
}

extension MariaDBDateTime: MariaDBEncodable, MariaDBDecodable {
    public var mariaDBValue: MariaDBValue { .dateTime(self) }
    public init(mariaDBValue value: MariaDBValue) throws {
        guard case .dateTime(let d) = value else { throw MariaDBError.decoding("expected a date, got \(value)") }
        self = d
    }
}

extension Date: MariaDBEncodable, MariaDBDecodable {
    public var mariaDBValue: MariaDBValue { .dateTime(MariaDBDateTime(self)) }
    public init(mariaDBValue value: MariaDBValue) throws {
        guard let date = try MariaDBDateTime(mariaDBValue: value).date else { throw MariaDBError.decoding("not a valid date: \(value)") }
        self = date
    }
}

extension Optional: MariaDBEncodable where Wrapped: MariaDBEncodable {
    public var mariaDBValue: MariaDBValue { self?.mariaDBValue ?? .null }
}

extension Optional: MariaDBDecodable where Wrapped: MariaDBDecodable {
    public init(mariaDBValue value: MariaDBValue) throws {
        self = value == .null ? nil : try Wrapped(mariaDBValue: value)
    }
}

/// One result row; columns by position or name.
public struct MariaDBRow: Sendable {
    let columns: MariaDBColumns
    public let values: [MariaDBValue]

    public subscript(index: Int) -> MariaDBValue { values[index] }

    public subscript(name: String) -> MariaDBValue {
        guard let index = columns.index[name] else { return .null }
        return values[index]
    }

    /// Decodes column `name`; throws when it is missing or of another type.
    public func decode<T: MariaDBDecodable>(_ name: String, as type: T.Type = T.self) throws -> T {
        guard let index = columns.index[name] else { throw MariaDBError.decoding("no column \(name)") }
        do { return try T(mariaDBValue: values[index]) } catch let error as MariaDBError {
            throw MariaDBError.decoding("column \(name): \(error.message)")
        }
    }

    public var columnNames: [String] { columns.names }
}

/// Column names shared by every row of a result.
final class MariaDBColumns: Sendable {
    let names: [String]
    let index: [String: Int]
    init(_ names: [String]) {
        self.names = names
        index = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
    }
}

/// What a statement returned.
public struct MariaDBResult: Sendable {
    public var rows: [MariaDBRow]
    /// Rows matched by an UPDATE (the connection uses CLIENT_FOUND_ROWS), inserted or deleted.
    public var affectedRows: UInt64
    /// The AUTO_INCREMENT value of the last inserted row (0 if none).
    public var lastInsertID: UInt64

    public var first: MariaDBRow? { rows.first }
}
