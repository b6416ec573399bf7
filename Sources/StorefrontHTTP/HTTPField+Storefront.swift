import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization
import StorefrontCore

extension HTTPField.Name {
    static let requestID = Self("X-Request-Id")!
    static let idempotencyKey = Self("Idempotency-Key")!
    static let idempotentReplayed = Self("Idempotent-Replayed")!
    static let csrfToken = Self("X-CSRF-Token")!
    static let secFetchSite = Self("Sec-Fetch-Site")!
    static let forwardedProto = Self("X-Forwarded-Proto")!
    static let realIP = Self("X-Real-IP")!
    static let referrerPolicy = Self("Referrer-Policy")!
    static let xFrameOptions = Self("X-Frame-Options")!
}
