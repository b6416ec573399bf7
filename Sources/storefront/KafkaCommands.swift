import ArgumentParser
import Dispatch
import Foundation
import StorefrontApp
import StorefrontCore

/// `storefront kafka-dev`: librdkafka's mock cluster as a local 2-broker Kafka — development and tests only.
struct KafkaDev: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafka-dev",
        abstract: "Run a mock 2-broker Kafka (librdkafka's mock cluster) for development and tests — never production.",
        discussion: """
            Prints the bootstrap list, creates the event topic with replication factor 2, and runs until SIGINT/SIGTERM.
            Type `down N` / `up N` on standard input to take broker N (1 or 2) down or up; leadership and group
            coordination move to a broker that is up.
            """)

    @Option(help: "Number of brokers.") var brokers = 2
    @Option(help: "Topic to create.") var topic = SagaEvent.defaultTopic
    @Option(help: "Partitions of the topic.") var partitions: Int32 = 6
    @Option(help: "Write the bootstrap list to this file too.") var bootstrapFile: String?

    func run() async throws {
        let cluster = try DevKafka(brokers: brokers, topic: topic, partitions: partitions)
        let bootstrap = cluster.bootstrapServers
        if let bootstrapFile { try bootstrap.write(toFile: bootstrapFile, atomically: true, encoding: .utf8) }
        emit("kafka-dev: \(brokers) mock brokers at \(bootstrap); topic \(topic) (\(partitions) partitions, replication 2)")
        emit("bootstrap: \(bootstrap)")
        let commands = AsyncStream<String> { continuation in
            Thread.detachNewThread {  // blocking reads stay off the cooperative pool
                while let line = readLine() { continuation.yield(line) }
                continuation.finish()
            }
        }
        let (stop, stopContinuation) = AsyncStream<Int32>.makeStream()
        let sources = [SIGINT, SIGTERM].map { sig in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig)
            source.setEventHandler { stopContinuation.yield(sig) }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await line in commands {
                    let words = line.split(separator: " ")
                    guard words.count == 2, let id = Int32(words[1]) else { emit("commands: down N | up N"); continue }
                    do {
                        switch words[0] {
                        case "down": try cluster.setBroker(id, up: false); emit("broker \(id) down; brokers up: \(cluster.brokersUp)")
                        case "up": try cluster.setBroker(id, up: true); emit("broker \(id) up; brokers up: \(cluster.brokersUp)")
                        default: emit("commands: down N | up N")
                        }
                    } catch {
                        emit("error: \(error)")
                    }
                }
                // Standard input closed (running in the background): keep serving until a signal.
                try? await Task.sleep(for: .seconds(365 * 24 * 3600))
            }
            group.addTask {
                for await _ in stop { break }
            }
            await group.next()
            group.cancelAll()
        }
        emit("kafka-dev: stopped")
        withExtendedLifetime(cluster) {}
    }
}

/// `storefront events tail`: reads the event topic and prints each event once (deduplicated by eventId).
struct EventsTail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tail", abstract: "Print saga events from Kafka, one JSON per line, deduplicated by eventId.")

    @Option(help: "Kafka bootstrap list (default STOREFRONT_KAFKA_BROKERS).") var brokers: String?
    @Option(help: "Topic.") var topic = SagaEvent.defaultTopic
    @Flag(help: "Start at the oldest event instead of new ones.") var fromBeginning = false
    @Option(help: "Only events of this saga.") var saga: String?
    @Option(help: "Stop after this many events.") var max: Int?
    @Option(help: "Stop when no event arrived for this many seconds (before the first event: at least 20 s, joining the group takes a while).") var idleTimeout: Int?

    func run() async throws {
        guard let bootstrap = brokers ?? ProcessInfo.processInfo.environment["STOREFRONT_KAFKA_BROKERS"] else {
            throw ValidationError("give --brokers or set STOREFRONT_KAFKA_BROKERS")
        }
        let sagaFilter = try saga.map { raw -> UUID in
            guard let id = UUID(uuidString: raw) else { throw ValidationError("--saga must be a UUID") }
            return id
        }
        var tail = EventTail(brokers: bootstrap)
        tail.topic = topic
        tail.fromBeginning = fromBeginning
        tail.sagaId = sagaFilter
        tail.max = max
        tail.idleTimeout = idleTimeout.map { .seconds($0) }
        try await tail.run(emit)
    }
}

/// Writes one line to standard output at once, with write(2) rather than stdio's buffer: a pipe or file sees
/// it immediately, and nothing waits on the lock of `stdin`'s FILE, which a thread blocked in `readLine()` holds
/// (flushing every stream, `fflush(NULL)`, deadlocked `kafka-dev` that way while it waited for a command).
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
