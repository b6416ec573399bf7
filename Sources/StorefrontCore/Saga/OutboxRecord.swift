import Foundation

/// A row of the transactional outbox.
public struct OutboxRecord: Sendable, Equatable {
    public var id: Int64
    public var eventId: UUID
    public var topic: String
    public var key: String
    public var payload: String
    public var createdAt: Date
    public var publishedAt: Date?

    public init(id: Int64, eventId: UUID, topic: String, key: String, payload: String, createdAt: Date, publishedAt: Date?) {
        self.id = id
        self.eventId = eventId
        self.topic = topic
        self.key = key
        self.payload = payload
        self.createdAt = createdAt
        self.publishedAt = publishedAt
    }
}
