/// The server cannot start: what was unreachable, where, and what to check. An app server does not start
/// without its database (migrations run at start); it exits non-zero so that its supervisor (systemd's
/// `Restart=on-failure`, a container runtime) starts it again once the database is back. Redis and Kafka are
/// not needed to start: the server starts and `/health/ready` reports them.
public struct StartupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
