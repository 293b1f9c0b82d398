#if canImport(Glibc)
import Glibc
#endif
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOPosix
import Synchronization
import VSecureCore
import VSecureVault

/// The limiters that the API's authentication and the fast read path share, so that a key's
/// requests count once whichever path serves them.
public struct RequestLimiters: Sendable {
    /// Requests per API key.
    let perKey: RateLimiter
    /// Failed authentications per client address.
    let failures: RateLimiter

    public init(_ limits: ServerLimits) {
        perKey = RateLimiter(rate: limits.ratePerKey, burst: limits.burstPerKey)
        failures = RateLimiter(rate: limits.failedAuthPerAddress, burst: limits.failedAuthBurst)
    }
}

/// Hummingbird's HTTP/1.1 channel (the same handlers, in the same order) with `FastReadHandler`
/// after the connection-state handler, so that idle time-outs and graceful shutdown see every
/// request and answer, including those the fast path serves.
struct VSecureHTTP1Channel: HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let responder: Responder
    let configuration: HTTP1Channel.Configuration
    /// nil: every request goes to the router.
    let fastReads: FastReads?

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            var limits = NIOHTTPDecoderLimitConfiguration()
            limits.maxHeaderFieldSize = configuration.httpDecoder.maxHeaderFieldSize
            limits.maxHeaderListSize = configuration.httpDecoder.maxHeaderListSize
            limits.maxHeaderFieldCount = configuration.httpDecoder.maxHeaderFieldCount
            let pipeline = channel.pipeline.syncOperations
            try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false,
                                                     withOutboundHeaderValidation: false, withEncoderConfiguration: .init(),
                                                     withDecoderLimitConfiguration: limits)
            try pipeline.addHandler(HTTP10ConnectionCloseHandler())
            try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try pipeline.addHandler(HTTPConnectionStateHandler(idleTimeout: configuration.idleTimeout.map { .init($0) }, logger: logger))
            if let fastReads {
                try pipeline.addHandler(FastReadHandler(reads: fastReads, logger: logger,
                                                        remoteAddress: channel.remoteAddress))
            }
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value asyncChannel: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: asyncChannel, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 with the fast read path (see `FastReadHandler`) when `fastReads` is given.
    static func vsecureHTTP1(_ configuration: HTTP1Channel.Configuration, fastReads: FastReads?) -> HTTPServerBuilder {
        .init { responder in VSecureHTTP1Channel(responder: responder, configuration: configuration, fastReads: fastReads) }
    }
}

/// What the fast path needs, shared by every connection.
public struct FastReads: Sendable {
    let service: SecretService
    let limiters: RequestLimiters
    let serverName: String
    let dates = HTTPDateCache()

    public init(service: SecretService, limiters: RequestLimiters, serverName: String) {
        self.service = service
        self.limiters = limiters
        self.serverName = serverName
    }

    /// A request the fast path can answer: `GET /v1/security/secrets/{name}` with at most the
    /// query parameters `environment`, `version` and `allowExpired`, nothing percent-encoded,
    /// a bearer token and no `Connection` header. Anything else, or anything odd, is nil and
    /// goes to the router, which has the one implementation of every error.
    struct Read {
        var name: SecretName
        var environment: EnvironmentName
        var version: Int?
        var allowExpired: Bool
        var token: Substring
    }

    static let prefix = "/v1/security/secrets/"

    func parse(_ head: HTTPRequest) -> Read? {
        guard head.method == .get, let target = head.path, target.hasPrefix(Self.prefix),
              head.headerFields[.connection] == nil, head.headerFields[.contentLength] == nil,
              head.headerFields[.transferEncoding] == nil,
              let authorization = head.headerFields[.authorization], authorization.hasPrefix("Bearer ") else { return nil }
        let token = authorization.dropFirst("Bearer ".count)
        guard !token.isEmpty, token.utf8.count <= 256 else { return nil }
        let rest = target.dropFirst(Self.prefix.count)
        let question = rest.firstIndex(of: "?")
        let nameText = question.map { rest[..<$0] } ?? rest
        guard !nameText.isEmpty, nameText != "batch",
              !nameText.utf8.contains(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "%") }),
              let name = try? SecretName(String(nameText)) else { return nil }
        var environmentText: Substring?, versionText: Substring?, expiredText: Substring?
        if let question {
            for pair in rest[rest.index(after: question)...].split(separator: "&", omittingEmptySubsequences: false) {
                guard let equals = pair.firstIndex(of: "=") else { return nil }
                let key = pair[..<equals], value = pair[pair.index(after: equals)...]
                guard !value.isEmpty, !value.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else { return nil }
                switch key {
                case "environment" where environmentText == nil: environmentText = value
                case "version" where versionText == nil: versionText = value
                case "allowExpired" where expiredText == nil: expiredText = value
                default: return nil
                }
            }
        }
        guard let environment = try? service.environment(environmentText.map(String.init)) else { return nil }
        var version: Int?
        if let versionText {
            guard versionText.utf8.count <= 10, let number = Int(versionText), (1...Int(Int32.max)).contains(number) else { return nil }
            version = number
        }
        let allowExpired: Bool
        switch expiredText {
        case nil, "false"?, "0"?: allowExpired = false
        case "true"?, "1"?: allowExpired = true
        default: return nil
        }
        return Read(name: name, environment: environment, version: version, allowExpired: allowExpired, token: token)
    }

    /// What `serve` found: the caller and the read (its body is wiped if it is dropped unsent).
    struct Served: ~Copyable {
        var caller: AuthenticatedCaller
        var read: SecretService.SecretRead
    }

    /// The answer's body and current version when the key may read the secret and the read
    /// succeeds, after taking the request from the key's rate allowance; nil otherwise, with no
    /// side effect, so the router can judge the request afresh (and record a denial, count a
    /// failed authentication, or answer 429, 404 or 410).
    func serve(_ read: Read) -> Served? {
        guard let caller = try? service.authenticate(read.token), !(caller.user?.isDisabled ?? true),
              caller.mayRead(read.environment, read.name, now: service.clock()),
              let secret = try? service.readSecret(environment: read.environment, name: read.name,
                                                   version: read.version, allowExpired: read.allowExpired)
        else { return nil }
        // Last, so that a request handed to the router has not used up a token here (a refused
        // read's body is wiped as it is dropped).
        guard limiters.perKey.admit(caller.key.id) == nil else { return nil }
        return Served(caller: caller, read: secret)
    }
}

