import Foundation

/// RFC 3339 UTC timestamps with millisecond precision, e.g. `2026-11-27T20:45:42.123Z`.
public enum Timestamp {
    /// Formats by arithmetic on the epoch milliseconds (days → civil date), not by a `FormatStyle`: every
    /// saga event and every API object carries timestamps, and the format style cost more than the rest
    /// of the event's JSON. The millisecond is `Millis.from(date)` (nearest), the one the databases store,
    /// so a time read back from a row prints as it was written (the format style truncated the binary
    /// fraction, printing a stored …999 ms as …998).
    public static func rfc3339(_ date: Date) -> String {
        let millis = Millis.from(date)
        let (days, msOfDay) = millis.floorDivided(by: 86_400_000)
        let (year, month, day) = civil(fromDays: days)
        let seconds = msOfDay / 1000
        var out = ""
        out.reserveCapacity(24)
        pad(year, 4, &out); out += "-"; pad(month, 2, &out); out += "-"; pad(day, 2, &out); out += "T"
        pad(seconds / 3600, 2, &out); out += ":"; pad(seconds / 60 % 60, 2, &out); out += ":"; pad(seconds % 60, 2, &out)
        out += "."; pad(msOfDay % 1000, 3, &out); out += "Z"
        return out
    }

    public static func parse(_ string: String) -> Date? {
        if let d = try? style.parse(string) { return d }
        return try? Date.ISO8601FormatStyle(timeZone: .gmt).parse(string)
    }

    private static let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt)

    /// Days since 1970-01-01 → proleptic Gregorian (year, month, day) (H. Hinnant's `civil_from_days`).
    static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func pad(_ n: Int64, _ width: Int, _ out: inout String) {
        let digits = String(n)
        if digits.utf8.count < width { out += String(repeating: "0", count: width - digits.utf8.count) }
        out += digits
    }
}

extension Int64 {
    /// Quotient rounded toward −∞ and the (non-negative) remainder.
    fileprivate func floorDivided(by d: Int64) -> (Int64, Int64) {
        let q = self / d, r = self % d
        return r < 0 ? (q - 1, r + d) : (q, r)
    }
}
