import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import StorefrontApp
import StorefrontHTTP
import StorefrontBench
import StorefrontContracts
import StorefrontCore
@testable import StorefrontSQLite
@testable import StorefrontMariaDB
import MariaDB
import RedisClient
import Synchronization
import Testing

let adminToken = "test-admin-token"

func temporaryDatabaseURL() -> String {
    "sqlite://" + FileManager.default.temporaryDirectory.appendingPathComponent("storefront-http-\(UUID().uuidString).db").path
}

/// A Storefront on a fresh SQLite file, with the test's settings.
func makeStorefront(
    databaseURL: String = temporaryDatabaseURL(), instance: String = "test-1", faults: (any SagaFaultInjector)? = nil,
    clock: WallClock = .system, _ tweak: (inout StorefrontConfig) -> Void = { _ in }
) async throws -> Storefront {
    var config = StorefrontConfig(instanceID: instance)
    config.databaseURL = databaseURL
    config.adminToken = adminToken
    config.logLevel = "warning"
    tweak(&config)
    guard let faults else { return try await Storefront(config: config, clock: clock) }
    let crashed = CrashedSagas()
    let decorators = PortDecorators(sagas: { FaultInjectingSagaStore($0, faults: faults, crashed: crashed) },
                                    payments: { FaultInjectingPaymentGateway($0, faults: faults, crashed: crashed) })
    return try await Storefront(config: config, decorators: decorators, clock: clock)
}

extension Storefront {
    /// Runs `body` against the router in-process (the background services run meanwhile).
    func test<T: Sendable>(_ body: @Sendable (any TestClientProtocol) async throws -> T) async throws -> T {
        try await application().test(.router, body)
    }

    /// Runs `body` against the routes alone, without the background services: for a test that closed the
    /// database first (a recovery round on a closed database would only log SQLite's misuse error).
    func testRoutesOnly<T: Sendable>(_ body: @Sendable (any TestClientProtocol) async throws -> T) async throws -> T {
        try await Application(router: buildRouter(services), logger: logger).test(.router, body)
    }
}

struct Reply: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var json: [String: any Sendable]
    var raw: String

    var error: String? { (json["error"] as? [String: any Sendable])?["code"] as? String }
    func int(_ key: String) -> Int64? { (json[key] as? NSNumber)?.int64Value }
    func string(_ key: String) -> String? { json[key] as? String }
}

extension TestClientProtocol {
    func call(_ method: HTTPRequest.Method, _ uri: String, body: String? = nil, headers: HTTPFields = [:], admin: Bool = false) async throws -> Reply {
        var headers = headers
        if admin { headers[.authorization] = "Bearer \(adminToken)" }
        if body != nil { headers[.contentType] = "application/json" }
        return try await execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
            let raw = String(buffer: response.body)
            let object = (try? JSONSerialization.jsonObject(with: Data(raw.utf8))) as? [String: Any] ?? [:]
            return Reply(status: response.status, headers: response.headers, json: object.mapValues { $0 as! any Sendable }, raw: raw)
        }
    }

    /// Creates a product through the admin API and returns its id.
    func createProduct(sku: String = "mug-\(UUID().uuidString.prefix(6))", price: Int64 = 1999, stock: Int64 = 50) async throws -> Int64 {
        let reply = try await call(.post, "/admin/products",
                                   body: #"{"sku":"\#(sku)","name":"Mug","description":"A mug","priceMinor":\#(price),"currency":"USD","stock":\#(stock)}"#,
                                   admin: true)
        #expect(reply.status == .created, "\(reply.raw)")
        return try #require(reply.int("id"))
    }

    func purchase(_ productId: Int64, qty: Int64 = 1, key: String? = nil) async throws -> Reply {
        var headers: HTTPFields = [:]
        if let key { headers[HTTPField.Name("Idempotency-Key")!] = key }
        return try await call(.post, "/purchase", body: #"{"productId":\#(productId),"qty":\#(qty)}"#, headers: headers)
    }
}

private let nextRedisDatabase = Atomic<Int>(0)

/// A private, flushed database (1…15) of the test Redis, so parallel tests never share keys.
/// Missing server configuration is a failure, not a skip.
func freshRedisURL() async throws -> String {
    let base = try TestServers.required("STOREFRONT_TEST_REDIS_URL")
    let db = nextRedisDatabase.wrappingAdd(1, ordering: .relaxed).oldValue % 15 + 1
    let url = base.hasSuffix("/") ? "\(base)\(db)" : "\(base)/\(db)"
    let client = try RedisClient(configuration: try RedisConfiguration(url: url))
    try await client.send(["FLUSHDB"])
    await client.close()
    return url
}

