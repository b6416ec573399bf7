/// A server or client error, classified so callers can decide what to do.
public struct MariaDBError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// A UNIQUE or PRIMARY KEY collision (1062, 1586).
        case duplicateKey
        /// The transaction was chosen as a deadlock victim (1213): retry it from the start.
        case deadlock
        /// `innodb_lock_wait_timeout` passed (1205): retry.
        case lockWaitTimeout
        /// The server refuses writes (`read_only`, 1290 / 1836 / 1792): it is a replica or a fenced old primary.
        case readOnly
        /// The connection broke (2006, 2013, 2055, killed, server shutdown): the connection is unusable.
        case connectionLost
        /// No connection could be made (2002, 2003, 2005) or the pool has none to give in time.
        case connectFailed
        /// No pooled connection became free within the pool's acquire timeout.
        case poolExhausted
        /// Wrong user or password, or no access to the database (1045, 1044).
        case accessDenied
        /// A value could not be decoded into the requested Swift type.
        case decoding
        /// The connection was used after `close()` or by two tasks at once.
        case misuse
        case other
    }

    public var kind: Kind
    /// The server's or client library's error number (0 for errors raised by this wrapper).
    public var code: UInt32
    public var sqlState: String
    public var message: String

    public init(kind: Kind, code: UInt32 = 0, sqlState: String = "HY000", message: String) {
        self.kind = kind
        self.code = code
        self.sqlState = sqlState
        self.message = message
    }

    /// Classifies a MariaDB / Connector/C error number.
    public init(code: UInt32, sqlState: String, message: String) {
        self.init(kind: Self.kind(of: code), code: code, sqlState: sqlState, message: message)
    }

    static func kind(of code: UInt32) -> Kind {
        switch code {
        case 1062, 1586: .duplicateKey
        case 1213: .deadlock
        case 1205: .lockWaitTimeout
        case 1290, 1836, 1792: .readOnly
        case 2006, 2013, 2055, 1927, 1053, 4031: .connectionLost
        case 2002, 2003, 2005: .connectFailed
        case 1044, 1045, 1698: .accessDenied
        default: .other
        }
    }

    /// Retrying the whole transaction may succeed (deadlock victim, lock wait timeout).
    public var isRetryable: Bool { kind == .deadlock || kind == .lockWaitTimeout }

    /// The connection cannot be used any more; a pool discards it.
    public var breaksConnection: Bool { kind == .connectionLost || kind == .connectFailed }

    static func decoding(_ message: String) -> MariaDBError { MariaDBError(kind: .decoding, message: message) }
    static func misuse(_ message: String) -> MariaDBError { MariaDBError(kind: .misuse, message: message) }

    public var description: String { "MariaDB error \(code) (\(sqlState)): \(message)" }
}
