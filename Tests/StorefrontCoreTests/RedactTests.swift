import StorefrontCore
import Testing

@Suite("Credentials are redacted")
struct RedactTests {
    @Test func passwordsOfEveryURLAreReplaced() {
        #expect(Redact.url("mysql://app:s3cr3t@db1:3306/shop?tls=true") == "mysql://app:***@db1:3306/shop?tls=true")
        #expect(Redact.url("mysql://app:a@b@db1:3306/shop") == "mysql://app:***@db1:3306/shop", "an @ in the password")
        #expect(Redact.url("mysql://app:x@db1/s,mysql://app:y@db2/s") == "mysql://app:***@db1/s,mysql://app:***@db2/s")
        #expect(Redact.url("redis://:secret@r1:6379/2") == "redis://:***@r1:6379/2")
        #expect(Redact.url("redis://secret@r1:6379") == "redis://***@r1:6379", "Redis: a bare password")
        #expect(Redact.url("redis+cluster://u:p@r1:7000,r2:7001") == "redis+cluster://u:***@r1:7000,r2:7001")
        #expect(Redact.url("mysql://app:pa,ss@db1/s,mysql://app:x@db2/s") == "mysql://app:***@db1/s,mysql://app:***@db2/s",
                "a comma in a password")
        #expect(Redact.url("redis://:ab/cd@r1:6379") == "redis://:***@r1:6379", "a slash in a Redis password")
    }

    @Test func urlsWithoutPasswordsAreUnchanged() {
        for url in ["mysql://app@db1:3306/shop", "sqlite:///var/lib/storefront.db", "redis://r1:6379", "k1:9092,k2:9092", "",
                    "mysql://db1/shop?user=a@b"] {
            #expect(Redact.url(url) == url)
        }
    }

    @Test func errorsReadAsSentences() {
        #expect("\(StorefrontError.unavailable("database", retryAfterSeconds: 1))" == "database is unavailable; retry shortly")
    }
}
