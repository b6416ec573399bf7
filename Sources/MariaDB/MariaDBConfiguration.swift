import Foundation

/// Where and how to connect.
public struct MariaDBConfiguration: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 3306
    /// A unix socket path; used instead of host and port when set.
    public var unixSocket: String?
    public var user: String
    public var password: String?
    public var database: String?
    /// TLS: nil = off; otherwise the CA file that signs the server's certificate (nil = system CAs).
    public var tls: TLS?
    public var connectTimeout: Duration = .seconds(5)
    /// Bounds how long a statement may block a thread when the server stops answering.
    public var readTimeout: Duration = .seconds(30)
    public var writeTimeout: Duration = .seconds(30)
    /// The server kills this session when it sits inside a transaction, idle, for this long (`nil`: never). A
    /// client frozen mid-transaction (SIGSTOP, a GC pause, a stalled VM) would otherwise hold its row locks —
    /// a saga row, a hot product row — until it wakes up; the transactions here take milliseconds.
    public var idleTransactionTimeout: Duration? = .seconds(5)

    public struct TLS: Sendable, Equatable {
        public var caFile: String?
        /// Check that the certificate names the host.
        public var verifyServerCertificate = true
        public init(caFile: String? = nil, verifyServerCertificate: Bool = true) {
            self.caFile = caFile
            self.verifyServerCertificate = verifyServerCertificate
        }
    }

    public init(host: String = "127.0.0.1", port: Int = 3306, user: String, password: String? = nil, database: String? = nil) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
    }

    /// `mysql://user:password@host:port/database?socket=/path&tls=true&tls-ca=/path&connect-timeout=5&read-timeout=30`
    /// (`mariadb://` too). User and password are percent-decoded.
    public init(url: String) throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme,
              ["mysql", "mariadb"].contains(scheme.lowercased())
        else { throw MariaDBError(kind: .other, message: "not a mysql:// URL") }
        guard let user = components.percentEncodedUser.flatMap({ $0.removingPercentEncoding }), !user.isEmpty else {
            throw MariaDBError(kind: .other, message: "the database URL needs a user")
        }
        self.init(user: user, password: components.percentEncodedPassword?.removingPercentEncoding)
        host = components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1"
        port = components.port ?? 3306
        let path = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        database = path.isEmpty ? nil : path
        for item in components.queryItems ?? [] {
            let value = item.value ?? ""
            switch item.name {
            case "socket": unixSocket = value
            case "tls": if ["1", "true", "required"].contains(value) { tls = tls ?? TLS() }
            case "tls-ca": tls = TLS(caFile: value, verifyServerCertificate: tls?.verifyServerCertificate ?? true)
            case "tls-verify": tls?.verifyServerCertificate = !["0", "false"].contains(value)
            case "connect-timeout", "read-timeout", "write-timeout":
                guard let seconds = Int(value), seconds > 0 else {
                    throw MariaDBError(kind: .other, message: "\(item.name) must be a positive number of seconds")
                }
                switch item.name {
                case "connect-timeout": connectTimeout = .seconds(seconds)
                case "read-timeout": readTimeout = .seconds(seconds)
                default: writeTimeout = .seconds(seconds)
                }
            default: throw MariaDBError(kind: .other, message: "unknown database URL option \(item.name)")
            }
        }
    }

    /// `host:port/database` (or the socket), for logs; never the password.
    public var endpoint: String {
        (unixSocket ?? "\(host):\(port)") + "/" + (database ?? "")
    }
}