/// Which engines a test runs on: cache/lock/counter in-process, on Redis or Redis Cluster (SQLite database),
/// or the production topology — MariaDB primary + replica with standalone Redis.
enum Engine: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case embedded, redis, cluster, mariadb
    var testDescription: String { rawValue }

    /// The settings for this engine (a private Redis database, a private MariaDB database).
    func prepare() async throws -> EngineSetup {
        switch self {
        case .embedded: return EngineSetup()
        case .redis: return EngineSetup(redisURL: try await freshRedisURL())
        case .cluster:
            return EngineSetup(redisURL: try TestServers.required("STOREFRONT_TEST_REDIS_CLUSTER_URL"))
        case .mariadb:
            let (primary, replicas) = try await freshMariaDBURLs()
            return EngineSetup(redisURL: try await freshRedisURL(), databaseURL: primary, replicaURLs: replicas)
        }
    }
}

struct EngineSetup: Sendable {
    var redisURL: String?
    var databaseURL: String?
    var replicaURLs: [String] = []

    func apply(_ config: inout StorefrontConfig) {
        config.redis.url = redisURL
        if let databaseURL {
            config.databaseURL = databaseURL
            config.mariadb.replicaURLs = replicaURLs
        }
    }
}

/// A new empty database on the test MariaDB pair: its primary URL and replica URL.
func freshMariaDBURLs(primary primaryVariable: String = "STOREFRONT_TEST_MARIADB_URL",
                      replica replicaVariable: String = "STOREFRONT_TEST_MARIADB_REPLICA_URL") async throws -> (String, [String]) {
    let primary = try TestServers.required(primaryVariable)
    let replica = try TestServers.required(replicaVariable)
    let urls = try await ScratchDatabase.create(on: primary, prefix: "storefront_t", pointing: [primary, replica]).urls
    return (urls[0], [urls[1]])
}

extension StorefrontDatabase {
    /// The MariaDB engine's own object, when the test runs on MariaDB.
    var mariadb: MariaDBDatabase? { engine.native as? MariaDBDatabase }
    /// The SQLite engine's own object, when the test runs embedded.
    var sqlite: SQLiteDatabase? { engine.native as? SQLiteDatabase }
}

extension Storefront {
    /// A cluster has one keyspace shared by parallel tests: start this database's product ids at a random
    /// offset so no two tests touch the same `product:{id}` keys.
    func useUniqueProductIDs() async throws {
        let start = Int64.random(in: 1_000_000...9_000_000_000)
        if let mariadb = database.mariadb {
            _ = try await mariadb.write { s in try s.execute("ALTER TABLE products AUTO_INCREMENT = \(start)") }
            return
        }
        try await database.sqlite!.writer.write { db in
            try db.execute(sql: "INSERT INTO sqlite_sequence (name, seq) VALUES ('products', ?)", arguments: [start])
        }
    }
}

/// The stampedes and the failover drills, one at a time: each saturates this 2-core machine on its own, and
/// a drill's recovery times mean nothing while a stampede runs next to it.
@Suite("Load and failover drills (one at a time)", .serialized)
struct LoadDrills {}

/// A variable `scripts/test-servers up` exports; missing, the test fails (never a silent skip).
func requiredEnvironment(_ name: String) throws -> String { try TestServers.required(name) }

/// A drill's purchase loop: `workers` clients each buy `perWorker` single units, retrying 503 and
/// `product_busy` with the same Idempotency-Key for up to 60 s (4 workers contending for one product lock on
/// a loaded machine can wait long); after `killAfter` purchases `onKill` runs once. Returns every purchase's
/// outcome and the keys the clients saw confirmed.
func drillPurchaseLoop(
    _ client: any TestClientProtocol, product id: Int64, workers: Int, perWorker: Int, keyPrefix: String, killAfter: Int,
    progress: DrillProgress, onKill: @escaping @Sendable () async throws -> Void
) async throws -> (outcomes: [String], confirmedKeys: [String]) {
    try await withThrowingTaskGroup(of: [(String, String)].self) { group in
        for w in 0..<workers {
            group.addTask {
                var results: [(String, String)] = []
                for i in 0..<perWorker {
                    let key = "\(keyPrefix)-\(w)-\(i)"
                    let deadline = ContinuousClock.now + .seconds(60)
                    var reply = try await client.purchase(id, qty: 1, key: key)
                    while reply.status != .created, ContinuousClock.now < deadline,
                          reply.error == "service_unavailable" || reply.error == "product_busy" {
                        try await Task.sleep(for: .milliseconds(100))
                        reply = try await client.purchase(id, qty: 1, key: key)
                    }
                    results.append((reply.status == .created ? "confirmed" : reply.error ?? "\(reply.status.code)", key))
                    if reply.status == .created { progress.noteSuccess() }
                    if progress.done.add(1, ordering: .relaxed).newValue == killAfter { try await onKill() }
                }
                return results
            }
        }
        var all: [(String, String)] = []
        for try await r in group { all += r }
        return (all.map(\.0), all.filter { $0.0 == "confirmed" }.map(\.1))
    }
}