extension AuthenticatedCaller {
    /// Whether this caller's key may read `environment/name`: the scope, the key's environment
    /// limit, then the policy or a grant (the three checks `ServerContext.authorize` makes).
    func mayRead(_ environment: EnvironmentName, _ name: SecretName, now: Timestamp) -> Bool {
        guard key.scopes.contains(Scope.secretsRead.rawValue) else { return false }
        if let allowed = key.environments, !allowed.contains(environment) { return false }
        return access.decide(user: user, action: .read, path: secretPath(environment, name), now: now).allowed
    }
}

/// Serves the API's hottest request, reading one secret, on the event loop that read it: no
/// task, no router, no middleware chain. Everything else, and every request it cannot answer
/// with a 200, passes on to Hummingbird unchanged. The answer is the router's to the byte (the
/// same body and headers) and is written only once its audit entry is durable, as there.
///
/// HTTP/1.1 lets a client send requests before the answers to earlier ones: answers must go
/// out in order. So while a request handed to the router is unanswered, later requests follow
/// it there; while a fast answer waits for its audit entry, later parts wait here.
final class FastReadHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum State {
        /// Between requests.
        case idle
        /// A head the fast path can answer, waiting for its end.
        case reading(HTTPRequest, FastReads.Read)
        /// Parts of a request for the router, until its end.
        case forwarding
        /// Waiting for an audit entry; parts that arrive meanwhile are kept in `held`.
        case answering
    }

    private let reads: FastReads
    private let logger: Logger
    private let remoteAddress: SocketAddress?
    private var state = State.idle
    /// Requests handed to the router and not yet answered.
    private var routerRequests = 0
    private var held: [HTTPRequestPart] = []
    /// The answer waiting for its audit entry (one at a time, in `.answering`). Kept here rather
    /// than in the audit callback so that, when it cannot be sent, this is the one reference to
    /// its storage and dropping it wipes the storage in place.
    private var waitingBody: SecretBody?
    /// A read from the socket asked for while an answer waits: issued once it is written, so a
    /// client that sends request after request cannot make `held` grow without bound.
    private var readPending = false
    /// The client closed its side after sending (allowed, and what some clients do): passed on
    /// only after the waiting answer is written, since the router's side closes the connection
    /// when its input ends.
    private var inputClosedPending = false

    init(reads: FastReads, logger: Logger, remoteAddress: SocketAddress?) {
        self.reads = reads
        self.logger = logger
        self.remoteAddress = remoteAddress
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if case .answering = state {
            held.append(part)
            return
        }
        take(part, context: context)
    }

    private func take(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch state {
        case .idle:
            guard case .head(let head) = part else {
                context.fireChannelRead(wrapInboundOut(part))
                return
            }
            if routerRequests == 0, let read = reads.parse(head) {
                state = .reading(head, read)
            } else {
                forward(part, context: context)
            }
        case .reading(let head, let read):
            guard case .end = part else {
                // A body after all: the router's.
                state = .idle
                forward(.head(head), context: context)
                forward(part, context: context)
                return
            }
            answer(head, read, context: context)
        case .forwarding:
            forward(part, context: context)
        case .answering:
            held.append(part)
        }
    }

    /// Hands a part to the router, counting each request once.
    private func forward(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head:
            routerRequests += 1
            state = .forwarding
        case .end:
            state = .idle
        case .body:
            break
        }
        context.fireChannelRead(wrapInboundOut(part))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            if case .answering = state {
                inputClosedPending = true
                return
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func read(context: ChannelHandlerContext) {
        if case .answering = state {
            readPending = true
            return
        }
        context.read()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Only the router's answers come through here (the fast path writes past this handler).
        if case .end = unwrapOutboundIn(data), routerRequests > 0 { routerRequests -= 1 }
        context.write(data, promise: promise)
    }

    private func answer(_ head: HTTPRequest, _ read: FastReads.Read, context: ChannelHandlerContext) {
        let start = ContinuousClock.now
        guard let served = reads.serve(read) else {
            state = .idle
            forward(.head(head), context: context)
            forward(.end(nil), context: context)
            return
        }
        let caller = served.caller, currentVersion = served.read.currentVersion
        waitingBody = .some(served.read.body)
        state = .answering
        let requestID: String
        if let given = head.headerFields[RequestIDMiddleware.header], RequestIDMiddleware.isValidID(given) {
            requestID = given
        } else {
            requestID = RequestIDMiddleware.newID()
        }
        let service = reads.service
        let event = AuditEvent(time: service.clock(), actor: AuditEvent.Actor(user: caller.user?.name, keyID: caller.key.id, keyName: caller.key.name),
                               resource: .secrets, action: .accessed, outcome: .success, environment: read.environment.rawValue,
                               name: read.name.rawValue, version: read.version ?? currentVersion, items: [],
                               request: AuditEvent.Request(address: auditAddress, userAgent: head.headerFields[.userAgent].map { String($0.prefix(256)) },
                                                           requestID: requestID),
                               details: [])
        let loop = context.eventLoop
        let boundContext = NIOLoopBound(context, eventLoop: loop)
        let handler = NIOLoopBound(self, eventLoop: loop)
        service.audit.record([event], on: loop) { outcome in
            let context = boundContext.value, handler = handler.value
            guard let body = handler.waitingBody.take() else { return }
            switch outcome {
            case .success where context.channel.isActive:
                handler.respond(status: .ok, extra: [.eTag: "\"\(currentVersion)\""], body: body.send(), requestID: requestID,
                                path: head.path ?? "", start: start, context: context)
            case .success:
                // The connection closed while the entry was written: the answer cannot go out.
                // Logged as the router logs an answer it could not write.
                body.discard()
                handler.respond(status: .ok, extra: [:], body: nil, requestID: requestID, path: head.path ?? "", start: start,
                                context: context)
            case .failure:
                // As the router answers when an entry cannot be written: nothing leaves.
                body.discard()
                let error = APIError.auditUnavailable
                handler.respond(status: error.code.status, extra: error.headers, body: error.body(), requestID: requestID,
                                path: head.path ?? "", start: start, context: context)
            }
        }
    }

    private var auditAddress: String? {
        remoteAddress.flatMap { address in
            switch address {
            case .unixDomainSocket: return address.pathname
            default: return address.ipAddress
            }
        }
    }

    /// Writes the answer (none when `body` is nil: the connection has closed) with the headers
    /// the router's would carry, logs the request line as `RequestLogMiddleware` does, and takes
    /// up the parts that arrived meanwhile.
    private func respond(status: HTTPResponse.Status, extra: HTTPFields, body: ByteBuffer?, requestID: String, path: String,
                         start: ContinuousClock.Instant, context: ChannelHandlerContext) {
        if let body {
            var fields = HTTPFields()
            fields[.contentType] = "application/json"
            for field in extra { fields.append(field) }
            fields[.contentLength] = String(body.readableBytes)
            fields[RequestIDMiddleware.header] = requestID
            fields[.date] = reads.dates.current()
            fields[.server] = reads.serverName
            context.write(wrapOutboundOut(.head(HTTPResponse(status: status, headerFields: fields))), promise: nil)
            context.write(wrapOutboundOut(.body(body)), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        if logger.logLevel <= .info {
            let query = path.firstIndex(of: "?")
            logger.info("GET \(query.map { path[..<$0] } ?? Substring(path)) \(status.code) \(start.duration(to: .now))")
        }
        state = .idle
        if !held.isEmpty {
            // Until another fast answer has to wait for its entry (it takes them up in turn).
            while !held.isEmpty {
                if case .answering = state { break }
                take(held.removeFirst(), context: context)
            }
            // What was passed on reaches the router's stream only with a read-complete.
            context.fireChannelReadComplete()
        }
        if case .answering = state { return }
        if inputClosedPending {
            inputClosedPending = false
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
        if readPending {
            readPending = false
            context.read()
        }
    }
}

/// The `Date` header's value, formatted once a second.
final class HTTPDateCache: Sendable {
    private let cached = Mutex<(second: Int, text: String)>((-1, ""))

    func current() -> String {
        let now = time(nil)
        return cached.withLock { cached in
            if cached.second != now {
                cached = (now, Self.format(now))
            }
            return cached.text
        }
    }

    /// RFC 9110's IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
    static func format(_ seconds: Int) -> String {
        var time = seconds
        var parts = tm()
        gmtime_r(&time, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
