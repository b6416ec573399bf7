import DequeModule
import NIOCore
import Synchronization

/// Set by the handler the moment a connection becomes unusable (before the close completes), so that no
/// new command is given to it.
final class ConnectionHealth: Sendable {
    private let broken = Atomic<Bool>(false)
    var isBroken: Bool { broken.load(ordering: .acquiring) }
    func markBroken() { broken.store(true, ordering: .releasing) }
}

/// Frames inbound bytes into `RESPValue`s with `RESPParser`'s caps; a malformed frame closes the connection.
final class RESPFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = RESPValue
    let parser: RESPParser

    init(parser: RESPParser = RESPParser()) {
        self.parser = parser
    }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let value = try parser.parse(&buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(value))
        return .continue
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}

/// Commands written together, waiting for their replies (one promise for the whole batch).
/// Touched only on the channel's event loop.
final class PendingCommand: @unchecked Sendable {
    var promise: EventLoopPromise<[RESPValue]>?
    let deadline: NIODeadline
    let expected: Int
    private var replies: [RESPValue] = []

    init(promise: EventLoopPromise<[RESPValue]>, deadline: NIODeadline, expected: Int) {
        self.promise = promise
        self.deadline = deadline
        self.expected = expected
        replies.reserveCapacity(expected)
    }

    /// Adds one reply; true when the batch is complete.
    func receive(_ reply: RESPValue) -> Bool {
        replies.append(reply)
        guard replies.count == expected else { return false }
        complete(.success(replies))
        return true
    }

    func complete(_ result: Result<[RESPValue], any Error>) {
        guard let promise else { return }
        self.promise = nil
        promise.completeWith(result)
    }
}

/// A batch of encoded commands written together (pipelining) with its reply slot.
struct RedisOutbound {
    var bytes: ByteBuffer
    var batch: PendingCommand
}

/// Matches replies to commands in FIFO order. If the oldest command passes its deadline the connection is
/// closed (its state is unknown) and every waiting command fails.
final class RedisCommandHandler: ChannelDuplexHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = RedisOutbound
    typealias OutboundOut = ByteBuffer

    private var pending = Deque<PendingCommand>()
    private var timer: Scheduled<Void>?
    private var failure: (any Error)?
    private var flushScheduled = false
    let health: ConnectionHealth
    /// Receives out-of-band pushes (Pub/Sub messages), on the event loop.
    let onPush: (@Sendable (RESPValue) -> Void)?

    init(health: ConnectionHealth, onPush: (@Sendable (RESPValue) -> Void)? = nil) {
        self.health = health
        self.onPush = onPush
    }

    /// RESP3 answers (S|P)SUBSCRIBE with a push per channel: that push is the command's reply.
    private static let subscribeConfirmations: Set<String> = ["subscribe", "ssubscribe", "psubscribe"]

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let outbound = unwrapOutboundIn(data)
        if let failure {
            outbound.batch.complete(.failure(failure))
            promise?.fail(failure)
            return
        }
        pending.append(outbound.batch)
        scheduleTimer(context: context)
        context.write(wrapOutboundOut(outbound.bytes), promise: promise)
        // Coalesce flushes: every command written in this event-loop tick goes out in one syscall.
        if !flushScheduled {
            flushScheduled = true
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.execute {
                let (handler, context) = loopBound.value
                handler.flushScheduled = false
                context.flush()
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = unwrapInboundIn(data)
        if case .push(let items) = value {
            let kind = items.first?.string?.lowercased()
            if !(kind.map(Self.subscribeConfirmations.contains) ?? false) || pending.isEmpty {
                onPush?(value)  // out-of-band (RESP3 push), not a reply
                return
            }
        }
        guard let batch = pending.first else {
            failAll(context: context, RedisClientError.protocolError("reply without a command"))
            return
        }
        if batch.receive(value) { pending.removeFirst() }
        if pending.isEmpty {
            timer?.cancel()
            timer = nil
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let mapped: any Error = error is RESPError ? RedisClientError.protocolError("\(error)") : error
        failAll(context: context, mapped)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(context: context, failure ?? RedisClientError.connectionClosed)
        context.fireChannelInactive()
    }

    private func scheduleTimer(context: ChannelHandlerContext) {
        guard timer == nil, let first = pending.first else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: first.deadline) {
            let (handler, context) = loopBound.value
            handler.timer = nil
            guard let oldest = handler.pending.first else { return }
            if oldest.deadline <= .now() {
                handler.failAll(context: context, RedisClientError.timeout)
            } else {
                handler.scheduleTimer(context: context)
            }
        }
    }

    private func failAll(context: ChannelHandlerContext, _ error: any Error) {
        health.markBroken()
        if failure == nil { failure = error }
        timer?.cancel()
        timer = nil
        while let command = pending.popFirst() {
            command.complete(.failure(error))
        }
        context.close(promise: nil)
    }
}
