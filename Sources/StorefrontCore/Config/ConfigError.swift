/// A configuration value is missing or wrong; the message names the setting.
public struct ConfigError: Error, Sendable, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
