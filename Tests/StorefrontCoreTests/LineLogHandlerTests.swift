import Foundation
import Logging
import StorefrontCore
import Synchronization
import Testing

@Suite("Log lines")
struct LineLogHandlerTests {
    final class Lines: Sendable {
        let all = Mutex<[String]>([])
        var handler: LineLogHandler {
            LineLogHandler(label: "storefront", level: .info, metadataProvider: nil) { line in self.all.withLock { $0.append(line) } }
        }
    }

    @Test func metadataIsRenderedWhenALineIsWritten() {
        let lines = Lines()
        var logger = Logger(label: "storefront") { _ in lines.handler }
        logger[metadataKey: "instance"] = "a1"
        logger[metadataKey: "hb.request.id"] = "r1"
        logger.debug("below the level")
        logger[metadataKey: "hb.request.id"] = "r2"  // set after the first, the line shows the latest
        logger.info("purchase confirmed", metadata: ["order": "7", "instance": "override"])
        logger.warning("failed", error: CocoaError(.fileNoSuchFile))
        let written = lines.all.withLock { $0 }
        #expect(written.count == 2, "the debug line is below the handler's level")
        let first = written[0]
        #expect(first.hasSuffix(" info storefront: hb.request.id=r2 instance=override order=7 [StorefrontCoreTests] purchase confirmed\n"),
                "keys sorted, explicit metadata wins: \(first)")
        #expect(written[1].contains(" warning storefront: error.message="), "\(written[1])")
        #expect(written[1].contains("error.type=") && written[1].contains("hb.request.id=r2 instance=a1"), "\(written[1])")
    }

    @Test func timesAreUTCWithMilliseconds() throws {
        let lines = Lines()
        let logger = Logger(label: "x") { _ in lines.handler }
        let before = Date()
        logger.info("hello")
        let line = try #require(lines.all.withLock { $0.first })
        let stamp = String(line.prefix(24))
        #expect(stamp.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, "\(line)")
        let parsed = try #require(try? Date(stamp, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true)))
        #expect(abs(parsed.timeIntervalSince(before)) < 5, "UTC, not local time: \(stamp) vs \(before)")
        #expect(line.hasSuffix(" info storefront: [StorefrontCoreTests] hello\n"), "no metadata, no extra spaces: \(line)")
    }
}
