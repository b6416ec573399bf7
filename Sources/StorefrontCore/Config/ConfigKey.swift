import Foundation

/// One setting: its variable, its help line, and how its value is parsed into `Settings`. A list of keys is
/// the parser — nothing is read that is not listed, and the help text comes from the same list. Each engine
/// adapter lists its own keys with its own settings; the app lifts them into its configuration.
public struct ConfigKey<Settings> {
    public let name: String
    public let help: String
    private let parse: (inout Settings, String) throws -> Void

    public init(_ name: String, _ help: String, parse: @escaping (inout Settings, String) throws -> Void) {
        self.name = name
        self.help = help
        self.parse = parse
    }

    /// Applies `value` (trimmed; an empty value leaves the default).
    public func apply(_ value: String, to settings: inout Settings) throws {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { return }
        try parse(&settings, trimmed)
    }

    /// The same key on a configuration that holds `Settings` at `path`.
    public func lifted<Outer>(_ path: WritableKeyPath<Outer, Settings>) -> ConfigKey<Outer> {
        let parse = self.parse
        return ConfigKey<Outer>(name, help) { outer, value in try parse(&outer[keyPath: path], value) }
    }

    public static func text(_ name: String, _ help: String, _ path: WritableKeyPath<Settings, String>) -> Self {
        Self(name, help) { $0[keyPath: path] = $1 }
    }

    public static func text(_ name: String, _ help: String, _ path: WritableKeyPath<Settings, String?>) -> Self {
        Self(name, help) { $0[keyPath: path] = $1 }
    }

    /// Comma-separated, blanks dropped.
    public static func list(_ name: String, _ help: String, _ path: WritableKeyPath<Settings, [String]>) -> Self {
        Self(name, help) { settings, value in
            settings[keyPath: path] = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
    }

    public static func int(_ name: String, _ help: String, _ range: ClosedRange<Int>, _ path: WritableKeyPath<Settings, Int>) -> Self {
        Self(name, help) { settings, value in settings[keyPath: path] = try Self.integer(name, value, range) }
    }

    public static func int(_ name: String, _ help: String, _ range: ClosedRange<Int>, _ path: WritableKeyPath<Settings, Int64>) -> Self {
        Self(name, help) { settings, value in settings[keyPath: path] = Int64(try Self.integer(name, value, range)) }
    }

    /// A probability, 0–1.
    public static func rate(_ name: String, _ help: String, _ path: WritableKeyPath<Settings, Double>) -> Self {
        Self(name, help) { settings, value in
            guard let v = Double(value), (0...1).contains(v) else { throw ConfigError("\(name) must be a number between 0 and 1, got '\(value)'") }
            settings[keyPath: path] = v
        }
    }

    static func integer(_ name: String, _ value: String, _ range: ClosedRange<Int>) throws -> Int {
        guard let v = Int(value), range.contains(v) else {
            throw ConfigError("\(name) must be an integer in \(range.lowerBound)…\(range.upperBound), got '\(value)'")
        }
        return v
    }
}
