import Foundation

/// host:port of one Redis node.
public struct RedisEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
    public var description: String { "\(host):\(port)" }

    /// Parses `host:port` (port defaults to 6379; IPv6 in brackets).
    public init(parsing text: Substring) throws {
        let text = text.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            port = rest.hasPrefix(":") ? try Self.port(rest.dropFirst()) : 6379
        } else if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            port = try Self.port(text[text.index(after: colon)...])
        } else {
            host = text
            port = 6379
        }
        guard !host.isEmpty else { throw RedisClientError.invalidConfiguration("empty host in '\(text)'") }
    }

    private static func port(_ s: Substring) throws -> Int {
        guard let p = Int(s), (1...65535).contains(p) else { throw RedisClientError.invalidConfiguration("invalid port '\(s)'") }
        return p
    }
}

/// Everything needed to talk to Redis: one node, or the seed nodes of a cluster.
public struct RedisConfiguration: Sendable, Equatable {
    public var endpoints: [RedisEndpoint]
    public var cluster: Bool
    public var username: String?
    public var password: String?
    public var database: Int
    public var tls: Bool
    /// PEM file of CA certificates to trust for TLS; nil = the system trust store.
    public var tlsCAFile: String?
    /// Multiplexed connections per node; commands are pipelined on each.
    public var connectionsPerNode: Int
    public var commandTimeout: Duration
    public var connectTimeout: Duration
    public var minReconnectDelay: Duration
    public var maxReconnectDelay: Duration
    /// Largest number of MOVED/ASK/TRYAGAIN/CLUSTERDOWN retries for one command (cluster mode).
    public var maxRedirects: Int
    public var clientName: String?

    public init(
        endpoints: [RedisEndpoint], cluster: Bool = false, username: String? = nil, password: String? = nil, database: Int = 0,
        tls: Bool = false, connectionsPerNode: Int = 4, commandTimeout: Duration = .seconds(2), connectTimeout: Duration = .seconds(2),
        minReconnectDelay: Duration = .milliseconds(50), maxReconnectDelay: Duration = .seconds(2), maxRedirects: Int = 16,
        clientName: String? = nil
    ) {
        self.endpoints = endpoints
        self.cluster = cluster
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
        self.tlsCAFile = nil
        self.connectionsPerNode = max(connectionsPerNode, 1)
        self.commandTimeout = commandTimeout
        self.connectTimeout = connectTimeout
        self.minReconnectDelay = minReconnectDelay
        self.maxReconnectDelay = maxReconnectDelay
        self.maxRedirects = maxRedirects
        self.clientName = clientName
    }

    /// `url` with its credentials (everything before the last `@`) replaced by `***`, for error messages.
    static func redacted(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].lastIndex(of: "@") else { return url }
        return String(url[..<scheme.upperBound]) + "***" + url[at...]
    }

    /// Parses `redis://[user:pass@]host:port[/db]`, `rediss://…` (TLS) and
    /// `redis+cluster://[user:pass@]h1:p1,h2:p2` (cluster seed list; `rediss+cluster://` with TLS).
    public init(url: String) throws {
        let schemes = ["redis+cluster://": (true, false), "rediss+cluster://": (true, true), "redis://": (false, false), "rediss://": (false, true)]
        guard let (scheme, (cluster, tls)) = schemes.first(where: { url.hasPrefix($0.key) }) else {
            throw RedisClientError.invalidConfiguration("expected redis://, rediss:// or redis+cluster:// in '\(Self.redacted(url))'")
        }
        var rest = Substring(url.dropFirst(scheme.count))
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = String(credentials[..<colon]).removingPercentEncoding ?? ""
                username = user.isEmpty ? nil : user
                password = String(credentials[credentials.index(after: colon)...]).removingPercentEncoding
            } else {
                password = String(credentials).removingPercentEncoding
            }
        }
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let db = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !db.isEmpty {
                guard let n = Int(db), n >= 0 else { throw RedisClientError.invalidConfiguration("invalid database '\(db)'") }
                database = n
            }
        }
        let endpoints = try rest.split(separator: ",").map { try RedisEndpoint(parsing: $0) }
        guard !endpoints.isEmpty else { throw RedisClientError.invalidConfiguration("no host in '\(Self.redacted(url))'") }
        guard cluster || endpoints.count == 1 else {
            throw RedisClientError.invalidConfiguration("several hosts need redis+cluster://")
        }
        guard !cluster || database == 0 else { throw RedisClientError.invalidConfiguration("Redis Cluster has only database 0") }
        self.init(endpoints: endpoints, cluster: cluster, username: username, password: password, database: database, tls: tls)
    }
}

/// Client-side failures (server error replies are `RedisServerError`).
public enum RedisClientError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidConfiguration(String)
    case connectionClosed
    /// The node is down and the reconnect back-off has not elapsed: failing fast instead of waiting.
    case connectionUnavailable(String)
    case timeout
    case unexpectedReply(String)
    case tooManyRedirects(String)
    case protocolError(String)

    public var description: String {
        switch self {
        case .invalidConfiguration(let s): "invalid Redis configuration: \(s)"
        case .connectionClosed: "Redis connection closed"
        case .connectionUnavailable(let s): "Redis unavailable: \(s)"
        case .timeout: "Redis command timed out"
        case .unexpectedReply(let s): "unexpected Redis reply: \(s)"
        case .tooManyRedirects(let s): "too many cluster redirects: \(s)"
        case .protocolError(let s): "Redis protocol error: \(s)"
        }
    }
}

/// An error reply from the server (`-ERR …`, `-MOVED …`, `-NOSCRIPT …`).
public struct RedisServerError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "Redis: \(message)" }
    /// The first word: `ERR`, `MOVED`, `ASK`, `NOSCRIPT`, `TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, `WRONGTYPE` …
    public var code: String { String(message.prefix { $0 != " " }) }
}
