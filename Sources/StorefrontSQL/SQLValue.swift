import Foundation
import StorefrontCore

/// A parameter or column value as the stores use them: every column of the schema is an integer or text
/// (money in minor units, times in milliseconds, UUIDs in their 36-character form).
public enum SQLValue: Sendable, Hashable {
    case null
    case int(Int64)
    case text(String)
}

/// A Swift value a store binds as a statement parameter.
public protocol SQLBindable: Sendable {
    var sqlValue: SQLValue { get }
}

extension Int64: SQLBindable { public var sqlValue: SQLValue { .int(self) } }
extension Int: SQLBindable { public var sqlValue: SQLValue { .int(Int64(self)) } }
extension String: SQLBindable { public var sqlValue: SQLValue { .text(self) } }
extension UUID: SQLBindable { public var sqlValue: SQLValue { .text(uuidString) } }
extension Date: SQLBindable { public var sqlValue: SQLValue { .int(Millis.from(self)) } }
extension SQLValue: SQLBindable { public var sqlValue: SQLValue { self } }
extension Optional: SQLBindable where Wrapped: SQLBindable {
    public var sqlValue: SQLValue { self?.sqlValue ?? .null }
}
