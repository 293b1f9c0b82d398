import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization
import VSecureCore
import VSecureVault

/// Who may do what to a secret. Three checks, all of which must allow, in this order:
/// 1. the API key's scope for the action (`secrets:read`, `secrets:write`, `secrets:delete`);
/// 2. the key's environment limit;
/// 3. the access policy for the key owner's roles, or an active grant for the owner
///    (`AccessControl.decide`, over the in-memory snapshot: no query per request).
/// Every denial is a 403 naming the action and the path, recorded in the audit log first.
extension AccessAction {
    var scope: Scope {
        switch self {
        case .read: return .secretsRead
        case .write: return .secretsWrite
        case .delete: return .secretsDelete
        }
    }
}

func secretPath(_ environment: EnvironmentName, _ name: SecretName) -> String {
    "\(environment.rawValue)/\(name.rawValue)"
}

extension ServerContext {
    /// The calling key, allowed to do `action` on `environment/name` by all three checks. A
    /// denial is recorded under `auditAs` when given (a refused create is `created`, not the
    /// `updated` that a refused write otherwise records).
    @discardableResult
    func authorize(_ action: AccessAction, environment: EnvironmentName, name: SecretName, auditAs: AuditEvent.Action? = nil,
                   service: SecretService) async throws -> ServerRegistry.APIKey {
        try await authorize(action, environment: environment, names: [name], auditAs: auditAs, service: service)
    }

    /// The same for several names in one environment; the first one denied decides the answer.
    @discardableResult
    func authorize(_ action: AccessAction, environment: EnvironmentName, names: [SecretName], auditAs: AuditEvent.Action? = nil,
                   service: SecretService) async throws -> ServerRegistry.APIKey {
        let firstPath = names.first.map { secretPath(environment, $0) } ?? "\(environment.rawValue)/*"
        let key = try await requireScope(action, environment: environment, path: firstPath, auditAs: auditAs, service: service)
        let now = service.clock()
        for name in names {
            let path = secretPath(environment, name)
            let decision = decide(action, path: path, now: now)
            guard decision.allowed else { try await deny(action, path: path, decision: decision, auditAs: auditAs, service: service) }
        }
        return key
    }

    /// The key's scope for `action` and its environment limit (when `environment` is given),
    /// for routes that check them before they know each path (batches, listings). A denial is
    /// recorded like any other, under `path` (default `ENVIRONMENT/*`, or `*`).
    @discardableResult
    func requireScope(_ action: AccessAction, environment: EnvironmentName?, path: String? = nil, auditAs: AuditEvent.Action? = nil,
                      service: SecretService) async throws -> ServerRegistry.APIKey {
        guard let key = apiKey else { throw APIError.unauthenticated }
        let path = path ?? environment.map { "\($0.rawValue)/*" } ?? "*"
        if let refusal = Self.refusal(key, action.scope, environment: environment, attempt: (action, path)) {
            try await service.recordDenial(action: action, path: path, reason: refusal.check, auditAs: auditAs, context: self)
            throw refusal.error
        }
        return key
    }

    /// The policy-or-grant part alone (scope and environment limit are the caller's business).
    func decide(_ action: AccessAction, path: String, now: Timestamp) -> AccessDecision {
        guard let caller else { return AccessDecision(allowed: false, basis: .noRule, explanation: "deny: not authenticated") }
        return caller.access.decide(user: caller.user, action: action, path: path, now: now)
    }

    /// Records the denial, then throws the 403 that names the action and the path.
    func deny(_ action: AccessAction, path: String, decision: AccessDecision, auditAs: AuditEvent.Action? = nil,
              service: SecretService) async throws -> Never {
        try await service.recordDenial(action: action, path: path, reason: "policy", auditAs: auditAs, context: self)
        throw APIError(.permissionDenied, "\(action.rawValue) on \(path) is denied by the access policy",
                       details: ["action": action.rawValue, "path": path])
    }

    /// Whether the caller may read `environment/name` (the environment limit and the policy; the
    /// scope was checked for the whole request). For listings.
    func mayRead(_ environment: EnvironmentName, _ name: SecretName, now: Timestamp) -> Bool {
        if let allowed = apiKey?.environments, !allowed.contains(environment) { return false }
        return decide(.read, path: secretPath(environment, name), now: now).allowed
    }

    /// The acting user and key, for audit entries.
    var auditActor: AuditEvent.Actor {
        AuditEvent.Actor(user: caller?.user?.name, keyID: apiKey?.id, keyName: apiKey?.name)
    }

    var auditRequest: AuditEvent.Request {
        let address: String? = remoteAddress.flatMap { address in
            switch address {
            case .unixDomainSocket: return address.pathname
            default: return address.ipAddress
            }
        }
        return AuditEvent.Request(address: address, userAgent: userAgent, requestID: requestID.isEmpty ? nil : requestID)
    }

