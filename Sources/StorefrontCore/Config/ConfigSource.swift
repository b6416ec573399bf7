import Foundation

/// Where settings come from: `KEY=VALUE` files and the environment (which wins).
public enum ConfigSource {
    /// The `STOREFRONT_*` values of `environment`, over those of the file (`file`, else
    /// `STOREFRONT_CONFIG_FILE`) if any. A file may only name `known` keys (typos must not pass silently).
    public static func values(environment: [String: String], file: String?, known: Set<String>) throws -> [String: String] {
        var values: [String: String] = [:]
        if let path = file ?? environment["STOREFRONT_CONFIG_FILE"], !path.isEmpty {
            values = try parseFile(path, known: known)
        }
        for (key, value) in environment where key.hasPrefix("STOREFRONT_") {
            values[key] = value
        }
        return values
    }

    /// Parses `KEY=VALUE` lines; `#` starts a comment; values may be quoted; unknown keys are an error.
    public static func parseFile(_ path: String, known: Set<String>) throws -> [String: String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigError("cannot read config file \(path)")
        }
        var values: [String: String] = [:]
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let eq = line.firstIndex(of: "=") else { throw ConfigError("\(path):\(number + 1): expected KEY=VALUE") }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            guard known.contains(key) else { throw ConfigError("\(path):\(number + 1): unknown setting \(key)") }
            values[key] = value
        }
        return values
    }
}
