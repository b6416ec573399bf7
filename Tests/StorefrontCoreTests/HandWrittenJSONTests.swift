import Foundation
import StorefrontCore
import Testing

/// The hand-written encoders of the hot paths say exactly what the Codable ones say.
@Suite("Hand-written JSON and timestamps")
struct HandWrittenJSONTests {
    static func saga(currency: String = "EUR", orderId: Int64? = 42) -> Saga {
        Saga(id: UUID(), idempotencyKey: "k", productId: 7, qty: 3, amountMinor: 1_234_567, currency: currency, mode: .atomic,
             state: .started, orderId: orderId, paymentRef: nil, attempts: 0, owner: "a", leaseUntil: Date(), failureCode: nil,
             lastError: nil, eventSequence: 0, createdAt: Date(), updatedAt: Date())
    }

    static func object(_ json: String) throws -> NSDictionary {
        try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? NSDictionary)
    }

    @Test(arguments: [nil, "card declined (simulated)", #"quote " backslash \ slash / tab"# + "\t newline\n cr\r bell\u{7} nul\u{0}",
                      "non-ASCII: Zürich, 東京, 🛒", ""])
    func sagaEventPayloadIsTheCodableObject(reason: String?) throws {
        for orderId in [nil, Int64(42)] {
            let event = SagaEvent(type: .paymentRefunded, saga: Self.saga(orderId: orderId), sequence: 5,
                                  occurredAt: Millis.date(1_795_000_000_123), reason: reason)
            let payload = try event.jsonPayload()
            let codable = String(decoding: try JSONEncoder().encode(event), as: UTF8.self)
            #expect(try Self.object(payload) == Self.object(codable), "\(payload)\nvs\n\(codable)")
            var decoded = try SagaEvent.decode(payload)
            #expect(Millis.from(decoded.occurredAt) == 1_795_000_000_123)
            decoded.occurredAt = event.occurredAt
            #expect(decoded == event)
        }
    }

    @Test func stringsAreEscaped() {
        var out = ""
        JSONObjectWriter.appendQuoted("a\"b\\c\nd\u{1}e/f", to: &out)
        #expect(out == #""a\"b\\c\nd\u0001e/f""#)
        var w = JSONObjectWriter()
        w.field("n", Int64(-5)); w.field("none", nil as String?); w.field("t", true); w.field("o", json: "[1]")
        #expect(w.finish() == #"{"n":-5,"t":true,"o":[1]}"#)
    }

    /// The calendar part against Foundation's format style on whole seconds (exact in binary); the
    /// millisecond is the stored one.
    @Test func timestampsAgreeWithTheISO8601FormatStyle() throws {
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt)
        var millis: [Int64] = [0, 951_782_400_000, 951_868_799_999, 4_107_542_400_000, 1_795_000_000_500, 86_399_999, 253_402_300_799_999]
        for _ in 0..<5_000 { millis.append(Int64.random(in: 0...4_102_444_800_000)) }
        for ms in millis {
            let wholeSecond = Date(timeIntervalSince1970: Double(ms / 1000)).formatted(style)
            let fraction = String(ms % 1000 + 1000).dropFirst()
            #expect(Timestamp.rfc3339(Millis.date(ms)) == wholeSecond.replacingOccurrences(of: ".000Z", with: ".\(fraction)Z"), "\(ms)")
        }
        #expect(Timestamp.rfc3339(Date(timeIntervalSince1970: 1_795_000_000.123)) == "2026-11-18T11:06:40.123Z")
        #expect(Timestamp.rfc3339(Date(timeIntervalSince1970: 1_795_000_000.9996)) == "2026-11-18T11:06:41.000Z", "nearest millisecond")
        let now = Date()
        let parsed = try #require(Timestamp.parse(Timestamp.rfc3339(now)))
        #expect(abs(parsed.timeIntervalSince(now)) < 0.001)
    }
}
