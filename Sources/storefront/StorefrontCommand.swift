import ArgumentParser
import Foundation
import Logging
import StorefrontApp
import StorefrontCore

@main
struct StorefrontCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storefront",
        abstract: "Sells products under heavy concurrency without ever overselling.",
        discussion: "Configuration comes from STOREFRONT_* environment variables and an optional KEY=VALUE file (--config).",
        subcommands: [Serve.self, Migrate.self, Seed.self, Events.self, Sagas.self, Database.self, KafkaDev.self, Bench.self, Load.self],
        defaultSubcommand: Serve.self)
}

struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "A file of STOREFRONT_*=value lines (the environment wins over it).")
    var config: String?

    func load() throws -> StorefrontConfig {
        do {
            return try StorefrontConfig.load(file: config)
        } catch let error as ConfigError {
            throw ValidationError(error.description)
        }
    }
}

func makeLogger(_ config: StorefrontConfig) -> Logger {
    LoggingSystem.bootstrap { label in
        LineLogHandler.standardError(label: label, level: Logger.Level(rawValue: config.logLevel) ?? .info)
    }
    var logger = Logger(label: "storefront")
    logger.logLevel = Logger.Level(rawValue: config.logLevel) ?? .info
    logger[metadataKey: "instance"] = "\(config.instanceID)"
    return logger
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the HTTP API (embedded default: SQLite file, in-process cache, lock and counter).")

    @OptionGroup var options: ConfigOptions
    @Option(help: "Address to listen on (overrides STOREFRONT_HOST).") var host: String?
    @Option(help: "Port to listen on (overrides STOREFRONT_PORT).") var port: Int?

    func run() async throws {
        var config = try options.load()
        if let host { config.host = host }
        if let port { config.port = port }
        let logger = makeLogger(config)
        let storefront = try await Storefront(config: config, logger: logger)
        logger.info("starting storefront", metadata: [
            "address": "\(config.host):\(config.port)", "database": "\(Redact.url(config.databaseURL))",
            "replicas": "\(Redact.url(config.mariadb.replicaURLs.joined(separator: ",")))",
            "redis": "\(config.redis.url.map(Redact.url) ?? "in-process")", "kafka": "\(config.kafka.brokers ?? "none (outbox only)")",
            "mode": "\(config.purchaseMode.rawValue)", "admin": "\(config.adminToken == nil ? "disabled" : "enabled")",
        ])
        try await storefront.application().runService()
        await storefront.shutdown()
        logger.info("storefront stopped")
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply database migrations and exit.")
    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let config = try options.load()
        let applied = try await StorefrontDatabase.with(config, logger: makeLogger(config)) { try await $0.appliedMigrations() }
        print("migrations applied: \(applied.joined(separator: ", "))")
    }
}

struct Seed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create a demo catalogue (idempotent: skus demo-1 … demo-N).")
    @OptionGroup var options: ConfigOptions
    @Option(help: "How many products.") var products: Int = 100
    @Option(help: "Stock of each product.") var stock: Int64 = 100

    func validate() throws {
        guard (1...10_000_000).contains(products) else { throw ValidationError("--products must be between 1 and 10000000") }
        guard (0...ProductRules.maxStock).contains(stock) else { throw ValidationError("--stock must be between 0 and \(ProductRules.maxStock)") }
    }

    func run() async throws {
        let config = try options.load()
        let total = products, stock = stock
        let start = ContinuousClock.now
        try await StorefrontDatabase.with(config, logger: makeLogger(config)) { database in
            try await DemoCatalog(products: database.products).seed(count: total, stock: stock, now: Date()) { done in
                if total >= 10_000 || done == total {
                    FileHandle.standardError.write(Data("\rseeded \(done)/\(total) products".utf8))
                }
            }
        }
        FileHandle.standardError.write(Data("\n".utf8))
        print("seeded \(total) products with stock \(stock) in \(ContinuousClock.now - start)")
    }
}

struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Saga events: from the outbox table (default) or from Kafka (tail).",
        subcommands: [EventsOutbox.self, EventsTail.self], defaultSubcommand: EventsOutbox.self)
}

struct EventsOutbox: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "outbox", abstract: "Print saga events from the outbox table, one JSON object per line.")
    @OptionGroup var options: ConfigOptions
    @Option(help: "Only events of this saga.") var saga: String?
    @Flag(help: "Only events not yet published to Kafka.") var unpublished = false

    func run() async throws {
        let config = try options.load()
        let sagaId = try saga.map { raw -> UUID in
            guard let id = UUID(uuidString: raw) else { throw ValidationError("--saga must be a UUID") }
            return id
        }
        let unpublished = unpublished
        try await StorefrontDatabase.with(config, logger: makeLogger(config)) { database in
            let outbox = database.sagas
            var after: Int64 = 0
            while true {
                let records = unpublished
                    ? try await outbox.unpublished(limit: 10_000).filter { $0.id > after && (sagaId == nil || $0.key == sagaId!.uuidString) }
                    : try await outbox.records(after: after, limit: 1000, sagaId: sagaId)
                for record in records { print(record.payload) }
                guard let last = records.last, !unpublished else { break }
                after = last.id
            }
        }
    }
}

struct Sagas: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Unfinished sagas, and what to do with those recovery gave up on.",
        subcommands: [SagasList.self, SagasRetry.self, SagasResolve.self], defaultSubcommand: SagasList.self)
}

func parseSagaID(_ raw: String) throws -> UUID {
    guard let id = UUID(uuidString: raw) else { throw ValidationError("the saga id must be a UUID") }
    return id
}

struct SagasList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List unfinished sagas, oldest first.")
    @OptionGroup var options: ConfigOptions
    @Flag(help: "Only sagas recovery gave up on.") var needsAttention = false
    @Option(help: "At most this many.") var limit: Int = 100

    func run() async throws {
        let config = try options.load()
        let logger = makeLogger(config)
        let (needsAttention, limit) = (needsAttention, limit)
        let lines = try await StorefrontDatabase.with(config, logger: logger) { database in
            try await SagaRunbook(config: config, database: database, logger: logger).list(needingAttention: needsAttention, limit: limit)
        }
        if lines.isEmpty { print(needsAttention ? "no saga needs attention" : "no unfinished saga") }
        lines.forEach { print($0) }
    }
}

struct SagasRetry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "retry", abstract: "Hand a saga back to the app servers' recovery now.")
    @OptionGroup var options: ConfigOptions
    @Argument(help: "The saga id.") var id: String
    @Flag(help: "Even a saga a live server is driving (it is taken from it).") var force = false

    func run() async throws {
        let config = try options.load()
        let logger = makeLogger(config)
        let (id, force) = (try parseSagaID(id), force)
        print(try await StorefrontDatabase.with(config, logger: logger) { database in
            try await SagaRunbook(config: config, database: database, logger: logger).retry(id, force: force)
        })
    }
}

struct SagasResolve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resolve",
        abstract: "Finish a saga here, now: compensate it before the payment pivot, confirm it after.")
    @OptionGroup var options: ConfigOptions
    @Argument(help: "The saga id.") var id: String
    @Flag(help: "Even a saga a live server is driving (it is fenced: its next step writes nothing).") var force = false

    func run() async throws {
        let config = try options.load()
        let logger = makeLogger(config)
        let (id, force) = (try parseSagaID(id), force)
        print(try await StorefrontDatabase.with(config, logger: logger) { database in
            try await SagaRunbook(config: config, database: database, logger: logger).resolve(id, force: force)
        })
    }
}
