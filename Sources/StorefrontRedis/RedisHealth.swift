import RedisClient
import StorefrontCore

/// `/health/ready` entry for Redis, with one row per node: the standalone server, or every Redis Cluster node
/// as `CLUSTER NODES` lists it, each probed with its own `PING`.
public struct RedisHealth: HealthCheckable {
    let redis: RedisClient
    /// How long one node's `PING` may take before its row says it does not answer.
    let nodeTimeout: Duration

    public init(redis: RedisClient, nodeTimeout: Duration = .seconds(1)) {
        self.redis = redis
        self.nodeTimeout = nodeTimeout
    }
    public var healthName: String { "redis" }
    public func checkHealth() async throws { try await redis.ping() }

    public func healthNodes(checkError: (any Error)?) async -> [HealthNode] {
        guard let cluster = redis.cluster else {
            // The check just pinged the one server.
            return [HealthNode(role: "standalone", endpoint: "\(redis.configuration.endpoints[0])", status: checkError == nil ? "up" : "down",
                               detail: checkError.map { "\($0)" })]
        }
        // The node list from the first node that answers (a dead master must not hide the others' view).
        let candidates = cluster.masters + redis.configuration.endpoints.filter { !cluster.masters.contains($0) }
        var listed: [ClusterNode]?
        var lastError: (any Error)?
        for endpoint in candidates where listed == nil {
            do {
                let reply = try await withDeadline(nodeTimeout, what: "CLUSTER NODES from \(endpoint)") {
                    try await cluster.send(to: endpoint, ["CLUSTER", "NODES"]).throwingServerError()
                }
                listed = Self.parseClusterNodes(reply.string ?? "")
            } catch {
                lastError = error
            }
        }
        guard let listed else {
            // No node lists the cluster: each known master as its own PING finds it.
            let reason = "no node answered CLUSTER NODES (\(lastError.map { "\($0)" } ?? "none known"))"
            return await probeAll(cluster.masters.map { ($0, HealthNode(role: "master", endpoint: "\($0)", status: "up", detail: reason)) }, cluster)
        }
        return await probeAll(listed.map { ($0.endpoint, $0.health) }, cluster)
    }

    /// Every row as the node's own `PING` finds it, concurrently.
    private func probeAll(_ rows: [(RedisEndpoint, HealthNode)], _ cluster: RedisClusterClient) async -> [HealthNode] {
        await withTaskGroup(of: (Int, HealthNode).self) { group in
            for (index, (endpoint, row)) in rows.enumerated() {
                group.addTask {
                    (index, await probe(row) {
                        let reply = try await cluster.send(to: endpoint, ["PING"])
                        guard reply.string == "PONG" else { throw RedisClientError.unexpectedReply("\(reply)") }
                    })
                }
            }
            var probed = rows.map(\.1)
            for await (index, row) in group { probed[index] = row }
            return probed
        }
    }

    /// `row` as the node's own `PING` finds it: a node that does not answer is down, whatever the cluster says.
    private func probe(_ row: HealthNode, _ ping: @escaping @Sendable () async throws -> Void) async -> HealthNode {
        var row = row
        do {
            try await withDeadline(nodeTimeout, what: "PING \(row.endpoint)", ping)
        } catch {
            row.status = "down"
            row.detail = [row.detail, "\(error)"].compactMap { $0 }.joined(separator: "; ")
        }
        return row
    }

    /// One line of `CLUSTER NODES`: `<id> <ip:port@cport[,hostname]> <flags> <master-id|-> <ping> <pong> <epoch> <link> <slot>…`.
    struct ClusterNode: Equatable {
        var id: String
        var endpoint: RedisEndpoint
        var flags: Set<String>
        var masterID: String?
        var linkConnected: Bool
        var slots: [String]
        var masterEndpoint: RedisEndpoint?

        /// The cluster's own verdict: `fail` (agreed failing) is down, `fail?` (suspected by the node asked) or a
        /// disconnected link is degraded.
        var health: HealthNode {
            let role = flags.contains("master") ? "master" : flags.contains("slave") ? "replica" : "unknown"
            var notes: [String] = []
            if role == "master" { notes.append(slots.isEmpty ? "no slots" : "slots " + slots.joined(separator: " ")) }
            if let masterEndpoint { notes.append("replica of \(masterEndpoint)") }
            var status = "up"
            if flags.contains("fail") {
                status = "down"
                notes.append("the cluster marks it failed")
            } else if flags.contains("fail?") {
                status = "degraded"
                notes.append("suspected failing")
            } else if !linkConnected && !flags.contains("myself") {
                status = "degraded"
                notes.append("cluster bus link disconnected")
            }
            return HealthNode(role: role, endpoint: "\(endpoint)", status: status, detail: notes.joined(separator: "; "))
        }
    }

    static func parseClusterNodes(_ text: String) -> [ClusterNode] {
        var nodes: [ClusterNode] = []
        for line in text.split(whereSeparator: \.isNewline) {
            let fields = line.split(separator: " ")
            guard fields.count >= 8 else { continue }
            let address = fields[1].split(separator: "@").first ?? ""
            guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else { continue }
            let host = address[..<colon]
            let flags = Set(fields[2].split(separator: ",").map(String.init))
            guard !host.isEmpty, !flags.contains("noaddr"), !flags.contains("handshake") else { continue }
            nodes.append(ClusterNode(id: String(fields[0]), endpoint: RedisEndpoint(host: String(host), port: port), flags: flags,
                                     masterID: fields[3] == "-" ? nil : String(fields[3]), linkConnected: fields[7] == "connected",
                                     slots: fields.dropFirst(8).map(String.init), masterEndpoint: nil))
        }
        let byID = Dictionary(nodes.map { ($0.id, $0.endpoint) }, uniquingKeysWith: { a, _ in a })
        for i in nodes.indices { nodes[i].masterEndpoint = nodes[i].masterID.flatMap { byID[$0] } }
        // Masters first, each followed by its replicas; stable by endpoint.
        return nodes.sorted { a, b in
            let ka = a.masterEndpoint ?? a.endpoint, kb = b.masterEndpoint ?? b.endpoint
            if ka != kb { return "\(ka)" < "\(kb)" }
            return (a.masterEndpoint == nil ? 0 : 1, "\(a.endpoint)") < (b.masterEndpoint == nil ? 0 : 1, "\(b.endpoint)")
        }
    }
}
