/// Credentials never reach a log line, an error message or a status page: URLs are shown with their
/// password replaced by `***`.
public enum Redact {
    /// `scheme://user:password@host…` → `scheme://user:***@host…`, for each URL of a comma-separated list.
    /// Anything else comes back unchanged.
    public static func url(_ text: String) -> String {
        text.split(separator: ",", omittingEmptySubsequences: false).map { part -> String in
            let part = String(part)
            guard let scheme = part.range(of: "://") else { return part }
            let rest = part[scheme.upperBound...]
            let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
            guard let at = rest[..<authorityEnd].lastIndex(of: "@") else { return part }
            let userInfo = rest[..<at]
            guard let colon = userInfo.firstIndex(of: ":") else {
                // Redis URLs may carry a bare password (`redis://secret@host`); other schemes a bare user.
                return part.hasPrefix("redis") ? String(part[..<scheme.upperBound]) + "***" + rest[at...] : part
            }
            return String(part[..<scheme.upperBound]) + userInfo[..<colon] + ":***" + rest[at...]
        }.joined(separator: ",")
    }
}
