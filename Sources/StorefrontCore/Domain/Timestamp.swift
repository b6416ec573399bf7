import Foundation

/// RFC 3339 UTC timestamps with millisecond precision.
public enum Timestamp {
    public static func rfc3339(_ date: Date) -> String {
        date.formatted(style)
    }

    public static func parse(_ string: String) -> Date? {
        if let d = try? style.parse(string) { return d }
        return try? Date.ISO8601FormatStyle(timeZone: .gmt).parse(string)
    }

    private static let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt)
}
