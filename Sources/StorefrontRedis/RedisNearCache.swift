import Logging
import RedisClient
import StorefrontCore

/// Product cache invalidations broadcast on a sharded Pub/Sub channel (`RedisKeys.invalidations`).
public struct RedisInvalidationBroadcast: InvalidationBroadcast {
    public let channel: RedisShardChannel

    public init(channel: RedisShardChannel) {
        self.channel = channel
    }

    public func publish(productId: Int64) async throws {
        try await channel.publish(String(productId))
    }
}

extension NearProductCache {
    /// Keeps this near cache subscribed to `channel` until the task is cancelled: messages drop copies, a lost
    /// subscription stops serving them until it is back.
    public func follow(_ channel: RedisShardChannel, logger: Logger) async {
        await channel.run { [self] event in
            switch event {
            case .message(let text):
                if let id = Int64(text) { invalidated(id) } else { invalidatedAll() }
            case .subscribed:
                subscribed()
                logger.info("near cache live: subscribed to invalidations", metadata: ["channel": "\(channel.name)"])
            case .unsubscribed(let reason):
                unsubscribed()
                logger.warning("near cache off until resubscribed: invalidations may have been missed", metadata: [
                    "channel": "\(channel.name)", "reason": "\(reason)"])
            }
        }
        unsubscribed()
    }
}
