import Glibc
import Logging

/// One line per event on standard error, in swift-log's `StreamLogHandler` layout
/// (`TIME LEVEL LABEL: key=value … [SOURCE] MESSAGE`), with two differences:
///
/// - metadata is rendered only when a line is written. `StreamLogHandler` re-renders its whole metadata every
///   time a key is set — and Hummingbird sets the request id on every request's logger, so a server logging
///   at `warning` paid for rendering metadata it never wrote (3 % of a cached product view under `perf`);
/// - the time is UTC with milliseconds (`2026-11-28T04:16:46.265Z`), like every time Storefront prints.
///
/// Each line is one `write(2)` to file descriptor 2 (unbuffered, as `StreamLogHandler` flushes every line), so
/// lines from concurrent tasks do not interleave.
public struct LineLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let write: @Sendable (String) -> Void

    /// A handler writing to standard error.
    public static func standardError(label: String, level: Logger.Level) -> LineLogHandler {
        LineLogHandler(label: label, level: level) { line in
            var line = line
            line.withUTF8 { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = Glibc.write(2, bytes.baseAddress! + offset, bytes.count - offset)
                    if written > 0 { offset += written } else if written < 0, errno == EINTR { continue } else { return }
                }
            }
        }
    }

    /// A handler handing each line (with its newline) to `write`: for tests.
    public init(label: String, level: Logger.Level, metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider,
                write: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.logLevel = level
        self.metadataProvider = metadataProvider
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty {
            all.merge(provided) { _, new in new }
        }
        if let explicit = event.metadata, !explicit.isEmpty {
            all.merge(explicit) { _, new in new }
        }
        if let error = event.error {
            all["error.message"] = "\(error)"
            all["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        var line = Self.timestamp()
        line += " \(event.level)"
        if !label.isEmpty { line += " \(label)" }
        line += ":"
        for (key, value) in all.sorted(by: { $0.key < $1.key }) {
            line += " \(key)=\(value)"
        }
        line += " [\(event.source)] \(event.message)\n"
        write(line)
    }

    /// Now in UTC, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(now.tv_nsec / 1_000_000), 3))Z"
    }
}
