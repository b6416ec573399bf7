/// Credentials never reach a log line, an error message or a status page: URLs are shown with their
/// password replaced by `***`.
public enum Redact {
    /// `scheme://user:password@host…` → `scheme://user:***@host…`, for each URL of a comma-separated list
    /// (a comma inside a password or a host list stays with its URL). Anything else comes back unchanged.
    public static func url(_ text: String) -> String {
        // A new URL starts at a fragment with a scheme; other fragments (a password's comma, a cluster's next
        // host) belong to the URL before them.
        var urls: [String] = []
        for fragment in text.split(separator: ",", omittingEmptySubsequences: false) {
            if fragment.contains("://") || urls.isEmpty { urls.append(String(fragment)) } else { urls[urls.count - 1] += "," + fragment }
        }
        return urls.map(redactOne).joined(separator: ",")
    }

    private static func redactOne(_ url: String) -> String {
        guard let scheme = url.range(of: "://") else { return url }
        let rest = url[scheme.upperBound...]
        let isRedis = url.hasPrefix("redis")
        // Redis URLs take the credentials up to the last `@` (as RedisConfiguration parses them); others end the
        // authority at the first `/`, `?` or `#`.
        let authorityEnd = isRedis ? rest.endIndex : rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@") else { return url }
        let userInfo = rest[..<at]
        guard let colon = userInfo.firstIndex(of: ":") else {
            // Redis URLs may carry a bare password (`redis://secret@host`); other schemes a bare user.
            return isRedis ? String(url[..<scheme.upperBound]) + "***" + rest[at...] : url
        }
        return String(url[..<scheme.upperBound]) + userInfo[..<colon] + ":***" + rest[at...]
    }
}
