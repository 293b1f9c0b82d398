import Hummingbird
import NIOCore
import VSecureCore
import VSecureVault

/// `/v1/security/policy…`: the access policy document (docs/access-control.md), and a dry run
/// of a decision. Scope `policy:manage`.
struct PolicyRoutes {
    let service: SecretService
    let limits: ServerLimits

    func register(_ group: RouterGroup<ServerContext>, table: RouteTable) {
        table.add(group, .get, "policy", show)
        table.add(group, .put, "policy", replace)
        table.add(group, .post, "policy/test", test)
    }

    static func json(_ stored: ServerRegistry.StoredPolicy) -> JSONValue {
        let parsed = (try? AccessPolicy(parsing: Array(stored.source.utf8)))?.json() ?? .null
        return .object([("policy", parsed), ("source", .string(stored.source)), ("updatedAt", .string(stored.updatedAt.iso8601)),
                        ("updatedBy", .string(stored.updatedBy))])
    }

    @Sendable func show(_ request: Request, context: ServerContext) async throws -> Response {
        _ = try await context.requireRecorded(.policyManage, .policy, .accessed, service: service)
        let stored = try await service.withRegistry { registry, _ throws(VSecureError) in try registry.policy() }
        return JSONResponse.make(Self.json(stored))
    }

    /// The body is the document itself. It is validated whole before anything changes; an error
    /// names the line and column (400 VALIDATION_ERROR) and the old policy stays.
    @Sendable func replace(_ request: Request, context: ServerContext) async throws -> Response {
        _ = try await context.requireRecorded(.policyManage, .policy, .changed, service: service)
        let bytes = try await JSONBody.collect(request, limit: limits.maxBodyBytes, timeoutSeconds: limits.bodyTimeoutSeconds)
        let policy = try APIError.wrap { () throws(VSecureError) in try AccessPolicy(parsing: bytes) }
        guard let source = String(validating: bytes, as: UTF8.self) else { throw APIError(.validationError, "the policy is not UTF-8 text") }
        let by = context.auditActor.user ?? context.apiKey?.id ?? "unknown"
        return try await service.idempotent(request, context: context, bodyBytes: bytes) { registry, now throws(VSecureError) in
            try registry.setPolicy(source: source, updatedBy: by, now: now)
            let stored = try registry.policy()
            return AuditedAnswer(status: .ok, body: Self.json(stored),
                                 events: [context.auditEvent(.policy, .changed, details: [("rules", String(policy.rules.count))],
                                                             now: stored.updatedAt)])
        }
    }

    /// `{user, action, path}` → what the server would decide now for that user (any of their
    /// keys; a key's own scope and environment limit come on top).
    @Sendable func test(_ request: Request, context: ServerContext) async throws -> Response {
        _ = try await context.requireRecorded(.policyManage, .policy, .accessed, service: service)
        let body = try await JSONBody.parse(request, limit: limits.maxBodyBytes, timeoutSeconds: limits.bodyTimeoutSeconds)
        try body.rejectUnknown(["user", "action", "path"])
        guard let userText = try body.string("user") else { throw APIError(.validationError, "field 'user' is required") }
        let action = try Self.action(try body.string("action") ?? "read")
        guard let path = try body.string("path") else { throw APIError(.validationError, "field 'path' is required") }
        try Self.checkPath(path)
        let snapshot = try APIError.wrap { () throws(VSecureError) in try service.keys.snapshot() }
        guard let user = snapshot.user(named: userText.lowercased()) ?? snapshot.users[userText] else {
            throw APIError.noSuchUser(userText)
        }
        let decision = snapshot.decide(user: user, action: action, path: path, now: service.clock())
        return JSONResponse.make(Self.json(decision, user: user.name, action: action, path: path))
    }

    static func json(_ decision: AccessDecision, user: String, action: AccessAction, path: String) -> JSONValue {
        var basis = "noRule"
        var rule: JSONValue = .null, grant: JSONValue = .null
        switch decision.basis {
        case .rule(let pattern, let line):
            basis = "rule"
            rule = .object([("pattern", .string(pattern)), ("line", .int(Int64(line)))])
        case .grant(let id):
            basis = "grant"
            grant = .string(id)
        case .noRule: basis = "noRule"
        case .disabledUser: basis = "disabledUser"
        }
        return .object([("decision", .string(decision.allowed ? "allow" : "deny")), ("user", .string(user)),
                        ("action", .string(action.rawValue)), ("path", .string(path)), ("basis", .string(basis)),
                        ("rule", rule), ("grant", grant), ("explanation", .string(decision.explanation))])
    }

    static func action(_ text: String) throws -> AccessAction {
        guard let action = AccessAction(rawValue: text) else { throw APIError(.validationError, "action must be read, write or delete") }
        return action
    }

    /// `ENVIRONMENT/NAME`, each part valid.
    static func checkPath(_ path: String) throws {
        let parts = path.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw APIError(.validationError, "a path is ENVIRONMENT/NAME, e.g. production/API_KEY") }
        try APIError.wrap { () throws(VSecureError) in
            _ = try EnvironmentName(String(parts[0]))
            _ = try SecretName(String(parts[1]))
        }
    }
}
