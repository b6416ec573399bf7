import Foundation
import StorefrontCore
import Testing

@Suite("Time-ordered ids")
struct TimeOrderedUUIDTests {
    @Test func versionVariantAndTime() throws {
        let now = Date(timeIntervalSince1970: 1_795_000_000.123)
        let id = UUID.timeOrdered(at: now)
        let bytes = withUnsafeBytes(of: id.uuid) { Array($0) }
        #expect(bytes[6] >> 4 == 7, "version 7")
        #expect(bytes[8] >> 6 == 0b10, "RFC 9562 variant")
        let millis = bytes[0..<6].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        #expect(millis == 1_795_000_000_123)
        #expect(id.uuidString.hasPrefix("01A1EE56-5E7B-7"), "the time leads the text too: \(id.uuidString)")
    }

    @Test func laterIdsSortAfterEarlierOnesAndAllDiffer() {
        let start = Date()
        let ids = (0..<5_000).map { UUID.timeOrdered(at: start.addingTimeInterval(Double($0) * 0.001)) }
        #expect(Set(ids).count == ids.count)
        let texts = ids.map(\.uuidString)
        #expect(texts == texts.sorted(), "one millisecond apart: text order is creation order")
        let sameMillisecond = (0..<1_000).map { _ in UUID.timeOrdered(at: start) }
        #expect(Set(sameMillisecond).count == 1_000, "74 random bits within a millisecond")
    }
}
