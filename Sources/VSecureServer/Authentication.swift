import Hummingbird
import NIOCore
import Synchronization
import VSecureCore
import VSecureVault

/// The request context: who is calling, once authenticated.
public struct ServerContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var apiKey: ServerRegistry.APIKey?
    /// The key's owner and the access snapshot the request is judged by.
    public var caller: AuthenticatedCaller?
    /// `X-Request-Id` (the client's when valid, else made here), the peer and its user agent,
    /// for audit entries.
    public var requestID = ""
    public var userAgent: String?
    public var remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

public enum Scope: String, CaseIterable, Sendable {
    case secretsRead = "secrets:read"
    case secretsWrite = "secrets:write"
    case secretsDelete = "secrets:delete"
    case apiKeysManage = "apikeys:manage"
    case auditRead = "audit:read"
    case webhooksManage = "webhooks:manage"
    case usersManage = "users:manage"
    case policyManage = "policy:manage"
    case grantsManage = "grants:manage"
}

/// `Authorization: Bearer vsec_…`. Missing, malformed, unknown, expired and revoked keys all get
/// the same 401 after the same work; a token in the query string is refused outright, since
/// URLs end up in logs and browser history. Neither the key check nor the rate limiter enters
/// the store's actor: both are tables under their own locks.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = ServerContext
    let service: SecretService
    let limiter: RateLimiter
    /// Failed authentications per client address (see `ServerLimits.failedAuthPerAddress`).
    let failures: RateLimiter

    static let queryTokenNames: Set<String> = ["api_key", "apikey", "token", "access_token", "key", "authorization"]

    /// A query parameter named like a credential, compared after percent-decoding and without
    /// regard to case (`api%5Fkey` and `API_KEY` are `api_key` to most frameworks).
    static func isTokenName(_ key: Substring) -> Bool {
        queryTokenNames.contains(percentDecoded(String(key)).lowercased())
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.queryParameters.contains(where: { Self.isTokenName($0.key) }) {
            try await refuse("api_key_in_url", token: nil, context: context,
                             APIError(.authenticationRequired, "API keys are accepted only in the Authorization header, never in the URL"))
        }
        guard let header = request.headers[.authorization] else {
            try await refuse("missing_api_key", token: nil, context: context, APIError.unauthenticated)
        }
        guard header.hasPrefix("Bearer ") else {
            try await refuse("malformed_authorization", token: nil, context: context, APIError.unauthenticated)
        }
        let token = header.dropFirst("Bearer ".count)
        guard token.utf8.count <= 256 else {
            try await refuse("malformed_authorization", token: nil, context: context, APIError.unauthenticated)
        }
        let caller = try service.authenticate(token)
        guard let caller else { try await refuse("invalid_api_key", token: token, context: context, APIError.unauthenticated) }
        let key = caller.key
        if let wait = limiter.admit(key.id) {
            throw APIError(.rateLimitExceeded, "too many requests for this API key",
                           details: ["retryAfterSeconds": String(wait)], headers: [.retryAfter: String(wait)])
        }
        var context = context
        context.apiKey = key
        context.caller = caller
        if caller.user?.isDisabled ?? true { try await service.refuseDisabledUser(context: context) }
        return try await next(request, context)
    }

    /// Records a failed authentication (`auth login failure` with `reason`, and the key id the
    /// token claims, never the token), then throws `error`; past the per-address allowance for
    /// failures, throws 429 instead and records nothing, so that a flood of bad requests cannot
    /// fill the disk through the audit log.
    private func refuse(_ reason: String, token: Substring?, context: Context, _ error: APIError) async throws -> Never {
        if let wait = failures.admit("address:" + (context.auditRequest.address ?? "unknown")) {
            throw APIError(.rateLimitExceeded, "too many failed authentications from this address",
                           details: ["retryAfterSeconds": String(wait)], headers: [.retryAfter: String(wait)])
        }
        try await service.recordAuthenticationFailure(reason: reason, token: token, context: context)
        throw error
    }
}

extension SecretService {
    nonisolated func authenticate(_ token: Substring) throws(VSecureError) -> AuthenticatedCaller? {
        let now = clock()
        return try String(token).withUTF8Bytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in try keys.caller(raw, now: now) }
    }
}

extension ServerContext {
    /// The calling key, which must hold `scope`: the check of the administration routes (users,
    /// API keys, grants, the policy, webhooks, the audit log). A refusal is recorded before the
    /// 403, as `RESOURCE ACTION failure` with `reason: permission_denied`, the check and the scope
    /// (and `name`, the `{id}` the request names), as a refused secret operation is; a log that
    /// cannot be written makes it a 503.
    @discardableResult
    func requireRecorded(_ scope: Scope, _ resource: AuditEvent.Resource, _ action: AuditEvent.Action, name: String? = nil,
                         service: SecretService) async throws -> ServerRegistry.APIKey {
        guard let key = apiKey else { throw APIError.unauthenticated }
        if let refusal = Self.refusal(key, scope, environment: nil) {
            try await service.record(auditEvent(resource, action, outcome: .failure, name: name,
                                                details: [("reason", "permission_denied"), ("check", refusal.check), ("scope", scope.rawValue)],
                                                now: service.clock()))
            throw refusal.error
        }
        return key
    }

    /// Why `key` may not use `scope` (in `environment`): the check that failed (`scope` or
    /// `environment`) and the 403 that says so; nil when it may.
    /// With `attempt` (a secret route: the action and the path), the message and details name
    /// them too, as a policy denial's do.
    static func refusal(_ key: ServerRegistry.APIKey, _ scope: Scope, environment: EnvironmentName?,
                        attempt: (action: AccessAction, path: String)? = nil) -> (check: String, error: APIError)? {
        func refused(_ check: String, _ reason: String, _ details: [String: String]) -> (check: String, error: APIError) {
            guard let attempt else { return (check, APIError(.permissionDenied, reason, details: details)) }
            return (check, APIError(.permissionDenied, "\(attempt.action.rawValue) on \(attempt.path) is denied: \(reason)",
                                    details: details.merging(["action": attempt.action.rawValue, "path": attempt.path]) { first, _ in first }))
        }
        guard key.scopes.contains(scope.rawValue) else {
            return refused("scope", "this API key lacks the scope \(scope.rawValue)", ["scope": scope.rawValue])
        }
        if let environment, let allowed = key.environments, !allowed.contains(environment) {
            return refused("environment", "this API key is not allowed in the environment \(environment)", ["environment": environment.rawValue])
        }
        return nil
    }
}

/// A token bucket per API key: `rate` requests per second sustained, bursts up to `burst`.
/// A table under a lock rather than an actor: an admission is a few arithmetic operations,
/// cheaper than a hop to another executor and back.
final class RateLimiter: Sendable {
    private struct Bucket { var tokens: Double; var updated: ContinuousClock.Instant }
    private let buckets = Mutex<[String: Bucket]>([:])
    let rate: Double
    let burst: Double

    init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = burst
    }

    /// nil when admitted, else the whole seconds to wait.
    func admit(_ id: String) -> Int? {
        let now = ContinuousClock.now
        let rate = rate, burst = burst
        return buckets.withLock { buckets -> Int? in
            var bucket = buckets[id] ?? Bucket(tokens: burst, updated: now)
            let elapsed = bucket.updated.duration(to: now)
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(burst, bucket.tokens + seconds * rate)
            bucket.updated = now
            guard bucket.tokens >= 1 else {
                buckets[id] = bucket
                return max(1, Int(((1 - bucket.tokens) / rate).rounded(.up)))
            }
            bucket.tokens -= 1
            buckets[id] = bucket
            return nil
        }
    }
}