    /// An entry for this request, by this caller, at `now`.
    func auditEvent(_ resource: AuditEvent.Resource, _ action: AuditEvent.Action, outcome: AuditEvent.Outcome = .success,
                    environment: EnvironmentName? = nil, name: String? = nil, version: Int? = nil, items: [AuditEvent.Item] = [],
                    details: [(String, String)] = [], now: Timestamp) -> AuditEvent {
        AuditEvent(time: now, actor: auditActor, resource: resource, action: action, outcome: outcome, environment: environment?.rawValue,
                   name: name, version: version, items: items, request: auditRequest, details: details)
    }
}

extension SecretService {
    /// Appends `event` and waits until it is durable; a log that cannot be written refuses the
    /// request (503), so nothing happens unrecorded and no secret leaves.
    nonisolated func record(_ event: AuditEvent) async throws {
        do {
            try await audit.record(event)
        } catch {
            throw APIError.auditUnavailable
        }
    }

    /// `secrets … failure` with `reason: permission_denied`, the path and the action. The entry's
    /// action is `auditAs`, else what `action` usually is: `accessed`, `updated` or `deleted`.
    nonisolated func recordDenial(action: AccessAction, path: String, reason: String, auditAs: AuditEvent.Action? = nil,
                                  context: ServerContext) async throws {
        let slash = path.firstIndex(of: "/")
        let environment = slash.map { String(path[..<$0]) }
        let name = slash.map { String(path[path.index(after: $0)...]) }
        let entryAction = auditAs ?? (action == .read ? .accessed : (action == .write ? .updated : .deleted))
        var event = context.auditEvent(.secrets, entryAction, outcome: .failure,
                                       name: name, details: [("reason", "permission_denied"), ("path", path), ("action", action.rawValue),
                                                             ("check", reason)], now: clock())
        event.environment = environment
        try await record(event)
    }

    /// `auth login failure` for `reason`, naming the key id the token claims (never the token).
    nonisolated func recordAuthenticationFailure(reason: String, token: Substring?, context: ServerContext) async throws {
        let keyID = token.flatMap { token in
            (try? String(token).withUTF8Bytes { (raw: UnsafeRawBufferPointer) throws(VSecureError) in ServerRegistry.tokenKeyID(raw) }) ?? nil
        }
        var event = context.auditEvent(.auth, .login, outcome: .failure, details: [("reason", reason)], now: clock())
        event.actor = AuditEvent.Actor(user: nil, keyID: keyID)
        try await record(event)
    }

    /// A disabled user's keys are refused on every route with 403 (the key is genuine; its owner
    /// may not act). Recorded as a failed login.
    nonisolated func refuseDisabledUser(context: ServerContext) async throws -> Never {
        let name = context.caller?.user?.name
        try await record(context.auditEvent(.auth, .login, outcome: .failure, details: [("reason", "user_disabled")], now: clock()))
        throw APIError(.permissionDenied, name.map { "the user \($0) is disabled" } ?? "this API key has no owner",
                       details: ["reason": "user_disabled"])
    }
}

/// `X-Request-Id`: the client's own when it is 1 to 64 of `[A-Za-z0-9._-]`, else a new one;
/// echoed on every response, errors included, and written to audit entries.
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = ServerContext
    static let header = HTTPField.Name("X-Request-Id")!

    static func isValidID(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count) && text.utf8.allSatisfy {
            (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D
        }
    }

    /// `req_` and 16 hex digits: a counter from a random start, mixed (a bijection, so unique
    /// within the process) to look unrelated from one request to the next. Not a secret (a client
    /// may choose its own): this costs no system call, where eight `UInt8.random` cost eight
    /// `getrandom`.
    static func newID() -> String {
        var z = idStart &+ idCounter.wrappingAdd(1, ordering: .relaxed).oldValue &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return String(unsafeUninitializedCapacity: 20) { buffer in
            let digits: StaticString = "0123456789abcdef"
            for (index, byte) in "req_".utf8.enumerated() { buffer[index] = byte }
            for index in 0..<16 {
                buffer[4 + index] = digits.utf8Start[Int((z >> UInt64(60 - 4 * index)) & 0xF)]
            }
            return 20
        }
    }

    private static let idStart = UInt64.random(in: .min ... .max)
    private static let idCounter = Atomic<UInt64>(0)

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if let given = request.headers[Self.header], Self.isValidID(given) {
            context.requestID = given
        } else {
            context.requestID = Self.newID()
        }
        context.userAgent = request.headers[.userAgent].map { String($0.prefix(256)) }
        var response = try await next(request, context)
        response.headers[Self.header] = context.requestID
        return response
    }
}

/// What a write's operation learnt inside the actor (the new version, the names it made),
/// carried out to the audit entry recorded after it.
final class Captured<Value: Sendable>: Sendable {
    private let storage = Mutex<Value?>(nil)
    init() {}
    func set(_ value: Value) { storage.withLock { $0 = value } }
    var value: Value? { storage.withLock { $0 } }
}
