import Hummingbird
import VSecureCore
import VSecureVault

/// `/v1/security/grants…`: time-limited exceptions to the policy. Scope `grants:manage` (its
/// holder can give any user, itself included, any access for a while: hand it out like
/// `policy:manage`). The server's clock decides when a grant ends; a revocation counts from
/// the next request.
struct GrantRoutes {
    let service: SecretService
    let limits: ServerLimits

    func register(_ group: RouterGroup<ServerContext>, table: RouteTable) {
        table.add(group, .post, "grants", create)
        table.add(group, .get, "grants", list)
        table.add(group, .delete, "grants/:id", revoke)
    }

    static func json(_ grant: ServerRegistry.GrantRecord, user: String?, now: Timestamp) -> JSONValue {
        let status = grant.revokedAt != nil ? "revoked" : (grant.isActive(at: now) ? "active" : "expired")
        return .object([
            ("id", .string(grant.id)), ("user", .optional(user)), ("userId", .string(grant.userID)),
            ("path", .string(grant.pattern)), ("action", .string(grant.action)),
            ("createdAt", .string(grant.createdAt.iso8601)), ("expiresAt", .string(grant.expiresAt.iso8601)),
            ("revokedAt", .optional(grant.revokedAt?.iso8601)), ("createdBy", .string(grant.createdBy)),
            ("status", .string(status)), ("active", .bool(grant.isActive(at: now))),
        ])
    }

    /// `{user, name + environment | path, action (read), duration | expiresAt}`.
    @Sendable func create(_ request: Request, context: ServerContext) async throws -> Response {
        _ = try await context.requireRecorded(.grantsManage, .grants, .created, service: service)
        let body = try await JSONBody.parse(request, limit: limits.maxBodyBytes, timeoutSeconds: limits.bodyTimeoutSeconds)
        try body.rejectUnknown(["user", "name", "environment", "path", "action", "duration", "expiresAt"])
        guard let userText = try body.string("user") else { throw APIError(.validationError, "field 'user' is required") }
        let action = try PolicyRoutes.action(try body.string("action") ?? "read")
        let pattern: PathPattern
        switch (try body.string("name"), try body.string("path")) {
        case (let name?, nil):
            let secret = try APIError.wrap { () throws(VSecureError) in try SecretName(name) }
            let environment = try service.environment(try body.string("environment"))
            pattern = try APIError.wrap { () throws(VSecureError) in try PathPattern(secretPath(environment, secret)) }
        case (nil, let path?):
            if body.has("environment") { throw APIError(.validationError, "'environment' goes with 'name'; a 'path' names its environment") }
            pattern = try APIError.wrap { () throws(VSecureError) in try PathPattern(path) }
        default:
            throw APIError(.validationError, "give either 'name' (with 'environment') or 'path' (a pattern such as staging/*)")
        }
        let duration = try body.string("duration"), expiresAtText = try body.string("expiresAt")
        guard (duration == nil) != (expiresAtText == nil) else {
            throw APIError(.validationError, "give either 'duration' (e.g. 1h) or 'expiresAt': a grant always ends")
        }
        let createdBy = context.auditActor.user ?? context.apiKey?.id ?? "unknown"
        // Looked up again inside the transaction below; here for the error's hint.
        let known = try await service.withRegistry { registry, _ throws(VSecureError) in try registry.user(reference: userText) != nil }
        guard known else { throw APIError.noSuchUser(userText) }
        return try await service.idempotent(request, context: context, bodyBytes: body.raw) { registry, now throws(VSecureError) in
            guard let user = try registry.user(reference: userText) else { throw VSecureError(.notFound, "no user \(Quoted(userText))") }
            let expiresAt = try parseExpiry(expiresIn: duration, expiresAt: expiresAtText, now: now)!
            let grant = try registry.createGrant(userID: user.id, pattern: pattern.text, action: action.rawValue, expiresAt: expiresAt,
                                                 createdBy: createdBy, now: now)
            return AuditedAnswer(status: .created, body: Self.json(grant, user: user.name, now: grant.createdAt),
                                 events: [context.auditEvent(.grants, .created, name: grant.id,
                                                             details: [("user", user.name), ("path", grant.pattern), ("action", grant.action),
                                                                       ("expiresAt", grant.expiresAt.iso8601)], now: grant.createdAt)])
        }
    }

    /// `?name=&environment=` (grants whose pattern matches that secret), `?user=`,
    /// `?includeExpired=true` (expired and revoked ones too).
    @Sendable func list(_ request: Request, context: ServerContext) async throws -> Response {
        _ = try await context.requireRecorded(.grantsManage, .grants, .accessed, service: service)
        let includeExpired = try request.queryBool("includeExpired")
        var path: String?
        if let nameText = request.query("name") {
            let name = try APIError.wrap { () throws(VSecureError) in try SecretName(nameText) }
            path = secretPath(try service.environment(request.query("environment")), name)
        } else if let environment = request.query("environment") {
            _ = try service.environment(environment)
        }
        let environmentOnly = path == nil ? request.query("environment") : nil
        let userText = request.query("user")
        let (grants, users, now) = try await service.withRegistry { registry, now throws(VSecureError) in
            (try registry.listGrants(), try registry.listUsers(), now)
        }
        var names: [String: String] = [:]
        for user in users { names[user.id] = user.name }
        let shown = grants.filter { grant in
            if !includeExpired && !grant.isActive(at: now) { return false }
            if let userText, names[grant.userID] != userText.lowercased() && grant.userID != userText { return false }
            if let path, !((try? PathPattern(grant.pattern))?.matches(path) ?? false) { return false }
            if let environmentOnly, !grant.pattern.hasPrefix(environmentOnly + "/") && !grant.pattern.hasPrefix("*") { return false }
            return true
        }
        return JSONResponse.make(.object([("data", .array(shown.map { Self.json($0, user: names[$0.userID], now: now) }))]))
    }

    @Sendable func revoke(_ request: Request, context: ServerContext) async throws -> Response {
        _ = try await context.requireRecorded(.grantsManage, .grants, .revoked, name: context.parameters.get("id"), service: service)
        let id = context.parameters.get("id") ?? ""
        let revoked = try await service.change(in: .registry) { _, registry, now throws(VSecureError) in
            let revoked = try registry.revokeGrant(id: id, now: now)
            return (revoked, revoked ? [context.auditEvent(.grants, .revoked, name: id, now: now)] : [])
        }
        guard revoked else { throw APIError(.resourceNotFound, "no active grant \(Quoted(id))") }
        return Response(status: .noContent)
    }
}
