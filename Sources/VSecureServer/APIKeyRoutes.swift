import Hummingbird
import VSecureCore
import VSecureVault

/// `/v1/security/api-keys…`. A token is shown once, when it is made; the server keeps only a
/// keyed hash. A key can only create keys with its own scopes and environments or fewer. A key
/// belongs to a user (`user`, default: the caller's own); keys for, or of, another user need
/// `users:manage` as well.
/// `Idempotency-Key` is not honoured here: replaying the answer would mean storing the token.
struct APIKeyRoutes {
    let service: SecretService
    let limits: ServerLimits

    func register(_ group: RouterGroup<ServerContext>, table: RouteTable) {
        table.add(group, .post, "api-keys", create)
        table.add(group, .get, "api-keys", list)
        table.add(group, .delete, "api-keys/:id", revoke)
        table.add(group, .post, "api-keys/:id/rotate", rotate)
    }

    /// A key as the API shows it. `active` is whether it works now: not revoked, not expired,
    /// and its owner not disabled (`userDisabled`; such a key gets 403 on every route).
    static func json(_ key: ServerRegistry.APIKey, token: String?, now: Timestamp, user: String? = nil,
                     ownerDisabled: Bool = false) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("id", .string(key.id)), ("name", .string(key.name)), ("user", .optional(user)), ("userId", .string(key.userID)),
            ("scopes", .array(key.scopes.map(JSONValue.string))),
            ("environments", key.environments.map { .array($0.map { .string($0.rawValue) }) } ?? .null),
            ("createdAt", .string(key.createdAt.iso8601)),
            ("expiresAt", .optional(key.expiresAt?.iso8601)),
            ("revokedAt", .optional(key.revokedAt?.iso8601)),
            ("userDisabled", .bool(ownerDisabled)),
            ("active", .bool(key.isActive(at: now) && !ownerDisabled)),
        ]
        if let token { members.insert(("key", .string(token)), at: 4) }
        return .object(members)
    }

    @Sendable func create(_ request: Request, context: ServerContext) async throws -> Response {
        let caller = try await context.requireRecorded(.apiKeysManage, .apiKeys, .created, service: service)
        let body = try await JSONBody.parse(request, limit: limits.maxBodyBytes, timeoutSeconds: limits.bodyTimeoutSeconds)
        try body.rejectUnknown(["name", "scopes", "environments", "expiresIn", "user"])
        guard let name = try body.string("name"), !name.isEmpty, name.utf8.count <= 100,
              !containsHiddenCharacters(name, allowingSpace: true) else {
            throw APIError(.validationError, "field 'name' is required: 1 to 100 characters without control or invisible characters")
        }
        guard let scopes = try body.strings("scopes"), !scopes.isEmpty else {
            throw APIError(.validationError, "field 'scopes' is required", details: ["allowed": Scope.allCases.map(\.rawValue).joined(separator: ", ")])
        }
        for scope in scopes where Scope(rawValue: scope) == nil {
            throw APIError(.validationError, "unknown scope \(Quoted(scope))", details: ["allowed": Scope.allCases.map(\.rawValue).joined(separator: ", ")])
        }
        for scope in scopes where !caller.scopes.contains(scope) {
            throw APIError(.permissionDenied, "a key cannot grant the scope \(scope), which it does not hold itself")
        }
        var environments: [EnvironmentName]?
        if let list = try body.strings("environments") {
            var parsed: [EnvironmentName] = []
            for text in list { parsed.append(try service.environment(text)) }
            environments = parsed
        }
        if let allowed = caller.environments {
            guard let requested = environments, requested.allSatisfy(allowed.contains) else {
                throw APIError(.permissionDenied, "a key limited to \(allowed.map(\.rawValue).joined(separator: ", ")) can only create keys limited to those environments")
            }
        }
        let expiresIn = try body.string("expiresIn")
        let userText = try body.string("user")
        let owner: ServerRegistry.User
        if let userText {
            let found = try await service.withRegistry { registry, _ throws(VSecureError) in try registry.user(reference: userText) }
            guard let found else { throw APIError.noSuchUser(userText) }
            owner = found
        } else {
            guard let own = context.caller?.user else { throw APIError(.validationError, "field 'user' is required") }
            owner = own
        }
        if owner.id != caller.userID { _ = try await context.requireRecorded(.usersManage, .apiKeys, .created, service: service) }
        if owner.isDisabled { throw APIError(.conflict, "the user \(owner.name) is disabled") }
        let (key, token, now) = try await service.change(in: .registry) { _, registry, now throws(VSecureError) in
            let expiry = try expiresIn.map { (text: String) throws(VSecureError) in now.adding(try SecretDuration(parsing: text)) }
            let (key, token) = try registry.createKey(name: name, scopes: Array(Set(scopes)).sorted(), environments: environments,
                                                      expiresAt: expiry, userID: owner.id, now: now)
            return ((key, token, now), [context.auditEvent(.apiKeys, .created, name: key.id,
                                                           details: [("user", owner.name), ("scopes", key.scopes.joined(separator: ","))],
                                                           now: now)])
        }
        return JSONResponse.make(Self.json(key, token: token, now: now, user: owner.name), status: .created)
    }

    @Sendable func list(_ request: Request, context: ServerContext) async throws -> Response {
        _ = try await context.requireRecorded(.apiKeysManage, .apiKeys, .accessed, service: service)
        let (keys, users, now) = try await service.withRegistry { registry, now throws(VSecureError) in
            (try registry.listKeys(), try registry.listUsers(), now)
        }
        var names: [String: String] = [:]
        var disabled: Set<String> = []
        for user in users {
            names[user.id] = user.name
            if user.isDisabled { disabled.insert(user.id) }
        }
        return JSONResponse.make(.object([("data", .array(keys.map {
            Self.json($0, token: nil, now: now, user: names[$0.userID], ownerDisabled: disabled.contains($0.userID))
        }))]))
    }

    @Sendable func revoke(_ request: Request, context: ServerContext) async throws -> Response {
        let caller = try await context.requireRecorded(.apiKeysManage, .apiKeys, .revoked, name: context.parameters.get("id"), service: service)
        let id = context.parameters.get("id") ?? ""
        try await requireCovers(caller, id: id)
        let revoked = try await service.change(in: .registry) { _, registry, now throws(VSecureError) in
            let revoked = try registry.revokeKey(id: id, now: now)
            return (revoked, revoked ? [context.auditEvent(.apiKeys, .revoked, name: id, now: now)] : [])
        }
        guard revoked else { throw APIError(.resourceNotFound, "no active API key \(Quoted(id))") }
        return Response(status: .noContent)
    }

    @Sendable func rotate(_ request: Request, context: ServerContext) async throws -> Response {
        let caller = try await context.requireRecorded(.apiKeysManage, .apiKeys, .rotated, name: context.parameters.get("id"), service: service)
        let id = context.parameters.get("id") ?? ""
        try await requireCovers(caller, id: id)
        typealias Rotated = (key: ServerRegistry.APIKey, token: String, now: Timestamp, owner: ServerRegistry.User?)
        let rotated = try await service.change(in: .registry) { _, registry, now throws(VSecureError) -> (Rotated?, [AuditEvent]) in
            guard let (key, token) = try registry.rotateKey(id: id, now: now) else { return (nil, []) }
            return ((key, token, now, try registry.user(reference: key.userID)), [context.auditEvent(.apiKeys, .rotated, name: id, now: now)])
        }
        guard let (key, token, now, owner) = rotated else { throw APIError(.resourceNotFound, "no active API key \(Quoted(id))") }
        return JSONResponse.make(Self.json(key, token: token, now: now, user: owner?.name, ownerDisabled: owner?.isDisabled ?? false))
    }

    /// A key may rotate or revoke only keys that hold no more than it does: a rotation hands over
    /// the target's new token, so otherwise a manager limited to some scopes or environments
    /// could take over any key, the admin's included. An unknown id is left to the caller (404).
    private func requireCovers(_ caller: ServerRegistry.APIKey, id: String) async throws {
        let target = try await service.withRegistry { registry, _ throws(VSecureError) in try registry.key(id: id) }
        guard let target else { return }
        if target.userID != caller.userID {
            guard caller.scopes.contains(Scope.usersManage.rawValue) else {
                throw APIError(.permissionDenied, "this API key cannot manage another user's keys without the scope users:manage",
                               details: ["scope": Scope.usersManage.rawValue])
            }
        }
        if let scope = target.scopes.first(where: { !caller.scopes.contains($0) }) {
            throw APIError(.permissionDenied, "this API key cannot manage a key holding the scope \(scope), which it does not hold itself",
                           details: ["scope": scope])
        }
        if let allowed = caller.environments {
            guard let environments = target.environments, environments.allSatisfy(allowed.contains) else {
                throw APIError(.permissionDenied, "a key limited to \(allowed.map(\.rawValue).joined(separator: ", ")) can only manage keys limited to those environments")
            }
        }
    }
}
