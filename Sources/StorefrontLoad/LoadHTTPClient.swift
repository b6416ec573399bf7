import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Where the load goes: `http://host:port` or `https://host:port` (an embedded server, one app server, nginx).
public struct LoadTarget: Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var tls: Bool
    /// TLS: the CA that signs the server's certificate (nil: the system's), or no verification at all.
    public var caFile: String?
    public var insecure: Bool

    public init(url: String, caFile: String? = nil, insecure: Bool = false) throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
        else { throw LoadError("--url must be http://host:port or https://host:port, not \(url)") }
        self.host = host
        tls = scheme == "https"
        port = components.port ?? (tls ? 443 : 80)
        self.caFile = caFile
        self.insecure = insecure
    }

    public var description: String { "\(tls ? "https" : "http")://\(host):\(port)" }
}

extension LoadTarget {
    /// A keep-alive HTTP/1.1 client connection to the target (TLS when it says so) on `loop`; `reader` adds the
    /// handler that reads the responses, last in the pipeline.
    func connect(on loop: any EventLoop, tls: NIOSSLContext?, timeout: TimeAmount,
                 reader: @escaping @Sendable (any Channel) throws -> Void) -> EventLoopFuture<any Channel> {
        let (host, isIP) = (host, host.allSatisfy { $0.isNumber || $0 == "." || $0 == ":" })
        return ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: isIP ? nil : host))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try reader(channel)
                }
            }
            .connect(host: host, port: port)
    }
}

/// No answer within the request timeout.
struct LoadTimeout: Error, CustomStringConvertible {
    var description: String { "timeout" }
}

public struct LoadError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// One HTTP answer, reduced to what the load generator looks at.
struct HTTPReply: Sendable {
    var status: Int
    var body: ByteBuffer
    var retryAfter: String?
    var keepAlive: Bool

    /// `error.code` of the API's error shape, when there is one.
    var errorCode: String? {
        guard status >= 400, let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
              let error = object["error"] as? [String: Any] else { return nil }
        return error["code"] as? String
    }

    var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] }
}

/// A response's parts, assembled into an `HTTPReply` at its end.
struct ReplyParts {
    private var head: HTTPResponseHead?
    private var body: ByteBuffer?

    /// The whole reply once `part` ends it.
    mutating func add(_ part: HTTPClientResponsePart) -> HTTPReply? {
        switch part {
        case .head(let head):
            self.head = head
            body = nil
        case .body(var bytes):
            if body == nil { body = bytes } else { body!.writeBuffer(&bytes) }
        case .end:
            guard let head else { return nil }
            defer { (self.head, body) = (nil, nil) }
            return HTTPReply(status: Int(head.status.code), body: body ?? ByteBuffer(),
                             retryAfter: head.headers.first(name: "retry-after"), keepAlive: head.isKeepAlive)
        }
        return nil
    }
}

/// Collects one response at a time (one request in flight per connection: HTTP/1.1 keep-alive, no pipelining).
private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private var pending: EventLoopPromise<HTTPReply>?
    private var parts = ReplyParts()

    func expect(_ promise: EventLoopPromise<HTTPReply>) {
        precondition(pending == nil, "one request at a time per connection")
        pending = promise
    }

    func fail(_ error: any Error) {
        let promise = pending
        pending = nil
        promise?.fail(error)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let reply = parts.add(unwrapInboundIn(data)) else { return }
        let promise = pending
        pending = nil
        promise?.succeed(reply)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }
}

/// A keep-alive HTTP/1.1 connection (TLS when the target says so) on SwiftNIO.
final class LoadConnection: Sendable {
    private let channel: any Channel
    private let collector: NIOLoopBoundBox<ResponseCollector?>
    private let hostHeader: String

    private init(channel: any Channel, collector: NIOLoopBoundBox<ResponseCollector?>, hostHeader: String) {
        self.channel = channel
        self.collector = collector
        self.hostHeader = hostHeader
    }

    static func connect(to target: LoadTarget, tls: NIOSSLContext?, group: any EventLoopGroup, timeout: Duration = .seconds(5)) async throws -> LoadConnection {
        let eventLoop = group.next()
        let collector = NIOLoopBoundBox.makeEmptyBox(valueType: ResponseCollector.self, eventLoop: eventLoop)
        let channel = try await target.connect(on: eventLoop, tls: tls, timeout: timeout.timeAmount) { channel in
            let handler = ResponseCollector()
            collector.value = handler
            try channel.pipeline.syncOperations.addHandler(handler)
        }.get()
        return LoadConnection(channel: channel, collector: collector, hostHeader: "\(target.host):\(target.port)")
    }

    static func tlsContext(for target: LoadTarget) throws -> NIOSSLContext? {
        guard target.tls else { return nil }
        var configuration = TLSConfiguration.makeClientConfiguration()
        if target.insecure {
            configuration.certificateVerification = .none
        } else {
            if let ca = target.caFile { configuration.trustRoots = .file(ca) }
            // A certificate for an IP address is checked against the CA, not against a host name (SNI forbids IPs).
            if target.host.allSatisfy({ $0.isNumber || $0 == "." || $0 == ":" }) { configuration.certificateVerification = .noHostnameVerification }
        }
        return try NIOSSLContext(configuration: configuration)
    }

    var isActive: Bool { channel.isActive }

