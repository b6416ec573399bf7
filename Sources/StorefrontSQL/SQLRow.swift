import Foundation
import StorefrontCore

/// A column that does not exist or does not hold the type asked for (a schema/code mismatch, not bad input).
public struct SQLDecodingError: Error, CustomStringConvertible {
    public let description: String
}

/// Column names of one result, shared by its rows.
public final class SQLColumns: Sendable {
    let index: [String: Int]
    public init(_ names: [String]) {
        index = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
    }
}

/// One result row, read by column name.
public struct SQLRow: Sendable {
    let columns: SQLColumns
    let values: [SQLValue]

    public init(columns: SQLColumns, values: [SQLValue]) {
        self.columns = columns
        self.values = values
    }

    public subscript(name: String) -> SQLValue {
        guard let index = columns.index[name] else { return .null }
        return values[index]
    }

    private func value(_ name: String) throws -> SQLValue {
        guard let index = columns.index[name] else { throw SQLDecodingError(description: "no column \(name)") }
        return values[index]
    }

    public func optionalInt(_ name: String) throws -> Int64? {
        switch try value(name) {
        case .null: return nil
        case .int(let n): return n
        case .text(let s):
            guard let n = Int64(s) else { throw SQLDecodingError(description: "column \(name): expected an integer, got \(s)") }
            return n
        }
    }

    public func int(_ name: String) throws -> Int64 {
        guard let n = try optionalInt(name) else { throw SQLDecodingError(description: "column \(name) is NULL") }
        return n
    }

    public func optionalText(_ name: String) throws -> String? {
        switch try value(name) {
        case .null: return nil
        case .text(let s): return s
        case .int(let n): return String(n)
        }
    }

    public func text(_ name: String) throws -> String {
        guard let s = try optionalText(name) else { throw SQLDecodingError(description: "column \(name) is NULL") }
        return s
    }

    public func uuid(_ name: String) throws -> UUID {
        let s = try text(name)
        guard let id = UUID(uuidString: s) else { throw SQLDecodingError(description: "column \(name): not a UUID: \(s)") }
        return id
    }

    /// A time stored in milliseconds since 1970 (UTC).
    public func date(_ name: String) throws -> Date { Millis.date(try int(name)) }

    public func optionalDate(_ name: String) throws -> Date? { try optionalInt(name).map(Millis.date) }

    /// A raw-value enum column; `fallback` when the stored text is unknown (nil = an error).
    public func value<T: RawRepresentable>(_ name: String, as type: T.Type = T.self, fallback: T? = nil) throws -> T where T.RawValue == String {
        let raw = try text(name)
        if let value = T(rawValue: raw) ?? fallback { return value }
        throw SQLDecodingError(description: "column \(name): unknown \(T.self) \(raw)")
    }
}