    /// One request; the answer, or an error when the connection fails or no answer comes within `timeout`
    /// (`LoadTimeout`; the connection is closed then — a frozen server must not hang the run).
    func send(_ method: HTTPMethod, _ path: String, headers extra: [(String, String)] = [], body: ByteBuffer? = nil,
              timeout: Duration = .seconds(30)) async throws -> HTTPReply {
        let promise = channel.eventLoop.makePromise(of: HTTPReply.self)
        let channel = self.channel
        let collector = self.collector
        let host = hostHeader
        channel.eventLoop.execute {
            collector.value!.expect(promise)
            let timer = channel.eventLoop.scheduleTask(in: timeout.timeAmount) {
                collector.value?.fail(LoadTimeout())
                channel.close(promise: nil)
            }
            promise.futureResult.whenComplete { _ in timer.cancel() }
            var headers = HTTPHeaders([("Host", host), ("User-Agent", "storefront-load")])
            for (name, value) in extra { headers.add(name: name, value: value) }
            if let body {
                headers.add(name: "Content-Type", value: "application/json")
                headers.add(name: "Content-Length", value: "\(body.readableBytes)")
            }
            channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)), promise: nil)
            if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil) }
            channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { error in collector.value?.fail(error) }
        }
        let reply = try await promise.futureResult.get()
        // `Connection: close` (nginx says it every keepalive_requests): closed before the next request, so
        // that one goes out on a new connection instead of failing on this one.
        if !reply.keepAlive { try? await channel.close() }
        return reply
    }

    func close() async {
        try? await channel.close()
    }

    /// What `exchange` came to: the answer, or why there was none (`timeout`, `connect_error`, `io_error`).
    struct Exchange: Sendable {
        var reply: HTTPReply?
        var failure: String
        /// The last attempt was on a connection opened for it (a refused or failing server: callers in a loop
        /// pause before the next request).
        var onFreshConnection: Bool
    }

    /// One request on a client's own connection, opened (or reopened) as needed. A request that fails on a
    /// reused connection (closed by the server while idle, or after nginx's `keepalive_requests`) is sent once
    /// more on a new one when `resendable`; a timeout, or a failure on a fresh connection, is not.
    static func exchange(_ connection: inout LoadConnection?, target: LoadTarget, tls: NIOSSLContext?, resendable: Bool,
                         _ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: ByteBuffer? = nil,
                         timeout: Duration = .seconds(30)) async -> Exchange {
        var failure = "io_error"
        var fresh = false
        for attempt in 1...2 {
            let reused = connection?.isActive == true
            fresh = !reused
            do {
                if !reused {
                    await connection?.close()
                    connection = try await LoadConnection.connect(to: target, tls: tls, group: MultiThreadedEventLoopGroup.singleton)
                }
                let reply = try await connection!.send(method, path, headers: headers, body: body, timeout: timeout)
                return Exchange(reply: reply, failure: "", onFreshConnection: fresh)
            } catch {
                failure = error is LoadTimeout ? "timeout" : (reused ? "io_error" : "connect_error")
                await connection?.close()
                connection = nil
                if error is LoadTimeout || !reused || !resendable || attempt == 2 { break }
            }
        }
        return Exchange(reply: nil, failure: failure, onFreshConnection: fresh)
    }
}

/// A handful of connections for setup and checks (products created, invariants read), one request each at a time.
final class LoadAdminClient: Sendable {
    let target: LoadTarget
    let token: String?
    let tls: NIOSSLContext?
    let group: any EventLoopGroup

    init(target: LoadTarget, token: String?, group: any EventLoopGroup) throws {
        self.target = target
        self.token = token
        self.group = group
        tls = try LoadConnection.tlsContext(for: target)
    }

    /// One request on a connection of its own (setup is not what is measured).
    func call(_ method: HTTPMethod, _ path: String, json: String? = nil, headers: [(String, String)] = [], admin: Bool = false) async throws -> HTTPReply {
        let connection = try await LoadConnection.connect(to: target, tls: tls, group: group)
        defer { Task { await connection.close() } }
        var all = headers
        if admin {
            guard let token else { throw LoadError("this scenario needs the admin token: --admin-token or STOREFRONT_ADMIN_TOKEN") }
            all.append(("Authorization", "Bearer \(token)"))
        }
        return try await connection.send(method, path, headers: all, body: json.map { ByteBuffer(string: $0) })
    }

    /// `body` on `count` connections of its own, in parallel, over `items`.
    func parallel<T: Sendable, R: Sendable>(_ items: [T], connections count: Int, _ body: @escaping @Sendable (LoadConnection, T) async throws -> R) async throws -> [R] {
        let queue = WorkQueue(items.enumerated().map { $0 })
        return try await withThrowingTaskGroup(of: [(Int, R)].self) { group in
            for _ in 0..<max(1, min(count, items.count)) {
                group.addTask {
                    var connection = try await LoadConnection.connect(to: self.target, tls: self.tls, group: self.group)
                    var results: [(Int, R)] = []
                    do {
                        while let (index, item) = queue.next() {
                            if !connection.isActive {
                                await connection.close()
                                connection = try await LoadConnection.connect(to: self.target, tls: self.tls, group: self.group)
                            }
                            results.append((index, try await body(connection, item)))
                        }
                    } catch {
                        await connection.close()
                        throw error
                    }
                    await connection.close()
                    return results
                }
            }
            var all = [R?](repeating: nil, count: items.count)
            for try await part in group { for (index, result) in part { all[index] = result } }
            return all.map { $0! }
        }
    }
}
